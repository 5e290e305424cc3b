package com.genesyslab.ail.event;

import com.genesyslab.ail.ServiceStatus;

/** Stand-in for AIL's service listener. */
public interface ServiceListener {
    /** A service's status changed. */
    void serviceStatusChanged(ServiceStatus.Type type, ServiceStatus.Status status);
}

package com.genesyslab.ail.event;

/** Stand-in for a listener on one DN. */
public interface DnListener {
    /** A DN event (status change, logout, back in service, ...). */
    void handleDnEvent(DnEvent event);
}

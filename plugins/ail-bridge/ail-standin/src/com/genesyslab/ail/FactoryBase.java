package com.genesyslab.ail;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What both stand-ins' factories share: the login's configuration objects,
 * the services' statuses, and the event thread reading the deployment's
 * messages. Not part of AIL's API: each stand-in's {@code AilFactory}
 * extends it and decides how the messages reach listeners (stand-in A holds
 * them strongly, stand-in B weakly).
 */
abstract class FactoryBase {
    /** The connection to the deployment (the test). */
    final Link link;
    /** Each service's status as the client sees it. */
    final Map<ServiceStatus.Type, ServiceStatus.Status> statuses = new ConcurrentHashMap<>();
    private final Map<String, Person> persons;
    private final Map<String, Application> applications;
    private volatile boolean killed;

    FactoryBase(LoginAnswer answer) {
        this.link = answer.link;
        this.persons = answer.persons;
        this.applications = answer.applications;
    }

    /** The Person object of {@code userName}, or null. */
    public Person getPerson(String userName) {
        return persons.get(userName);
    }

    /** The AIL Application called {@code name}, or null. */
    public Application getApplication(String name) {
        return applications.get(name);
    }

    /** A service's current status. */
    public ServiceStatus.Status getServiceStatus(ServiceStatus.Type type) {
        return statuses.getOrDefault(type, ServiceStatus.Status.UNKNOWN);
    }

    /** The AIL service is ON: starts the event thread, called {@code threadName}. */
    final void start(String threadName) {
        statuses.put(ServiceStatus.Type.AIL, ServiceStatus.Status.ON);
        Thread reader = new Thread(this::read, threadName);
        reader.setDaemon(true);
        reader.start();
    }

    /** Ends the session on purpose (killFactory): the AIL service is not reported lost. */
    final void kill() {
        killed = true;
        link.send("BYE");
        link.close();
    }

    /** Before each deployment message is handled. */
    void beforeMessage() {
    }

    /** The deployment's {@code STATUS type status}. */
    abstract void onStatus(ServiceStatus.Type type, ServiceStatus.Status status);

    /** The deployment's {@code CONFIG object-type name section option [value]}; value may be null. */
    abstract void onConfig(String objectType, String name, String section, String option, String value);

    /** The deployment's {@code DN id status [R key value]... [X key value]...}, whole. */
    abstract void onDn(String[] m);

    /** The connection was lost without a kill. */
    abstract void onLost();

    /** The event thread: deployment messages become listener callbacks. */
    private void read() {
        try {
            String[] m;
            while ((m = link.read()) != null) {
                beforeMessage();
                if (m[0].equals("STATUS") && m.length >= 3) {
                    onStatus(ServiceStatus.Type.valueOf(m[1]), ServiceStatus.Status.valueOf(m[2]));
                } else if (m[0].equals("CONFIG") && m.length >= 5) {
                    onConfig(m[1], m[2], m[3], m[4], m.length > 5 ? m[5] : null);
                } else if (m[0].equals("AGENTLOGIN") && m.length >= 2) {
                    link.loginAnswered(m[1], m.length > 2 ? m[2] : "");
                } else if (m[0].equals("DN") && m.length >= 3) {
                    onDn(m);
                }
            }
        } catch (IOException | RuntimeException e) {
            // Same as end of stream: the session is gone.
        }
        link.failLogins("the CS Proxy connection was lost during the login");
        if (!killed) {
            onLost();
        }
    }
}

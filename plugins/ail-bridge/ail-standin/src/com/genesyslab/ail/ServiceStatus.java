package com.genesyslab.ail;

/** Stand-in for AIL's ServiceStatus: the status of one service connection. */
public final class ServiceStatus {
    private ServiceStatus() {}

    /** The services (the public guide's list, plus the statistic service). */
    public enum Type { CONFIG, TELEPHONY, IS, CHAT, AIL, DATABASE, STATISTICS }

    /** A service's status (the public guide's list). */
    public enum Status {
        ON, OFF, ABSENT, LICENSE, RESTORING, ALREADY_RUNNING, UNKNOWN, UNKNOWN_HOST,
        APPLICATION_NAME_INCORRECT, APPLICATION_TYPE_INCORRECT, LOGIN_INCORRECT, CONNECTION_FAILED
    }
}

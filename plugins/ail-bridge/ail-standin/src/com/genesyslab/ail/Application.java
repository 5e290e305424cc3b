package com.genesyslab.ail;

import java.util.Map;

/** Stand-in for an AIL Application configuration object. */
public final class Application {
    private final String name;
    private final String host;
    private final int port;
    private final Map<String, Map<String, String>> options;

    Application(String name, String host, int port, Map<String, Map<String, String>> options) {
        this.name = name;
        this.host = host;
        this.port = port;
        this.options = options;
    }

    /** The application's name. */
    public String getName() {
        return name;
    }

    /** Host of the CS Proxy this application connects to. */
    public String getConfigServerHost() {
        return host;
    }

    /** Port of that CS Proxy. */
    public int getConfigServerPort() {
        return port;
    }

    /** Options: section -> option -> value. */
    public Map<String, Map<String, String>> getOptions() {
        return options;
    }
}

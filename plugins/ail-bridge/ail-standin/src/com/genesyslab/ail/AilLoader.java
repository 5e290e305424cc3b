package com.genesyslab.ail;

import java.util.Properties;

/**
 * Stand-in for AIL's loader: connects to the CS Proxy it is given (a real TCP
 * connection, refused when the site is down) and logs in.
 */
public class AilLoader {
    private static volatile AilFactory factory;
    private static volatile Exception initException;

    /** Loads AIL against one CS Proxy; the outcome is in {@link #getAilFactory()}. */
    public AilLoader(String host, int port, String applicationName, String userName, String password,
            int retryInterval, Properties options) {
        String onDemand = options == null ? "false" : options.getProperty("loading/on-demand", "false");
        Control.report("LOADER", host + ":" + port, applicationName, "on-demand=" + onDemand);
        AilFactory previous = factory;
        if (previous != null) {
            previous.kill();
        }
        factory = null;
        initException = null;
        try {
            factory = new AilFactory(
                    LoginAnswer.login(host, port, applicationName, userName, password, retryInterval, onDemand));
        } catch (Exception e) {
            initException = e;
        }
    }

    /** The loaded factory, or null if loading failed (see {@link #getInitException()}). */
    public static AilFactory getAilFactory() {
        return factory;
    }

    /** Why the last load failed. */
    public static Exception getInitException() {
        return initException;
    }

    /** Ends the AIL session; the JVM stays. */
    public static void killFactory() {
        Control.report("KILL");
        AilFactory f = factory;
        factory = null;
        if (f != null) {
            f.kill();
        }
    }
}

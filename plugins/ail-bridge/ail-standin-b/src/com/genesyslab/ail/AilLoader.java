package com.genesyslab.ail;

import java.lang.ref.Cleaner;
import java.lang.ref.WeakReference;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Stand-in B's loader: the other plausible shapes of AIL's AilLoader.
 * <ul>
 * <li>{@code getAilFactory}, {@code getInitException} and {@code killFactory}
 * are instance methods (the guide's samples call {@code mAilLoader.killFactory()});</li>
 * <li>the constructor returns at once and loads in the background;
 * {@code getAilFactory} blocks until loaded;</li>
 * <li>the loader owns its AIL session: once the application holds no
 * reference to it, the garbage collector ends the session;</li>
 * <li>{@code loading/on-demand} is read as a JVM system property, not from
 * the constructor's Properties.</li>
 * </ul>
 * A daemon thread forces a full GC every 250 ms, so that whatever the client
 * holds only weakly really goes.
 */
public class AilLoader {
    private static final Cleaner CLEANER = Cleaner.create();
    private static volatile WeakReference<AilLoader> last = new WeakReference<>(null);

    static {
        Thread gc = new Thread(() -> {
            while (true) {
                System.gc();
                try {
                    Thread.sleep(250);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "ail-standin-b-gc");
        gc.setDaemon(true);
        gc.start();
    }

    private final Session session;

    /** Starts loading AIL against one CS Proxy; {@link #getAilFactory()} waits for the outcome. */
    public AilLoader(String host, int port, String applicationName, String userName, String password,
            int retryInterval, Properties options) {
        String onDemand = System.getProperty("loading/on-demand", "false");
        Control.report("LOADER", host + ":" + port, applicationName, "on-demand=" + onDemand);
        AilLoader previous = last.get();
        if (previous != null) {
            previous.session.kill();
        }
        last = new WeakReference<>(this);
        Session s = new Session();
        session = s;
        // The cleaning action holds the session, never the loader.
        CLEANER.register(this, s::collected);
        Thread loader = new Thread(() -> s.load(host, port, applicationName, userName, password, retryInterval,
                onDemand), "ail-standin-b-loader");
        loader.setDaemon(true);
        loader.start();
    }

    /** The loaded factory, or null if loading failed; blocks until loading is over. */
    public AilFactory getAilFactory() {
        session.await();
        return session.factory;
    }

    /** Why loading failed; blocks until loading is over. */
    public Exception getInitException() {
        session.await();
        return session.initException;
    }

    /** Ends this loader's AIL session; the JVM stays. */
    public void killFactory() {
        Control.report("KILL");
        session.kill();
    }

    /** One load and its outcome. */
    private static final class Session {
        private final CountDownLatch loaded = new CountDownLatch(1);
        private volatile AilFactory factory;
        private volatile Exception initException;
        private volatile boolean killed;

        void load(String host, int port, String app, String user, String password, int retry, String onDemand) {
            try {
                factory = new AilFactory(LoginAnswer.login(host, port, app, user, password, retry, onDemand));
            } catch (Exception e) {
                initException = e;
            } finally {
                loaded.countDown();
            }
        }

        void await() {
            try {
                loaded.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        synchronized void kill() {
            await();
            killed = true;
            AilFactory f = factory;
            factory = null;
            if (f != null) {
                f.kill();
            }
        }

        /** The loader was collected: its session ends with it. */
        void collected() {
            AilFactory f = factory;
            if (!killed && f != null) {
                Control.report("LOST", "loader", "collected while its factory was alive");
                kill();
            }
        }
    }
}

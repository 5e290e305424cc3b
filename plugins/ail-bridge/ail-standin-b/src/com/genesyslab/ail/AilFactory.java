package com.genesyslab.ail;

import com.genesyslab.ail.event.DnEvent;
import com.genesyslab.ail.event.ServiceListener;
import java.lang.ref.WeakReference;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Stand-in B's factory: the same wire as stand-in A's (see A's
 * AilFactory.java), with the other plausible shapes of AIL:
 * <ul>
 * <li>service listeners and DN objects are held weakly: once the client
 * holds no reference, they are collected and their events are lost (each
 * loss is reported on the control channel as {@code LOST ...}); a full GC
 * runs before every event is delivered;</li>
 * <li>a logout's reason code is in the event's extensions, not its reasons;</li>
 * <li>extra statuses: a service comes up through {@code RESTORING} before
 * {@code ON}, and goes {@code ABSENT} after {@code OFF}; a lost AIL session
 * goes {@code RESTORING} then {@code OFF}. After a login every service is
 * {@code RESTORING}: a new listener is told so at once, and the service
 * takes the deployment's status 150 ms after its first listener;</li>
 * <li>DN events: a logout is a {@code STATUS_CHANGED} event followed by an
 * {@code INFO_CHANGED} echo; back in service and out of service come as
 * {@code INFO_CHANGED} events.</li>
 * </ul>
 */
public final class AilFactory extends FactoryBase {
    /** How long a service stays RESTORING after its first listener. */
    private static final long SETTLE_MS = 150;

    private final List<WeakReference<com.genesyslab.ail.event.ConfigListener>> configListeners =
            new CopyOnWriteArrayList<>();
    private final Map<ServiceStatus.Type, List<WeakReference<ServiceListener>>> serviceListeners =
            new ConcurrentHashMap<>();
    private final Map<String, WeakReference<Dn>> dns = new ConcurrentHashMap<>();
    /** DNs that had a listener added: an event for one of them that reaches nobody is lost. */
    private final Set<String> listenedDns = ConcurrentHashMap.newKeySet();
    /** The deployment's statuses of services that have not settled yet. */
    private final Map<ServiceStatus.Type, ServiceStatus.Status> pending = new LinkedHashMap<>();
    /** Services whose first listener came: they settle (or have settled). */
    private final Set<ServiceStatus.Type> settling = ConcurrentHashMap.newKeySet();

    /** The factory of one login; its event thread starts at once. */
    AilFactory(LoginAnswer answer) {
        super(answer);
        for (ServiceStatus.Type type : answer.statuses.keySet()) {
            statuses.put(type, ServiceStatus.Status.RESTORING);
        }
        pending.putAll(answer.statuses);
        start("ail-standin-b-events");
    }

    /**
     * Listens to one service's status changes, weakly; the listener is told
     * the current status at once, and the service settles 150 ms after its
     * first listener.
     */
    public void addServiceListener(ServiceStatus.Type type, ServiceListener listener) {
        serviceListeners.computeIfAbsent(type, k -> new CopyOnWriteArrayList<>()).add(new WeakReference<>(listener));
        link.send("LISTEN", "SERVICE", type.name());
        ServiceStatus.Status now = statuses.get(type);
        if (now != null) {
            listener.serviceStatusChanged(type, now);
        }
        if (settling.add(type)) {
            Thread settle = new Thread(() -> settle(type), "ail-standin-b-settle");
            settle.setDaemon(true);
            settle.start();
        }
    }

    /** Stops listening. */
    public void removeServiceListener(ServiceStatus.Type type, ServiceListener listener) {
        List<WeakReference<ServiceListener>> list = serviceListeners.get(type);
        if (list != null) {
            list.removeIf(r -> r.get() == null || r.get() == listener);
        }
    }

    /** Follows changes of configuration objects (E5), weakly like every B listener. */
    public void addConfigListener(com.genesyslab.ail.event.ConfigListener listener) {
        configListeners.add(new WeakReference<>(listener));
    }

    /** The DN with this number (the factory keeps it only while the client does). */
    public Dn getDn(String id) {
        synchronized (dns) {
            WeakReference<Dn> ref = dns.get(id);
            Dn dn = ref == null ? null : ref.get();
            if (dn == null) {
                dn = new Dn(id, link, listenedDns);
                dns.put(id, new WeakReference<>(dn));
            }
            return dn;
        }
    }

    /** Fires one status to the live listeners of its type; reports a loss if none is left. */
    private void fire(ServiceStatus.Type type, ServiceStatus.Status status) {
        statuses.put(type, status);
        List<WeakReference<ServiceListener>> list = serviceListeners.get(type);
        if (list == null || list.isEmpty()) {
            return;
        }
        int alive = 0;
        for (WeakReference<ServiceListener> r : list) {
            ServiceListener l = r.get();
            if (l != null) {
                l.serviceStatusChanged(type, status);
                alive++;
            }
        }
        if (alive == 0) {
            Control.report("LOST", "SERVICE", type.name(), status.name());
        }
    }

    /** A status of the deployment, the way B's AIL shows it. */
    private void apply(ServiceStatus.Type type, ServiceStatus.Status status) {
        if (status == ServiceStatus.Status.ON) {
            if (statuses.get(type) != ServiceStatus.Status.RESTORING) {
                fire(type, ServiceStatus.Status.RESTORING);
            }
            fire(type, ServiceStatus.Status.ON);
        } else if (status == ServiceStatus.Status.OFF) {
            fire(type, ServiceStatus.Status.OFF);
            fire(type, ServiceStatus.Status.ABSENT);
        } else {
            fire(type, status);
        }
    }

    /** A service leaves RESTORING for what the deployment said. */
    private void settle(ServiceStatus.Type type) {
        try {
            Thread.sleep(SETTLE_MS);
        } catch (InterruptedException e) {
            return;
        }
        synchronized (this) {
            ServiceStatus.Status real = pending.remove(type);
            if (real != null) {
                apply(type, real);
            }
        }
    }

    /** Whatever the client holds only weakly is gone by now. */
    @Override
    void beforeMessage() {
        System.gc();
    }

    @Override
    void onStatus(ServiceStatus.Type type, ServiceStatus.Status status) {
        synchronized (this) {
            if (!pending.containsKey(type)) {
                apply(type, status);
            } else {
                pending.put(type, status);
            }
        }
    }

    @Override
    void onConfig(String objectType, String name, String section, String option, String value) {
        for (WeakReference<com.genesyslab.ail.event.ConfigListener> r : configListeners) {
            com.genesyslab.ail.event.ConfigListener l = r.get();
            if (l != null) {
                l.configChanged(objectType, name, section, option, value);
            } else {
                Control.report("LOST", "CONFIG", name, option);
            }
        }
    }

    @Override
    void onDn(String[] m) {
        String id = m[1];
        Dn.Status status = Dn.Status.valueOf(m[2]);
        // B keeps every T-event key in the extensions, the reason code too.
        Map<String, String> reasons = new LinkedHashMap<>();
        Map<String, String> extensions = new LinkedHashMap<>();
        for (int i = 3; i + 2 < m.length; i += 3) {
            extensions.put(m[i + 1], m[i + 2]);
        }
        WeakReference<Dn> ref = dns.get(id);
        Dn dn = ref == null ? null : ref.get();
        int delivered = 0;
        if (dn != null) {
            if (status == Dn.Status.LOGGED_OUT) {
                delivered = dn.fire(new DnEvent(dn, DnEvent.EventReason.STATUS_CHANGED, status, reasons, extensions));
                dn.fire(new DnEvent(dn, DnEvent.EventReason.INFO_CHANGED, status, reasons, extensions));
            } else {
                delivered = dn.fire(new DnEvent(dn, DnEvent.EventReason.INFO_CHANGED, status, reasons, extensions));
            }
        }
        if (delivered == 0 && listenedDns.contains(id)) {
            Control.report("LOST", "DN", id, status.name());
        }
    }

    @Override
    void onLost() {
        fire(ServiceStatus.Type.AIL, ServiceStatus.Status.RESTORING);
        fire(ServiceStatus.Type.AIL, ServiceStatus.Status.OFF);
    }
}

package com.genesyslab.ail;

import com.genesyslab.ail.event.DnEvent;
import com.genesyslab.ail.event.ServiceListener;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Stand-in for AIL's factory: what one login at one CS Proxy gave. The
 * deployment (the test) sends the configuration objects and service statuses
 * at login, then pushes status changes and DN events on the same connection;
 * losing the connection turns the AIL service OFF.
 *
 * <p>Wire, one message a line (tab-separated, URL-encoded fields):
 * <pre>
 * desktop:    LOGIN app user password on-demand retry-interval | LISTEN DN id | LISTEN SERVICE type | BYE
 *             | AGENTLOGIN dn queue workmode reasons
 * deployment: PERSON user section option value | APP name host port | OPTION app section option value
 *             | STATUS type status | OK | ERR message | AGENTLOGIN dn [error]
 *             | CONFIG object-type name section option [value]
 *             | DN id status [R key value]... [X key value]...
 * </pre>
 */
public final class AilFactory extends FactoryBase {
    private final Map<ServiceStatus.Type, List<ServiceListener>> serviceListeners = new ConcurrentHashMap<>();
    private final Map<String, Dn> dns = new ConcurrentHashMap<>();
    private final List<com.genesyslab.ail.event.ConfigListener> configListeners = new CopyOnWriteArrayList<>();

    /** The factory of one login; its event thread starts at once. */
    AilFactory(LoginAnswer answer) {
        super(answer);
        statuses.putAll(answer.statuses);
        start("ail-standin-events");
    }

    /** Listens to one service's status changes. */
    public void addServiceListener(ServiceStatus.Type type, ServiceListener listener) {
        serviceListeners.computeIfAbsent(type, k -> new CopyOnWriteArrayList<>()).add(listener);
        link.send("LISTEN", "SERVICE", type.name());
    }

    /** Stops listening. */
    public void removeServiceListener(ServiceStatus.Type type, ServiceListener listener) {
        List<ServiceListener> list = serviceListeners.get(type);
        if (list != null) {
            list.remove(listener);
        }
    }

    /** Follows changes of configuration objects (E5). */
    public void addConfigListener(com.genesyslab.ail.event.ConfigListener listener) {
        configListeners.add(listener);
    }

    /** The DN with this number. */
    public Dn getDn(String id) {
        return dns.computeIfAbsent(id, k -> new Dn(k, link));
    }

    @Override
    void onStatus(ServiceStatus.Type type, ServiceStatus.Status status) {
        statuses.put(type, status);
        for (ServiceListener l : serviceListeners.getOrDefault(type, List.of())) {
            l.serviceStatusChanged(type, status);
        }
    }

    @Override
    void onConfig(String objectType, String name, String section, String option, String value) {
        for (com.genesyslab.ail.event.ConfigListener l : configListeners) {
            l.configChanged(objectType, name, section, option, value);
        }
    }

    @Override
    void onDn(String[] m) {
        Dn dn = dns.get(m[1]);
        if (dn == null) {
            return;
        }
        Map<String, String> reasons = new LinkedHashMap<>();
        Map<String, String> extensions = new LinkedHashMap<>();
        for (int i = 3; i + 2 < m.length; i += 3) {
            (m[i].equals("R") ? reasons : extensions).put(m[i + 1], m[i + 2]);
        }
        dn.fire(new DnEvent(dn, DnEvent.EventReason.STATUS_CHANGED, Dn.Status.valueOf(m[2]), reasons, extensions));
    }

    @Override
    void onLost() {
        onStatus(ServiceStatus.Type.AIL, ServiceStatus.Status.OFF);
    }
}

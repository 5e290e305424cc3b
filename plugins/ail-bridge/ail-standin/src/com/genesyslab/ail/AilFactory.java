package com.genesyslab.ail;

import com.genesyslab.ail.event.DnEvent;
import com.genesyslab.ail.event.ServiceListener;
import java.io.IOException;
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
public final class AilFactory {
    private final Link link;
    private final Map<String, Person> persons;
    private final Map<String, Application> applications;
    private final Map<ServiceStatus.Type, ServiceStatus.Status> statuses = new ConcurrentHashMap<>();
    private final Map<ServiceStatus.Type, List<ServiceListener>> serviceListeners = new ConcurrentHashMap<>();
    private final Map<String, Dn> dns = new ConcurrentHashMap<>();
    private final List<com.genesyslab.ail.event.ConfigListener> configListeners = new CopyOnWriteArrayList<>();
    private volatile boolean killed;

    private AilFactory(Link link, Map<String, Person> persons, Map<String, Application> applications) {
        this.link = link;
        this.persons = persons;
        this.applications = applications;
    }

    static AilFactory login(String host, int port, String app, String user, String password, int retryInterval,
            String onDemand) throws Exception {
        LoginAnswer answer = LoginAnswer.login(host, port, app, user, password, retryInterval, onDemand);
        AilFactory factory = new AilFactory(answer.link, answer.persons, answer.applications);
        factory.statuses.putAll(answer.statuses);
        factory.statuses.put(ServiceStatus.Type.AIL, ServiceStatus.Status.ON);
        Thread reader = new Thread(factory::read, "ail-standin-events");
        reader.setDaemon(true);
        reader.start();
        return factory;
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

    void kill() {
        killed = true;
        link.send("BYE");
        link.close();
    }

    private void setStatus(ServiceStatus.Type type, ServiceStatus.Status status) {
        statuses.put(type, status);
        for (ServiceListener l : serviceListeners.getOrDefault(type, List.of())) {
            l.serviceStatusChanged(type, status);
        }
    }

    /** The event thread: deployment messages become listener callbacks. */
    private void read() {
        try {
            String[] m;
            while ((m = link.read()) != null) {
                if (m[0].equals("STATUS") && m.length >= 3) {
                    setStatus(ServiceStatus.Type.valueOf(m[1]), ServiceStatus.Status.valueOf(m[2]));
                } else if (m[0].equals("CONFIG") && m.length >= 5) {
                    String value = m.length > 5 ? m[5] : null;
                    for (com.genesyslab.ail.event.ConfigListener l : configListeners) {
                        l.configChanged(m[1], m[2], m[3], m[4], value);
                    }
                } else if (m[0].equals("AGENTLOGIN") && m.length >= 2) {
                    link.loginAnswered(m[1], m.length > 2 ? m[2] : "");
                } else if (m[0].equals("DN") && m.length >= 3) {
                    Dn dn = dns.get(m[1]);
                    if (dn == null) {
                        continue;
                    }
                    Map<String, String> reasons = new LinkedHashMap<>();
                    Map<String, String> extensions = new LinkedHashMap<>();
                    for (int i = 3; i + 2 < m.length; i += 3) {
                        (m[i].equals("R") ? reasons : extensions).put(m[i + 1], m[i + 2]);
                    }
                    dn.fire(new DnEvent(dn, DnEvent.EventReason.STATUS_CHANGED, Dn.Status.valueOf(m[2]), reasons,
                            extensions));
                }
            }
        } catch (IOException | RuntimeException e) {
            // Same as end of stream: the session is gone.
        }
        link.failLogins("the CS Proxy connection was lost during the login");
        if (!killed) {
            setStatus(ServiceStatus.Type.AIL, ServiceStatus.Status.OFF);
        }
    }
}

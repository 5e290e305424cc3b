package com.genesyslab.ail;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One LOGIN at a CS Proxy and its answer up to {@code OK}: the Person and
 * Application objects and the services' statuses at login. Both stand-in
 * variants log in through it (the wire is the same); what a factory makes of
 * the statuses is the variant's.
 */
final class LoginAnswer {
    /** The logged-in connection, its read timeout cleared for the event thread. */
    final Link link;
    /** The Person objects, by user name. */
    final Map<String, Person> persons = new ConcurrentHashMap<>();
    /** The AIL Application objects, by name. */
    final Map<String, Application> applications = new ConcurrentHashMap<>();
    /** The services' statuses as the deployment sent them, in its order. */
    final Map<ServiceStatus.Type, ServiceStatus.Status> statuses = new LinkedHashMap<>();

    private LoginAnswer(Link link) {
        this.link = link;
    }

    /**
     * Logs in at {@code host:port}; an {@code ERR} answer or a connection
     * closed before {@code OK} throws (the connection closed).
     */
    static LoginAnswer login(String host, int port, String app, String user, String password, int retryInterval,
            String onDemand) throws Exception {
        Link link = Link.open(host, port, 5000);
        try {
            link.timeout(10_000);
            link.send("LOGIN", app, user, password, onDemand, Integer.toString(retryInterval));
            LoginAnswer answer = new LoginAnswer(link);
            answer.read(host, port);
            link.timeout(0);
            return answer;
        } catch (Exception e) {
            link.close();
            throw e;
        }
    }

    /** Reads the deployment's messages up to {@code OK}. */
    private void read(String host, int port) throws Exception {
        Map<String, Map<String, Map<String, String>>> annexes = new LinkedHashMap<>();
        Map<String, String[]> apps = new LinkedHashMap<>();
        Map<String, Map<String, Map<String, String>>> options = new LinkedHashMap<>();
        while (true) {
            String[] m = link.read();
            if (m == null) {
                throw new IOException("CS Proxy " + host + ":" + port + " closed the connection during login");
            }
            switch (m[0]) {
                case "PERSON":
                    annexes.computeIfAbsent(m[1], k -> new LinkedHashMap<>())
                            .computeIfAbsent(m[2], k -> new LinkedHashMap<>()).put(m[3], m[4]);
                    break;
                case "APP":
                    apps.put(m[1], new String[] {m[2], m[3]});
                    break;
                case "OPTION":
                    options.computeIfAbsent(m[1], k -> new LinkedHashMap<>())
                            .computeIfAbsent(m[2], k -> new LinkedHashMap<>()).put(m[3], m[4]);
                    break;
                case "STATUS":
                    statuses.put(ServiceStatus.Type.valueOf(m[1]), ServiceStatus.Status.valueOf(m[2]));
                    break;
                case "ERR":
                    throw new Exception(m.length > 1 ? m[1] : "login refused");
                case "OK":
                    annexes.forEach((u, annex) -> persons.put(u, new Person(u, annex)));
                    apps.forEach((name, hp) -> applications.put(name, new Application(name, hp[0],
                            Integer.parseInt(hp[1]), options.getOrDefault(name, Map.of()))));
                    return;
                default:
                    break;
            }
        }
    }
}

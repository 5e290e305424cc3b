package com.genesyslab.ail;

import com.genesyslab.ail.event.DnEvent;
import com.genesyslab.ail.event.DnListener;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/** Stand-in for an AIL DN. */
public final class Dn {
    /** A DN's status. */
    public enum Status { IN_SERVICE, OUT_OF_SERVICE, LOGGED_IN, LOGGED_OUT, UNKNOWN }

    private final String id;
    private final Link link;
    private final List<DnListener> listeners = new CopyOnWriteArrayList<>();

    Dn(String id, Link link) {
        this.id = id;
        this.link = link;
    }

    /** The DN's number. */
    public String getId() {
        return id;
    }

    /** Listens to this DN's events (and tells the deployment the desktop listens). */
    public void addDnListener(DnListener listener) {
        listeners.add(listener);
        link.send("LISTEN", "DN", id);
    }

    /** Logs the agent in on this DN (W5; ASSUMED shape): blocks until the switch answers. */
    public void login(AgentWorkmode workmode, String queue, Map<String, String> reasons) throws Exception {
        link.agentLogin(id, queue, workmode, reasons);
    }

    /** Stops listening. */
    public void removeDnListener(DnListener listener) {
        listeners.remove(listener);
    }

    void fire(DnEvent event) {
        for (DnListener l : listeners) {
            l.handleDnEvent(event);
        }
    }
}

package com.genesyslab.ail;

import com.genesyslab.ail.event.DnEvent;
import com.genesyslab.ail.event.DnListener;
import java.lang.ref.WeakReference;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

/** Stand-in B's DN: it holds its listeners weakly. */
public final class Dn {
    /** A DN's status. */
    public enum Status { IN_SERVICE, OUT_OF_SERVICE, LOGGED_IN, LOGGED_OUT, UNKNOWN }

    private final String id;
    private final Link link;
    private final Set<String> listened;
    private final List<WeakReference<DnListener>> listeners = new CopyOnWriteArrayList<>();

    Dn(String id, Link link, Set<String> listened) {
        this.id = id;
        this.link = link;
        this.listened = listened;
    }

    /** The DN's number. */
    public String getId() {
        return id;
    }

    /** Listens to this DN's events, weakly (and tells the deployment the desktop listens). */
    public void addDnListener(DnListener listener) {
        listeners.add(new WeakReference<>(listener));
        listened.add(id);
        link.send("LISTEN", "DN", id);
    }

    /** Logs the agent in on this DN (W5; ASSUMED shape): blocks until the switch answers. */
    public void login(AgentWorkmode workmode, String queue, Map<String, String> reasons) throws Exception {
        link.agentLogin(id, queue, workmode, reasons);
    }

    /** Stops listening. */
    public void removeDnListener(DnListener listener) {
        listeners.removeIf(r -> r.get() == null || r.get() == listener);
    }

    /** Delivers an event; how many listeners were still alive. */
    int fire(DnEvent event) {
        int alive = 0;
        for (WeakReference<DnListener> r : listeners) {
            DnListener l = r.get();
            if (l != null) {
                l.handleDnEvent(event);
                alive++;
            }
        }
        return alive;
    }
}

package com.genesyslab.ail.event;

import com.genesyslab.ail.Dn;
import java.util.Map;

/** Stand-in for AIL's DnEvent. */
public final class DnEvent {
    /** Why the event was sent. */
    public enum EventReason { STATUS_CHANGED, INFO_CHANGED }

    private final Dn dn;
    private final EventReason reason;
    private final Dn.Status status;
    private final Map<String, String> reasons;
    private final Map<String, String> extensions;

    /** An event on {@code dn}. */
    public DnEvent(Dn dn, EventReason reason, Dn.Status status, Map<String, String> reasons,
            Map<String, String> extensions) {
        this.dn = dn;
        this.reason = reason;
        this.status = status;
        this.reasons = reasons;
        this.extensions = extensions;
    }

    /** The DN. */
    public Dn getDn() {
        return dn;
    }

    /** Why. */
    public EventReason getEventReason() {
        return reason;
    }

    /** The DN's status after the event. */
    public Dn.Status getStatus() {
        return status;
    }

    /** The T-event's reasons (ReasonCode, ...). */
    public Map<String, String> getReasons() {
        return reasons;
    }

    /** The T-event's extensions. */
    public Map<String, String> getExtensions() {
        return extensions;
    }
}

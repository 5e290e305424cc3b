package drctl.ailbridge;

import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * Every AIL class, method and constant name the adapter uses, under a stable
 * key ({@code class.loader}, {@code method.kill-factory}, ...), with its
 * built-in default, where that default comes from, and the names file's
 * override if any ({@code backend.ail-bridge.names}). An AIL version that
 * names something differently is fixed in that file, without a rebuild.
 *
 * <p>Sources: {@code guide} is the public AIL developer guide, {@code ASSUMED}
 * is a guess the guide does not pin down (see plugins/ail-bridge/README.md).
 */
final class Names {
    /** Where a default name comes from. */
    enum Source {
        GUIDE("guide"), ASSUMED("ASSUMED");

        final String label;

        Source(String label) {
            this.label = label;
        }
    }

    /** One name: its key, default and source. */
    record Entry(String key, String defaultName, Source source) {}

    // ---- Keys --------------------------------------------------------------
    static final String LOADER = "class.loader";
    static final String FACTORY = "class.factory";
    static final String SERVICE_TYPE = "class.service-type";
    static final String SERVICE_STATUS = "class.service-status";
    static final String SERVICE_LISTENER = "class.service-listener";
    static final String PERSON = "class.person";
    static final String APPLICATION = "class.application";
    static final String DN = "class.dn";
    static final String DN_STATUS = "class.dn-status";
    static final String DN_LISTENER = "class.dn-listener";
    static final String DN_EVENT = "class.dn-event";
    static final String DN_EVENT_REASON = "class.dn-event-reason";
    static final String AGENT_WORKMODE = "class.agent-workmode";
    static final String CONFIG_LISTENER = "class.config-listener";

    static final String GET_AIL_FACTORY = "method.get-ail-factory";
    static final String KILL_FACTORY = "method.kill-factory";
    static final String GET_INIT_EXCEPTION = "method.get-init-exception";
    static final String GET_PERSON = "method.get-person";
    static final String PERSON_ANNEX = "method.person-annex";
    static final String GET_APPLICATION = "method.get-application";
    static final String APPLICATION_HOST = "method.application-host";
    static final String APPLICATION_PORT = "method.application-port";
    static final String APPLICATION_OPTIONS = "method.application-options";
    static final String GET_SERVICE_STATUS = "method.get-service-status";
    static final String ADD_SERVICE_LISTENER = "method.add-service-listener";
    static final String SERVICE_STATUS_CHANGED = "method.service-status-changed";
    static final String GET_DN = "method.get-dn";
    static final String ADD_DN_LISTENER = "method.add-dn-listener";
    static final String HANDLE_DN_EVENT = "method.handle-dn-event";
    static final String DN_EVENT_REASON_OF = "method.dn-event-reason";
    static final String DN_EVENT_STATUS = "method.dn-event-status";
    static final String DN_EVENT_REASONS = "method.dn-event-reasons";
    static final String DN_EVENT_EXTENSIONS = "method.dn-event-extensions";
    static final String DN_LOGIN = "method.dn-login";
    static final String ADD_CONFIG_LISTENER = "method.add-config-listener";
    static final String CONFIG_CHANGED = "method.config-changed";

    static final String TYPE_TELEPHONY = "constant.type-telephony";
    static final String TYPE_CONFIG = "constant.type-config";
    static final String TYPE_STATISTICS = "constant.type-statistics";
    static final String TYPE_AIL = "constant.type-ail";
    static final String STATUS_ON = "constant.status-on";
    static final String STATUS_OFF = "constant.status-off";
    static final String STATUS_UNKNOWN = "constant.status-unknown";
    static final String REASON_STATUS_CHANGED = "constant.reason-status-changed";
    static final String DN_LOGGED_OUT = "constant.dn-logged-out";
    static final String DN_IN_SERVICE = "constant.dn-in-service";
    static final String DN_OUT_OF_SERVICE = "constant.dn-out-of-service";

    private static final Source G = Source.GUIDE;
    private static final Source A = Source.ASSUMED;

    /** Every name, in the order the self-test prints them. */
    static final List<Entry> ALL = List.of(
            new Entry(LOADER, "com.genesyslab.ail.AilLoader", G),
            new Entry(FACTORY, "com.genesyslab.ail.AilFactory", G),
            new Entry(SERVICE_TYPE, "com.genesyslab.ail.ServiceStatus$Type", G),
            new Entry(SERVICE_STATUS, "com.genesyslab.ail.ServiceStatus$Status", G),
            // The guide names the interface ServiceListener, not its package.
            new Entry(SERVICE_LISTENER, "com.genesyslab.ail.event.ServiceListener", A),
            new Entry(PERSON, "com.genesyslab.ail.Person", A),
            new Entry(APPLICATION, "com.genesyslab.ail.Application", A),
            new Entry(DN, "com.genesyslab.ail.Dn", A),
            new Entry(DN_STATUS, "com.genesyslab.ail.Dn$Status", A),
            // The guide shows handleDnEvent on PlaceListener.
            new Entry(DN_LISTENER, "com.genesyslab.ail.event.DnListener", A),
            new Entry(DN_EVENT, "com.genesyslab.ail.event.DnEvent", G),
            new Entry(DN_EVENT_REASON, "com.genesyslab.ail.event.DnEvent$EventReason", G),
            // W5: the agent login on the DN (issue 15); shape and names ASSUMED.
            new Entry(AGENT_WORKMODE, "com.genesyslab.ail.AgentWorkmode", A),
            // E5: Configuration Server change notifications (issue 18); ASSUMED.
            new Entry(CONFIG_LISTENER, "com.genesyslab.ail.event.ConfigListener", A),
            new Entry(GET_AIL_FACTORY, "getAilFactory", G),
            new Entry(KILL_FACTORY, "killFactory", G),
            new Entry(GET_INIT_EXCEPTION, "getInitException", G),
            new Entry(GET_PERSON, "getPerson", A),
            new Entry(PERSON_ANNEX, "getAnnex", A),
            new Entry(GET_APPLICATION, "getApplication", A),
            new Entry(APPLICATION_HOST, "getConfigServerHost", A),
            new Entry(APPLICATION_PORT, "getConfigServerPort", A),
            new Entry(APPLICATION_OPTIONS, "getOptions", A),
            new Entry(GET_SERVICE_STATUS, "getServiceStatus", A),
            new Entry(ADD_SERVICE_LISTENER, "addServiceListener", A),
            new Entry(SERVICE_STATUS_CHANGED, "serviceStatusChanged", A),
            new Entry(GET_DN, "getDn", A),
            new Entry(ADD_DN_LISTENER, "addDnListener", A),
            new Entry(HANDLE_DN_EVENT, "handleDnEvent", G),
            new Entry(DN_EVENT_REASON_OF, "getEventReason", A),
            new Entry(DN_EVENT_STATUS, "getStatus", A),
            new Entry(DN_EVENT_REASONS, "getReasons", A),
            new Entry(DN_EVENT_EXTENSIONS, "getExtensions", A),
            new Entry(DN_LOGIN, "login", A),
            new Entry(ADD_CONFIG_LISTENER, "addConfigListener", A),
            new Entry(CONFIG_CHANGED, "configChanged", A),
            new Entry(TYPE_TELEPHONY, "TELEPHONY", G),
            new Entry(TYPE_CONFIG, "CONFIG", G),
            // The guide's list of ServiceStatus.Type has no statistic service.
            new Entry(TYPE_STATISTICS, "STATISTICS", A),
            new Entry(TYPE_AIL, "AIL", G),
            new Entry(STATUS_ON, "ON", G),
            new Entry(STATUS_OFF, "OFF", G),
            new Entry(STATUS_UNKNOWN, "UNKNOWN", G),
            new Entry(REASON_STATUS_CHANGED, "STATUS_CHANGED", G),
            new Entry(DN_LOGGED_OUT, "LOGGED_OUT", A),
            new Entry(DN_IN_SERVICE, "IN_SERVICE", A),
            new Entry(DN_OUT_OF_SERVICE, "OUT_OF_SERVICE", G));

    /** The longest name the names file may give (a Java name is far shorter). */
    private static final int MAX_NAME = 512;

    private final Map<String, String> overrides;
    private final String file;
    private final List<String> errors;

    private Names(Map<String, String> overrides, String file, List<String> errors) {
        this.overrides = overrides;
        this.file = file;
        this.errors = errors;
    }

    /** The built-in names, nothing overridden. */
    static Names defaults() {
        return new Names(Map.of(), null, List.of());
    }

    /**
     * The names with the file's overrides: {@code table} as the plugin read
     * it from a TOML file (keys flattened with dots), or {@code properties},
     * the text of a Java properties file (read here with
     * {@link Properties#load}). Unknown keys and empty names are errors, each
     * naming the key and the file.
     */
    static Names from(Map<?, ?> table, String properties, String file) {
        Map<String, String> raw = new LinkedHashMap<>();
        List<String> errors = new ArrayList<>();
        String where = file == null ? "the names file" : file;
        if (table != null) {
            for (Map.Entry<?, ?> e : table.entrySet()) {
                raw.put(String.valueOf(e.getKey()), e.getValue() instanceof String s ? s : null);
            }
        }
        if (properties != null) {
            Properties p = new Properties();
            try {
                p.load(new StringReader(properties));
            } catch (IOException | IllegalArgumentException e) {
                errors.add(where + ": not a properties file: " + e.getMessage());
            }
            for (String key : p.stringPropertyNames()) {
                raw.put(key, p.getProperty(key));
            }
        }
        Map<String, String> overrides = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : raw.entrySet()) {
            String key = e.getKey().trim();
            String value = e.getValue() == null ? null : e.getValue().trim();
            if (entry(key) == null) {
                errors.add(where + ": unknown key " + key + " (the keys are listed by drctl-ail-bridge self-test)");
            } else if (value == null || value.isEmpty() || value.length() > MAX_NAME) {
                errors.add(where + ": " + key + " must be a name of 1 to " + MAX_NAME + " characters");
            } else {
                overrides.put(key, value);
            }
        }
        return new Names(overrides, file, errors);
    }

    private static Entry entry(String key) {
        for (Entry e : ALL) {
            if (e.key.equals(key)) {
                return e;
            }
        }
        return null;
    }

    /** The effective name of {@code key}. */
    String get(String key) {
        String name = overrides.get(key);
        if (name != null) {
            return name;
        }
        Entry e = entry(key);
        if (e == null) {
            throw new IllegalArgumentException("no AIL name key " + key);
        }
        return e.defaultName;
    }

    /** Problems with the names file (none without one). */
    List<String> errors() {
        return Collections.unmodifiableList(errors);
    }

    /** The effective mapping, one line a name, with its source or override. */
    List<String> report() {
        List<String> lines = new ArrayList<>();
        lines.add("names: " + (file == null ? "built-in" : file + " (" + overrides.size() + " overridden)"));
        int width = 0;
        for (Entry e : ALL) {
            width = Math.max(width, e.key.length());
        }
        for (Entry e : ALL) {
            String name = overrides.get(e.key);
            String how = name == null ? e.source.label : "names file; default " + e.defaultName + ", " + e.source.label;
            lines.add(String.format("  %-" + width + "s = %s  (%s)", e.key, get(e.key), how));
        }
        return lines;
    }
}

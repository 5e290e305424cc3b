package drctl.ailbridge;

import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The AIL adapter: the only class that knows AIL's class, method and constant
 * names. It reaches AIL through reflection, so no AIL jar is needed to compile
 * the sidecar, and an AIL version that names something differently is fixed
 * here and nowhere else.
 *
 * <p>Names come from the public AIL developer guide where it pins them down
 * (AilLoader with getAilFactory/killFactory/getInitException, AilFactory,
 * ServiceStatus.Type/Status, ServiceListener, DnEvent and its EventReason,
 * handleDnEvent). Every other name is marked {@code ASSUMED} below and listed
 * in plugins/ail-bridge/README.md; {@code --self-test} checks all of them
 * against the AIL jars on the classpath and names each one that is missing.
 */
final class Ail {
    // ---- Classes -----------------------------------------------------------
    static final String LOADER = "com.genesyslab.ail.AilLoader";
    static final String FACTORY = "com.genesyslab.ail.AilFactory";
    static final String SERVICE_TYPE = "com.genesyslab.ail.ServiceStatus$Type";
    static final String SERVICE_STATE = "com.genesyslab.ail.ServiceStatus$Status";
    /** ASSUMED: the package; the guide names the interface ServiceListener. */
    static final String SERVICE_LISTENER = "com.genesyslab.ail.event.ServiceListener";
    /** ASSUMED: the agent's Person object. */
    static final String PERSON = "com.genesyslab.ail.Person";
    /** ASSUMED: an AIL Application configuration object. */
    static final String APPLICATION = "com.genesyslab.ail.Application";
    /** ASSUMED: a DN. */
    static final String DN = "com.genesyslab.ail.Dn";
    /** ASSUMED: a DN's status. */
    static final String DN_STATUS = "com.genesyslab.ail.Dn$Status";
    /** ASSUMED: a listener on one DN (the guide shows handleDnEvent on PlaceListener). */
    static final String DN_LISTENER = "com.genesyslab.ail.event.DnListener";
    static final String DN_EVENT = "com.genesyslab.ail.event.DnEvent";
    static final String DN_EVENT_REASON = "com.genesyslab.ail.event.DnEvent$EventReason";

    // ---- Constants ---------------------------------------------------------
    static final String TYPE_TELEPHONY = "TELEPHONY";
    static final String TYPE_CONFIG = "CONFIG";
    /** ASSUMED: the guide's list of ServiceStatus.Type has no statistic service. */
    static final String TYPE_STATISTICS = "STATISTICS";
    static final String TYPE_AIL = "AIL";
    static final String STATUS_ON = "ON";
    static final String STATUS_OFF = "OFF";
    static final String STATUS_UNKNOWN = "UNKNOWN";
    static final String REASON_STATUS_CHANGED = "STATUS_CHANGED";
    /** ASSUMED: EventAgentLogout shows as this DN status. */
    static final String DN_LOGGED_OUT = "LOGGED_OUT";
    /** ASSUMED: EventDNBackInService shows as this DN status. */
    static final String DN_IN_SERVICE = "IN_SERVICE";
    static final String DN_OUT_OF_SERVICE = "OUT_OF_SERVICE";
    /** The seed's option, handed to AilLoader in its Properties (ASSUMED: that it goes there). */
    static final String OPTION_ON_DEMAND = "loading/on-demand";
    /** ASSUMED: the key of the logout reason code in the event's reasons. */
    static final String REASON_CODE_KEY = "ReasonCode";

    /** One class, method, constructor or constant the bridge needs. */
    private record Need(String owner, String member, String[] params, boolean isStatic, boolean assumed) {
        String display() {
            String cls = owner.replace('$', '.');
            if (member == null) {
                return cls;
            }
            if (params == null) {
                return cls + "." + member;
            }
            List<String> shown = new ArrayList<>();
            for (String p : params) {
                shown.add(p.substring(p.lastIndexOf('.') + 1).replace('$', '.'));
            }
            String name = member.equals("<init>") ? "" : "." + member;
            return cls + name + "(" + String.join(", ", shown) + ")" + (isStatic ? " [static]" : "");
        }
    }

    private static Need cls(String owner, boolean assumed) {
        return new Need(owner, null, null, false, assumed);
    }

    private static Need method(String owner, String name, boolean assumed, String... params) {
        return new Need(owner, name, params, false, assumed);
    }

    private static Need staticMethod(String owner, String name, boolean assumed, String... params) {
        return new Need(owner, name, params, true, assumed);
    }

    private static Need constant(String owner, String name, boolean assumed) {
        return new Need(owner, name, null, true, assumed);
    }

    private static final String STRING = "java.lang.String";

    // ---- Methods and constructors -----------------------------------------
    /** ASSUMED: (CS Proxy host, port, application, user, password, retry interval s, options). */
    private static final Need LOADER_NEW = method(LOADER, "<init>", true,
            STRING, "int", STRING, STRING, STRING, "int", "java.util.Properties");
    private static final Need GET_FACTORY = staticMethod(LOADER, "getAilFactory", false);
    private static final Need KILL_FACTORY = staticMethod(LOADER, "killFactory", false);
    private static final Need INIT_EXCEPTION = staticMethod(LOADER, "getInitException", false);
    private static final Need GET_PERSON = method(FACTORY, "getPerson", true, STRING);
    /** ASSUMED: the annex as section -> option -> value. */
    private static final Need PERSON_ANNEX = method(PERSON, "getAnnex", true);
    private static final Need GET_APPLICATION = method(FACTORY, "getApplication", true, STRING);
    /** ASSUMED: the application's CS Proxy connection. */
    private static final Need APP_HOST = method(APPLICATION, "getConfigServerHost", true);
    private static final Need APP_PORT = method(APPLICATION, "getConfigServerPort", true);
    /** ASSUMED: the application's options as section -> option -> value. */
    private static final Need APP_OPTIONS = method(APPLICATION, "getOptions", true);
    private static final Need SERVICE_STATUS = method(FACTORY, "getServiceStatus", true, SERVICE_TYPE);
    private static final Need ADD_SERVICE_LISTENER =
            method(FACTORY, "addServiceListener", true, SERVICE_TYPE, SERVICE_LISTENER);
    private static final Need SERVICE_CHANGED =
            method(SERVICE_LISTENER, "serviceStatusChanged", true, SERVICE_TYPE, SERVICE_STATE);
    private static final Need GET_DN = method(FACTORY, "getDn", true, STRING);
    private static final Need ADD_DN_LISTENER = method(DN, "addDnListener", true, DN_LISTENER);
    private static final Need HANDLE_DN_EVENT = method(DN_LISTENER, "handleDnEvent", false, DN_EVENT);
    private static final Need DN_EVENT_REASON_OF = method(DN_EVENT, "getEventReason", true);
    private static final Need DN_EVENT_STATUS = method(DN_EVENT, "getStatus", true);
    /** ASSUMED: the event's reasons and extensions as key -> value. */
    private static final Need DN_EVENT_REASONS = method(DN_EVENT, "getReasons", true);
    private static final Need DN_EVENT_EXTENSIONS = method(DN_EVENT, "getExtensions", true);

    /** Everything, in the order the self-test reports it. */
    private static final List<Need> ALL = List.of(
            cls(LOADER, false), LOADER_NEW, GET_FACTORY, KILL_FACTORY, INIT_EXCEPTION,
            cls(FACTORY, false), GET_PERSON, GET_APPLICATION, SERVICE_STATUS, ADD_SERVICE_LISTENER, GET_DN,
            cls(PERSON, true), PERSON_ANNEX,
            cls(APPLICATION, true), APP_HOST, APP_PORT, APP_OPTIONS,
            cls(SERVICE_TYPE, false), constant(SERVICE_TYPE, TYPE_TELEPHONY, false),
            constant(SERVICE_TYPE, TYPE_CONFIG, false), constant(SERVICE_TYPE, TYPE_STATISTICS, true),
            constant(SERVICE_TYPE, TYPE_AIL, false),
            cls(SERVICE_STATE, false), constant(SERVICE_STATE, STATUS_ON, false),
            constant(SERVICE_STATE, STATUS_OFF, false),
            cls(SERVICE_LISTENER, true), SERVICE_CHANGED,
            cls(DN, true), ADD_DN_LISTENER,
            cls(DN_STATUS, true), constant(DN_STATUS, DN_LOGGED_OUT, true),
            constant(DN_STATUS, DN_IN_SERVICE, true), constant(DN_STATUS, DN_OUT_OF_SERVICE, true),
            cls(DN_LISTENER, true), HANDLE_DN_EVENT,
            cls(DN_EVENT, false), DN_EVENT_REASON_OF, DN_EVENT_STATUS, DN_EVENT_REASONS, DN_EVENT_EXTENSIONS,
            cls(DN_EVENT_REASON, false), constant(DN_EVENT_REASON, REASON_STATUS_CHANGED, false));

    private final ClassLoader loader;
    private final Map<String, Class<?>> classes = new LinkedHashMap<>();
    private final Map<Need, Executable> members = new LinkedHashMap<>();
    private final Map<String, Object> constants = new LinkedHashMap<>();
    private final List<String> missing = new ArrayList<>();
    private final List<String> report = new ArrayList<>();

    private Ail(ClassLoader loader) {
        this.loader = loader;
    }

    /**
     * Loads every name without initializing any AIL class and without
     * connecting anywhere; see {@link #missing()}.
     */
    static Ail resolve() {
        Ail ail = new Ail(Ail.class.getClassLoader());
        for (Need need : ALL) {
            String problem = ail.resolveOne(need);
            String tag = need.assumed ? "  (ASSUMED)" : "";
            if (problem == null) {
                ail.report.add("ok       " + need.display() + tag);
            } else {
                ail.missing.add(need.display());
                ail.report.add("MISSING  " + need.display() + tag + ": " + problem);
            }
        }
        return ail;
    }

    /** Every name that could not be resolved, as {@code Class.method(Params)}. */
    List<String> missing() {
        return Collections.unmodifiableList(missing);
    }

    /** One line per name: ok or MISSING, with ASSUMED marks. */
    List<String> report() {
        return Collections.unmodifiableList(report);
    }

    /** How many names the adapter uses. */
    static int count() {
        return ALL.size();
    }

    private Class<?> type(String name) throws ClassNotFoundException {
        switch (name) {
            case "int": return int.class;
            case "long": return long.class;
            case "boolean": return boolean.class;
            default:
                Class<?> known = classes.get(name);
                return known != null ? known : Class.forName(name, false, loader);
        }
    }

    private String resolveOne(Need need) {
        try {
            Class<?> owner = type(need.owner);
            classes.put(need.owner, owner);
            if (need.member == null) {
                return null;
            }
            if (need.params == null) {
                Object[] values = owner.getEnumConstants();
                if (values == null) {
                    return need.owner.replace('$', '.') + " is not an enum";
                }
                for (Object v : values) {
                    if (((Enum<?>) v).name().equals(need.member)) {
                        constants.put(need.owner + "." + need.member, v);
                        return null;
                    }
                }
                return "no constant " + need.member;
            }
            Class<?>[] params = new Class<?>[need.params.length];
            for (int i = 0; i < params.length; i++) {
                params[i] = type(need.params[i]);
            }
            Executable member;
            if (need.member.equals("<init>")) {
                member = owner.getConstructor(params);
            } else {
                Method m = owner.getMethod(need.member, params);
                if (java.lang.reflect.Modifier.isStatic(m.getModifiers()) != need.isStatic) {
                    return need.isStatic ? "not static" : "static, expected an instance method";
                }
                member = m;
            }
            members.put(need, member);
            return null;
        } catch (ClassNotFoundException e) {
            return "class " + e.getMessage() + " not found";
        } catch (NoSuchMethodException e) {
            return "no such method";
        } catch (LinkageError | SecurityException e) {
            return e.toString();
        }
    }

    // ---- Calls -------------------------------------------------------------

    /** A failure inside AIL, unwrapped from reflection. */
    static final class AilException extends Exception {
        private static final long serialVersionUID = 1L;

        AilException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private Object call(Need need, Object target, Object... args) throws AilException {
        Executable member = members.get(need);
        if (member == null) {
            throw new AilException(need.display() + " is missing from the AIL on the classpath", null);
        }
        try {
            if (member instanceof Constructor<?> c) {
                return c.newInstance(args);
            }
            return ((Method) member).invoke(target, args);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new AilException(describe(cause), cause);
        } catch (ReflectiveOperationException | IllegalArgumentException e) {
            throw new AilException(need.display() + ": " + e, e);
        }
    }

    /** A throwable as {@code SimpleName: message}. */
    static String describe(Throwable t) {
        String msg = t.getMessage();
        return t.getClass().getSimpleName() + (msg == null ? "" : ": " + msg);
    }

    private Object constant(String owner, String name) throws AilException {
        Object v = constants.get(owner + "." + name);
        if (v == null) {
            throw new AilException(owner.replace('$', '.') + "." + name + " is missing", null);
        }
        return v;
    }

    /**
     * Starts AIL against one CS Proxy (W1) and returns its factory. Blocks
     * while AIL loads, as AilLoader does.
     */
    Object load(String host, int port, String app, String user, String password, int retrySeconds,
            boolean onDemand) throws AilException {
        Properties options = new Properties();
        options.setProperty(OPTION_ON_DEMAND, Boolean.toString(onDemand));
        call(LOADER_NEW, null, host, port, app, user, password, retrySeconds, options);
        Object factory = call(GET_FACTORY, null);
        if (factory == null) {
            Object init = call(INIT_EXCEPTION, null);
            String why = init instanceof Throwable t ? describe(t) : "no factory and no init exception";
            throw new AilException(why, init instanceof Throwable t ? t : null);
        }
        return factory;
    }

    /** {@code AilLoader.killFactory()}: ends the AIL session; the JVM stays (seed). */
    void killFactory() throws AilException {
        call(KILL_FACTORY, null);
    }

    /** The Person object's annex: section -> option -> value (empty if none). */
    Map<?, ?> personAnnex(Object factory, String user) throws AilException {
        Object person = call(GET_PERSON, factory, user);
        if (person == null) {
            throw new AilException("no Person object for user " + user, null);
        }
        Object annex = call(PERSON_ANNEX, person);
        return annex instanceof Map<?, ?> m ? m : Map.of();
    }

    /** An AIL Application's CS Proxy and options, or null if there is none of that name. */
    AppInfo application(Object factory, String name) throws AilException {
        Object app = call(GET_APPLICATION, factory, name);
        if (app == null) {
            return null;
        }
        Object host = call(APP_HOST, app);
        Object port = call(APP_PORT, app);
        Object options = call(APP_OPTIONS, app);
        return new AppInfo(String.valueOf(host), port instanceof Number n ? n.intValue() : -1,
                options instanceof Map<?, ?> m ? m : Map.of());
    }

    /** What the bridge reads of an AIL Application (S3). */
    record AppInfo(String host, int port, Map<?, ?> options) {}

    /** The AIL service type for a listener name of the wire, or null for dn. */
    String serviceTypeName(String listener) {
        switch (listener) {
            case "telephony": return TYPE_TELEPHONY;
            case "configuration": return TYPE_CONFIG;
            case "statistic": return TYPE_STATISTICS;
            default: return null;
        }
    }

    /** The wire service name of an AIL service type, or null if the bridge does not report it. */
    static String wireService(String type) {
        switch (type) {
            case TYPE_TELEPHONY: return "telephony";
            case TYPE_CONFIG: return "configuration";
            case TYPE_STATISTICS: return "statistic";
            default: return null;
        }
    }

    /** The current status of a service, by constant name ({@code ON}, {@code OFF}, ...). */
    String serviceStatus(Object factory, String type) throws AilException {
        return name(call(SERVICE_STATUS, factory, constant(SERVICE_TYPE, type)));
    }

    /** Receives the callbacks of the listeners this adapter registers. */
    interface Sink {
        /** A service changed: type and status constant names. */
        void service(String type, String status);

        /** A DN event: reason and DN status constant names, reasons, extensions. */
        void dn(String reason, String status, Map<String, String> reasons, Map<String, String> extensions);
    }

    /** Registers a service listener for {@code type} that reports to {@code sink}. */
    void addServiceListener(Object factory, String type, Sink sink) throws AilException {
        Class<?> iface = classes.get(SERVICE_LISTENER);
        Object listener = proxy(iface, (method, args) -> {
            if (method.getName().equals(SERVICE_CHANGED.member) && args != null && args.length == 2) {
                sink.service(name(args[0]), name(args[1]));
            }
        });
        call(ADD_SERVICE_LISTENER, factory, constant(SERVICE_TYPE, type), listener);
    }

    /** Registers a listener on DN {@code dn} that reports to {@code sink}. */
    void addDnListener(Object factory, String dn, Sink sink) throws AilException {
        Object dnObject = call(GET_DN, factory, dn);
        if (dnObject == null) {
            throw new AilException("no DN " + dn + " in AIL", null);
        }
        Class<?> iface = classes.get(DN_LISTENER);
        Object listener = proxy(iface, (method, args) -> {
            if (method.getName().equals(HANDLE_DN_EVENT.member) && args != null && args.length == 1) {
                Object ev = args[0];
                sink.dn(name(call(DN_EVENT_REASON_OF, ev)), name(call(DN_EVENT_STATUS, ev)),
                        strings(call(DN_EVENT_REASONS, ev)), strings(call(DN_EVENT_EXTENSIONS, ev)));
            }
        });
        call(ADD_DN_LISTENER, dnObject, listener);
    }

    /** A callback body that may throw; failures are logged, never thrown into AIL. */
    private interface Body {
        void run(Method method, Object[] args) throws AilException;
    }

    private Object proxy(Class<?> iface, Body body) {
        InvocationHandler handler = new InvocationHandler() {
            @Override
            public Object invoke(Object self, Method method, Object[] args) {
                if (method.getDeclaringClass() == Object.class) {
                    switch (method.getName()) {
                        case "equals": return args != null && args.length == 1 && self == args[0];
                        case "hashCode": return System.identityHashCode(self);
                        default: return "drctl-ail-bridge " + iface.getSimpleName();
                    }
                }
                try {
                    body.run(method, args);
                } catch (AilException | RuntimeException e) {
                    // An AIL event thread must never see our failure.
                    Log.warn("dropping an AIL callback " + method.getName() + ": " + describe(e));
                }
                return null;
            }
        };
        return Proxy.newProxyInstance(loader, new Class<?>[] {iface}, handler);
    }

    /** The name of an enum constant (or the string form of anything else). */
    static String name(Object value) {
        if (value == null) {
            return null;
        }
        return value instanceof Enum<?> e ? e.name() : value.toString();
    }

    private static Map<String, String> strings(Object map) {
        Map<String, String> out = new LinkedHashMap<>();
        if (map instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (e.getKey() != null && e.getValue() != null) {
                    out.put(e.getKey().toString(), e.getValue().toString());
                }
            }
        }
        return out;
    }
}

package drctl.ailbridge;

import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The AIL adapter: the only class that touches AIL. It reaches AIL through
 * reflection, so no AIL jar is needed to compile the sidecar, and every class,
 * method and constant name it uses comes from {@link Names}, which a names
 * file can override at run time.
 *
 * <p>What the adapter does not assume about AIL's shape:
 * <ul>
 * <li>whether {@code getAilFactory}, {@code getInitException} and
 * {@code killFactory} are static or instance methods of AilLoader: they are
 * called on the AilLoader instance the caller keeps (the guide's samples call
 * {@code mAilLoader.killFactory()}); a static one ignores it;</li>
 * <li>whether a constant is an enum constant or a public static field;</li>
 * <li>whether a nested class is written {@code Outer$Inner} or {@code Outer.Inner}.</li>
 * </ul>
 * AIL objects live only as long as the application references them (the
 * guide), so {@link #load} and the listener registrations return everything
 * the caller must keep for the connection's life.
 *
 * <p>{@code --self-test} checks every name against the AIL jars on the
 * classpath and names each one that is missing.
 */
final class Ail {
    /** Where the sidecar puts {@code loading/on-demand} ({@code on-demand-via}). */
    enum OnDemandVia {
        /** In the {@code Properties} given to the AilLoader constructor (the default). */
        LOADER_PROPERTIES("loader-properties", "in the AilLoader constructor's Properties"),
        /** As a JVM system property, set before each AilLoader is constructed. */
        SYSTEM_PROPERTY("system-property", "as a JVM system property set before each AilLoader"),
        /** Nowhere: AIL reads it from its Application's options in Configuration Server. */
        NONE("none", "not set by drctl (the AIL Application's own option)");

        final String wire;
        final String description;

        OnDemandVia(String wire, String description) {
            this.wire = wire;
            this.description = description;
        }

        /** The value of {@code on-demand-via}, or null if unknown. */
        static OnDemandVia parse(String wire) {
            for (OnDemandVia v : values()) {
                if (v.wire.equals(wire)) {
                    return v;
                }
            }
            return null;
        }
    }

    private enum Kind { CLASS, CONSTRUCTOR, METHOD, CONSTANT }

    /**
     * One class, constructor, method or constant the bridge needs: keys of
     * {@link Names} for the owner class and the member; parameters are class
     * keys ({@code class.*}) or Java types. {@code assumed}: the shape (the
     * signature) is ASSUMED, whatever the names.
     */
    private record Need(Kind kind, String owner, String member, String[] params, boolean assumed) {}

    private static Need cls(String key, boolean assumed) {
        return new Need(Kind.CLASS, key, null, null, assumed);
    }

    private static Need method(String owner, String member, boolean assumed, String... params) {
        return new Need(Kind.METHOD, owner, member, params, assumed);
    }

    private static Need constant(String owner, String member, boolean assumed) {
        return new Need(Kind.CONSTANT, owner, member, null, assumed);
    }

    private static final String STRING = "java.lang.String";

    // ---- Constructors and methods ------------------------------------------
    /** ASSUMED: (CS Proxy host, port, application, user, password, retry interval s, options). */
    private static final Need LOADER_NEW = new Need(Kind.CONSTRUCTOR, Names.LOADER, null,
            new String[] {STRING, "int", STRING, STRING, STRING, "int", "java.util.Properties"}, true);
    private static final Need GET_FACTORY = method(Names.LOADER, Names.GET_AIL_FACTORY, false);
    private static final Need KILL_FACTORY = method(Names.LOADER, Names.KILL_FACTORY, false);
    private static final Need INIT_EXCEPTION = method(Names.LOADER, Names.GET_INIT_EXCEPTION, false);
    private static final Need GET_PERSON = method(Names.FACTORY, Names.GET_PERSON, true, STRING);
    /** ASSUMED: the annex as section -> option -> value. */
    private static final Need PERSON_ANNEX = method(Names.PERSON, Names.PERSON_ANNEX, true);
    private static final Need GET_APPLICATION = method(Names.FACTORY, Names.GET_APPLICATION, true, STRING);
    /** ASSUMED: the application's CS Proxy connection. */
    private static final Need APP_HOST = method(Names.APPLICATION, Names.APPLICATION_HOST, true);
    private static final Need APP_PORT = method(Names.APPLICATION, Names.APPLICATION_PORT, true);
    /** ASSUMED: the application's options as section -> option -> value. */
    private static final Need APP_OPTIONS = method(Names.APPLICATION, Names.APPLICATION_OPTIONS, true);
    private static final Need SERVICE_STATUS =
            method(Names.FACTORY, Names.GET_SERVICE_STATUS, true, Names.SERVICE_TYPE);
    private static final Need ADD_SERVICE_LISTENER = method(Names.FACTORY, Names.ADD_SERVICE_LISTENER, true,
            Names.SERVICE_TYPE, Names.SERVICE_LISTENER);
    private static final Need SERVICE_CHANGED = method(Names.SERVICE_LISTENER, Names.SERVICE_STATUS_CHANGED, true,
            Names.SERVICE_TYPE, Names.SERVICE_STATUS);
    private static final Need GET_DN = method(Names.FACTORY, Names.GET_DN, true, STRING);
    private static final Need ADD_DN_LISTENER = method(Names.DN, Names.ADD_DN_LISTENER, true, Names.DN_LISTENER);
    private static final Need HANDLE_DN_EVENT = method(Names.DN_LISTENER, Names.HANDLE_DN_EVENT, false, Names.DN_EVENT);
    private static final Need DN_EVENT_REASON_OF = method(Names.DN_EVENT, Names.DN_EVENT_REASON_OF, true);
    private static final Need DN_EVENT_STATUS = method(Names.DN_EVENT, Names.DN_EVENT_STATUS, true);
    /** ASSUMED: the event's reasons and extensions as key -> value. */
    private static final Need DN_EVENT_REASONS = method(Names.DN_EVENT, Names.DN_EVENT_REASONS, true);
    private static final Need DN_EVENT_EXTENSIONS = method(Names.DN_EVENT, Names.DN_EVENT_EXTENSIONS, true);
    /** ASSUMED: W5's agent login on the DN: (work mode or null, queue or null, reasons). */
    private static final Need DN_LOGIN = method(Names.DN, Names.DN_LOGIN, true, Names.AGENT_WORKMODE, STRING,
            "java.util.Map");
    /** ASSUMED: E5's Configuration Server notifications on the factory. */
    private static final Need ADD_CONFIG_LISTENER = method(Names.FACTORY, Names.ADD_CONFIG_LISTENER, true,
            Names.CONFIG_LISTENER);
    /** ASSUMED: (object type, object name, section, option, value or null). */
    private static final Need CONFIG_CHANGED = method(Names.CONFIG_LISTENER, Names.CONFIG_CHANGED, true, STRING,
            STRING, STRING, STRING, STRING);

    /** Everything, in the order the self-test reports it. */
    private static final List<Need> ALL = List.of(
            cls(Names.LOADER, false), LOADER_NEW, GET_FACTORY, KILL_FACTORY, INIT_EXCEPTION,
            cls(Names.FACTORY, false), GET_PERSON, GET_APPLICATION, SERVICE_STATUS, ADD_SERVICE_LISTENER, GET_DN,
            cls(Names.PERSON, true), PERSON_ANNEX,
            cls(Names.APPLICATION, true), APP_HOST, APP_PORT, APP_OPTIONS,
            cls(Names.SERVICE_TYPE, false), constant(Names.SERVICE_TYPE, Names.TYPE_TELEPHONY, false),
            constant(Names.SERVICE_TYPE, Names.TYPE_CONFIG, false),
            constant(Names.SERVICE_TYPE, Names.TYPE_STATISTICS, true),
            constant(Names.SERVICE_TYPE, Names.TYPE_AIL, false),
            cls(Names.SERVICE_STATUS, false), constant(Names.SERVICE_STATUS, Names.STATUS_ON, false),
            constant(Names.SERVICE_STATUS, Names.STATUS_OFF, false),
            constant(Names.SERVICE_STATUS, Names.STATUS_UNKNOWN, false),
            cls(Names.SERVICE_LISTENER, true), SERVICE_CHANGED,
            cls(Names.DN, true), ADD_DN_LISTENER, cls(Names.AGENT_WORKMODE, true), DN_LOGIN,
            cls(Names.CONFIG_LISTENER, true), ADD_CONFIG_LISTENER, CONFIG_CHANGED,
            cls(Names.DN_STATUS, true), constant(Names.DN_STATUS, Names.DN_LOGGED_OUT, true),
            constant(Names.DN_STATUS, Names.DN_IN_SERVICE, true),
            constant(Names.DN_STATUS, Names.DN_OUT_OF_SERVICE, true),
            cls(Names.DN_LISTENER, true), HANDLE_DN_EVENT,
            cls(Names.DN_EVENT, false), DN_EVENT_REASON_OF, DN_EVENT_STATUS, DN_EVENT_REASONS,
            DN_EVENT_EXTENSIONS,
            cls(Names.DN_EVENT_REASON, false),
            constant(Names.DN_EVENT_REASON, Names.REASON_STATUS_CHANGED, false));

    private final Names names;
    private final ClassLoader loader;
    /** Resolved classes, by names key. */
    private final Map<String, Class<?>> classes = new LinkedHashMap<>();
    private final Map<Need, Executable> members = new LinkedHashMap<>();
    /** Resolved constants, by names key. */
    private final Map<String, Object> constants = new LinkedHashMap<>();
    /** The class (names key) of each resolved constant, by names key. */
    private final Map<String, String> constantOwners = new LinkedHashMap<>();
    private final List<String> missing = new ArrayList<>();
    private final List<String> report = new ArrayList<>();

    private Ail(Names names, ClassLoader loader) {
        this.names = names;
        this.loader = loader;
    }

    /** Loads every name (connecting nowhere); see {@link #missing()}. */
    static Ail resolve(Names names) {
        Ail ail = new Ail(names, Ail.class.getClassLoader());
        for (Need need : ALL) {
            String problem = ail.resolveOne(need);
            String tag = need.assumed ? "  (ASSUMED)" : "";
            if (problem == null) {
                ail.report.add("ok       " + ail.display(need) + tag);
            } else {
                ail.missing.add(ail.display(need));
                ail.report.add("MISSING  " + ail.display(need) + tag + ": " + problem);
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

    /** The effective name of a {@link Names} key. */
    String name(String key) {
        return names.get(key);
    }

    /**
     * Which killFactory was found: {@code instance} (called on the AilLoader
     * the bridge holds, as in the guide's samples), {@code static} (the
     * fallback), or null if none.
     */
    String killFactoryKind() {
        Executable m = members.get(KILL_FACTORY);
        if (m == null) {
            return null;
        }
        return Modifier.isStatic(m.getModifiers()) ? "static" : "instance";
    }

    private String display(Need need) {
        String cls = names.get(need.owner).replace('$', '.');
        switch (need.kind) {
            case CLASS:
                return cls;
            case CONSTANT:
                return cls + "." + names.get(need.member);
            default:
                break;
        }
        List<String> shown = new ArrayList<>();
        for (String p : need.params) {
            String type = p.startsWith("class.") ? names.get(p) : p;
            shown.add(type.substring(type.lastIndexOf('.') + 1).replace('$', '.'));
        }
        Executable resolved = members.get(need);
        String tag = resolved != null && Modifier.isStatic(resolved.getModifiers()) ? " [static]" : "";
        String member = need.kind == Kind.CONSTRUCTOR ? "" : "." + names.get(need.member);
        return cls + member + "(" + String.join(", ", shown) + ")" + tag;
    }

    /** A class by name; a nested class may be written with dots ({@code ServiceStatus.Type}). */
    private Class<?> load(String name) throws ClassNotFoundException {
        try {
            return Class.forName(name, false, loader);
        } catch (ClassNotFoundException e) {
            String n = name;
            int dot;
            while ((dot = n.lastIndexOf('.')) > 0) {
                n = n.substring(0, dot) + '$' + n.substring(dot + 1);
                try {
                    return Class.forName(n, false, loader);
                } catch (ClassNotFoundException again) {
                    // try the next dot to the left
                }
            }
            throw e;
        }
    }

    private Class<?> type(String name) throws ClassNotFoundException {
        switch (name) {
            case "int": return int.class;
            case "long": return long.class;
            case "boolean": return boolean.class;
            default:
                if (name.startsWith("class.")) {
                    Class<?> known = classes.get(name);
                    return known != null ? known : load(names.get(name));
                }
                return Class.forName(name, false, loader);
        }
    }

    /** An enum constant or a public static field of {@code owner}, or null. */
    private static Object constantOf(Class<?> owner, String name) throws IllegalAccessException {
        Object[] values = owner.getEnumConstants();
        if (values != null) {
            for (Object v : values) {
                if (((Enum<?>) v).name().equals(name)) {
                    return v;
                }
            }
            return null;
        }
        try {
            Field f = owner.getField(name);
            return Modifier.isStatic(f.getModifiers()) ? f.get(null) : null;
        } catch (NoSuchFieldException e) {
            return null;
        }
    }

    private String resolveOne(Need need) {
        try {
            if (need.kind == Kind.CLASS) {
                classes.put(need.owner, load(names.get(need.owner)));
                return null;
            }
            Class<?> owner = type(need.owner);
            if (need.kind == Kind.CONSTANT) {
                Object value = constantOf(owner, names.get(need.member));
                if (value == null) {
                    return "no constant " + names.get(need.member);
                }
                constants.put(need.member, value);
                constantOwners.put(need.member, need.owner);
                return null;
            }
            Class<?>[] params = new Class<?>[need.params.length];
            for (int i = 0; i < params.length; i++) {
                params[i] = type(need.params[i]);
            }
            Executable member = need.kind == Kind.CONSTRUCTOR
                    ? owner.getConstructor(params)
                    : owner.getMethod(names.get(need.member), params);
            members.put(need, member);
            return null;
        } catch (ClassNotFoundException e) {
            return "class " + e.getMessage() + " not found";
        } catch (NoSuchMethodException e) {
            return "no such method";
        } catch (LinkageError | SecurityException | IllegalAccessException e) {
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
            throw new AilException(display(need) + " is missing from the AIL on the classpath", null);
        }
        try {
            if (member instanceof Constructor<?> c) {
                return c.newInstance(args);
            }
            Method m = (Method) member;
            if (target == null && !Modifier.isStatic(m.getModifiers())) {
                throw new AilException(display(need) + " is an instance method and there is no instance", null);
            }
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new AilException(describe(cause), cause);
        } catch (ReflectiveOperationException | IllegalArgumentException e) {
            throw new AilException(display(need) + ": " + e, e);
        }
    }

    /** A throwable as {@code SimpleName: message}. */
    static String describe(Throwable t) {
        String msg = t.getMessage();
        return t.getClass().getSimpleName() + (msg == null ? "" : ": " + msg);
    }

    private Object constant(String key) throws AilException {
        Object v = constants.get(key);
        if (v == null) {
            throw new AilException(names.get(key) + " (" + key + ") is missing", null);
        }
        return v;
    }

    /**
     * A loaded AIL: the AilLoader instance and its factory. The caller keeps
     * both for the connection's life: AIL objects live only as long as the
     * application references them, and killFactory may be an instance method.
     */
    record Loaded(Object loader, Object factory) {}

    /**
     * Starts AIL against one CS Proxy (W1) and returns the loader and its
     * factory. Blocks while AIL loads ({@code getAilFactory} may block until
     * loaded, or the constructor may). A failed load is killed at once: AIL
     * must not go on retrying behind the bridge's back.
     */
    Loaded load(String host, int port, String app, String user, String password, int retrySeconds,
            boolean onDemand, OnDemandVia via, String onDemandOption) throws AilException {
        Properties options = new Properties();
        String value = Boolean.toString(onDemand);
        switch (via) {
            case LOADER_PROPERTIES:
                options.setProperty(onDemandOption, value);
                break;
            case SYSTEM_PROPERTY:
                System.setProperty(onDemandOption, value);
                break;
            case NONE:
                break;
        }
        Object loader = call(LOADER_NEW, null, host, port, app, user, password, retrySeconds, options);
        try {
            Object factory = call(GET_FACTORY, loader);
            if (factory != null) {
                return new Loaded(loader, factory);
            }
            Object init = call(INIT_EXCEPTION, loader);
            String why = init instanceof Throwable t ? describe(t) : "no factory and no init exception";
            throw new AilException(why, init instanceof Throwable t ? t : null);
        } catch (AilException e) {
            try {
                killFactory(loader);
            } catch (AilException k) {
                Log.debug("killFactory after a failed load: " + k.getMessage());
            }
            throw e;
        }
    }

    /**
     * {@code killFactory()}: ends the AIL session; the JVM stays (seed). Called
     * on {@code loader}, the AilLoader of that session (ignored if AIL's
     * killFactory is static).
     */
    void killFactory(Object loader) throws AilException {
        call(KILL_FACTORY, loader);
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

    /** The {@link Names} key of the AIL service type for a listener name of the wire, or null for dn. */
    static String serviceTypeKey(String listener) {
        switch (listener) {
            case "telephony": return Names.TYPE_TELEPHONY;
            case "configuration": return Names.TYPE_CONFIG;
            case "statistic": return Names.TYPE_STATISTICS;
            default: return null;
        }
    }

    /** The wire service name of an AIL service type name, or null if the bridge does not report it. */
    String wireService(String type) {
        if (type.equals(name(Names.TYPE_TELEPHONY))) {
            return "telephony";
        }
        if (type.equals(name(Names.TYPE_CONFIG))) {
            return "configuration";
        }
        if (type.equals(name(Names.TYPE_STATISTICS))) {
            return "statistic";
        }
        return null;
    }

    /** The current status of a service type (a {@link Names} key), by name ({@code ON}, {@code OFF}, ...). */
    String serviceStatus(Object factory, String typeKey) throws AilException {
        return nameOf(call(SERVICE_STATUS, factory, constant(typeKey)), Names.SERVICE_STATUS);
    }

    /** Receives the callbacks of the listeners this adapter registers. */
    interface Sink {
        /** A service changed: type and status names. */
        void service(String type, String status);

        /** A DN event: reason and DN status names, reasons, extensions. */
        void dn(String reason, String status, Map<String, String> reasons, Map<String, String> extensions);

        /** E5: a configuration object's option changed (value null: deleted). */
        void config(String objectType, String name, String section, String option, String value);
    }

    /**
     * Registers a service listener for the type {@code typeKey} (a {@link
     * Names} key) that reports to {@code sink}; returns the listener, which
     * the caller keeps (AIL may hold its listeners weakly).
     */
    Object addServiceListener(Object factory, String typeKey, Sink sink) throws AilException {
        Class<?> iface = classes.get(Names.SERVICE_LISTENER);
        String changed = name(Names.SERVICE_STATUS_CHANGED);
        Object listener = proxy(iface, (method, args) -> {
            if (method.getName().equals(changed) && args != null && args.length == 2) {
                sink.service(nameOf(args[0], Names.SERVICE_TYPE), nameOf(args[1], Names.SERVICE_STATUS));
            }
        });
        call(ADD_SERVICE_LISTENER, factory, constant(typeKey), listener);
        return listener;
    }

    /**
     * E5: registers a Configuration Server change listener on the factory
     * that reports to {@code sink}; returns it, for the caller to keep.
     */
    Object addConfigListener(Object factory, Sink sink) throws AilException {
        Class<?> iface = classes.get(Names.CONFIG_LISTENER);
        if (iface == null) {
            throw new AilException(name(Names.CONFIG_LISTENER) + " is missing from the AIL on the classpath", null);
        }
        String changed = name(Names.CONFIG_CHANGED);
        Object listener = proxy(iface, (method, args) -> {
            if (method.getName().equals(changed) && args != null && args.length == 5) {
                String[] s = new String[5];
                for (int i = 0; i < 5; i++) {
                    s[i] = args[i] == null ? null : args[i].toString();
                }
                sink.config(s[0], s[1], s[2], s[3], s[4]);
            }
        });
        call(ADD_CONFIG_LISTENER, factory, listener);
        return listener;
    }

    /**
     * Registers a listener on DN {@code dn} that reports to {@code sink};
     * returns the DN object and the listener, which the caller keeps: a DN
     * object dropped after {@code addDnListener} may take its listeners with it.
     */
    List<Object> addDnListener(Object factory, String dn, Sink sink) throws AilException {
        Object dnObject = call(GET_DN, factory, dn);
        if (dnObject == null) {
            throw new AilException("no DN " + dn + " in AIL", null);
        }
        Class<?> iface = classes.get(Names.DN_LISTENER);
        String handle = name(Names.HANDLE_DN_EVENT);
        Object listener = proxy(iface, (method, args) -> {
            if (method.getName().equals(handle) && args != null && args.length == 1) {
                Object ev = args[0];
                sink.dn(nameOf(call(DN_EVENT_REASON_OF, ev), Names.DN_EVENT_REASON),
                        nameOf(call(DN_EVENT_STATUS, ev), Names.DN_STATUS),
                        strings(call(DN_EVENT_REASONS, ev)), strings(call(DN_EVENT_EXTENSIONS, ev)));
            }
        });
        call(ADD_DN_LISTENER, dnObject, listener);
        return List.of(dnObject, listener);
    }

    /**
     * W5: logs the agent in on {@code dn} (work mode by constant name, or
     * null; queue or null; reasons as key -> value). Blocks until AIL
     * answers; a refusal is an {@link AilException} naming AIL's reason.
     */
    void login(Object factory, String dn, String queue, String workmode, Map<String, String> reasons)
            throws AilException {
        Object dnObject = call(GET_DN, factory, dn);
        if (dnObject == null) {
            throw new AilException("no DN " + dn + " in AIL", null);
        }
        Object mode = null;
        if (workmode != null) {
            Class<?> modes = classes.get(Names.AGENT_WORKMODE);
            try {
                mode = modes == null ? null : constantOf(modes, workmode);
            } catch (IllegalAccessException e) {
                mode = null;
            }
            if (mode == null) {
                throw new AilException("no work mode " + workmode + " in " + names.get(Names.AGENT_WORKMODE), null);
            }
        }
        call(DN_LOGIN, dnObject, mode, queue, reasons);
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

    /**
     * The name of an AIL constant of the class {@code ownerKey}: an enum's
     * name, the effective name of a resolved static-field constant of that
     * class, else its string form.
     */
    private String nameOf(Object value, String ownerKey) {
        if (value == null) {
            return null;
        }
        if (value instanceof Enum<?> e) {
            return e.name();
        }
        for (Map.Entry<String, Object> c : constants.entrySet()) {
            if (ownerKey.equals(constantOwners.get(c.getKey())) && c.getValue().equals(value)) {
                return names.get(c.getKey());
            }
        }
        return value.toString();
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

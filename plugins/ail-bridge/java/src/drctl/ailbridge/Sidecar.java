package drctl.ailbridge;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * drctl's AIL sidecar: drives the Genesys Agent Interaction Layer for the
 * ail-bridge plugin, in a JVM of its own.
 *
 * <p>Protocol (newline-delimited JSON, UTF-8): the plugin writes a
 * {@code hello} first, the sidecar answers with its own {@code hello}; then
 * the plugin writes SPEC §5 commands ({@code connect} carries the epoch the
 * plugin chose) and the sidecar writes results and events. Log lines go to
 * stderr as {@code LEVEL message}. End of stdin means: kill the factory and exit.
 *
 * <p>Usage: {@code java -cp sidecar.jar:AIL-JARS drctl.ailbridge.Sidecar [--self-test [--hello-on-stdin]]}:
 * the self-test reads the plugin's hello from stdin if told to, so that it
 * checks the names file and settings the bridge would run with.
 */
public final class Sidecar {
    /** The protocol version; the plugin refuses any other. */
    static final int PROTOCOL = 1;

    private final Out out;
    private final Setup setup;
    private final Ail ail;
    private final Options options;
    /** The live AIL connection, or null: touched only by the command worker. */
    private Connection conn;

    private Sidecar(Out out, Setup setup) {
        this.out = out;
        this.setup = setup;
        this.ail = setup.ail;
        this.options = setup.options;
    }

    /** What the plugin tells the sidecar once, in its hello (see the plugin's protocol.rs). */
    private record Options(int retryIntervalSeconds, String personSection, String preferredOption,
            String secondaryOption, String drSection, String dn, List<String> offStatuses,
            List<String> reasonCodeKeys, Map<String, String> reasonCodeAliases, Ail.OnDemandVia onDemandVia,
            String onDemandOption, String siteTimeoutOption, String siteSipRegisterTimeoutOption,
            Map<?, ?> namesTable, String namesProperties, String namesFile, List<String> errors) {
        static Options from(Map<?, ?> m) {
            List<String> errors = new ArrayList<>();
            Object retry = m.get("retry_interval_s");
            String via = text(m, "on_demand_via", Ail.OnDemandVia.LOADER_PROPERTIES.wire);
            Ail.OnDemandVia onDemandVia = Ail.OnDemandVia.parse(via);
            if (onDemandVia == null) {
                errors.add("on-demand-via = \"" + via + "\" is none of loader-properties, system-property, none");
                onDemandVia = Ail.OnDemandVia.LOADER_PROPERTIES;
            }
            Object off = m.get("off_statuses");
            Object table = m.get("names");
            return new Options(retry instanceof Number n ? n.intValue() : 10,
                    text(m, "person_annex_section", "dr"), text(m, "preferred_app_option", "site1-application"),
                    text(m, "secondary_app_option", "site2-application"), text(m, "dr_options_section", "dr"),
                    text(m, "dn", null), off instanceof List<?> ? strings(off) : null,
                    m.get("reason_code_keys") instanceof List<?> l ? strings(l) : List.of("ReasonCode"),
                    stringMap(m.get("reason_code_aliases")), onDemandVia,
                    text(m, "on_demand_option", "loading/on-demand"),
                    text(m, "site_timeout_option", "site-timeout"),
                    text(m, "site_sip_register_timeout_option", "site-sip-register-timeout"),
                    table instanceof Map<?, ?> t ? t : null, text(m, "names_properties", null),
                    text(m, "names_file", null), errors);
        }
    }

    private static String text(Map<?, ?> m, String key, String fallback) {
        Object v = m.get(key);
        return v instanceof String s ? s : fallback;
    }

    private static List<String> strings(Object list) {
        List<String> out = new ArrayList<>();
        if (list instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof String s) {
                    out.add(s);
                }
            }
        }
        return out;
    }

    private static Map<String, String> stringMap(Object map) {
        Map<String, String> out = new LinkedHashMap<>();
        if (map instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (e.getValue() instanceof String s) {
                    out.put(String.valueOf(e.getKey()), s);
                }
            }
        }
        return out;
    }

    /**
     * Everything the hello decides for the sidecar's life: the settings, the
     * effective AIL names, the adapter resolved against them, which statuses
     * count as OFF, and what is wrong with the settings (the plugin refuses
     * to start then, naming each problem).
     */
    private record Setup(Options options, Names names, Ail ail, List<String> offStatuses, List<String> errors) {
        static Setup from(Map<?, ?> helloOptions) {
            Options options = Options.from(helloOptions);
            Names names = options.namesTable == null && options.namesProperties == null
                    ? Names.defaults()
                    : Names.from(options.namesTable, options.namesProperties, options.namesFile);
            Ail ail = Ail.resolve(names);
            List<String> errors = new ArrayList<>(options.errors);
            errors.addAll(names.errors());
            // SPEC D1: only OFF starts the site timer; other statuses only if configured.
            List<String> off = options.offStatuses != null ? options.offStatuses : List.of(ail.name(Names.STATUS_OFF));
            if (off.isEmpty()) {
                errors.add("off-statuses is empty: telephony could never be OFF; the default is [\""
                        + ail.name(Names.STATUS_OFF) + "\"]");
            }
            for (String s : off) {
                if (s.equals(ail.name(Names.STATUS_ON)) || s.equals(ail.name(Names.STATUS_UNKNOWN))) {
                    errors.add("off-statuses names " + s + ", which AIL uses for a service that is up or unknown");
                }
            }
            if (options.reasonCodeKeys.isEmpty()) {
                errors.add("reason-code-keys is empty: no logout reason could ever be read");
            }
            return new Setup(options, names, ail, List.copyOf(off), errors);
        }

        /** What the bridge does beyond the names, for the self-test and the log. */
        List<String> behaviour() {
            String killFactory = ail.killFactoryKind();
            return List.of(
                    "killFactory: " + (killFactory == null ? "MISSING"
                            : killFactory.equals("instance")
                                    ? "instance method, called on the AilLoader instance the bridge holds"
                                    : "static method (fallback: the AilLoader has no instance killFactory)"),
                    "statuses counted as OFF (off-statuses): " + offStatuses,
                    "logout reason code keys, in reasons then extensions (reason-code-keys): "
                            + options.reasonCodeKeys
                            + (options.reasonCodeAliases.isEmpty() ? ""
                                    : "; aliases (reason-code-aliases): " + options.reasonCodeAliases),
                    "option " + options.onDemandOption + " (on-demand-option): " + options.onDemandVia.description
                            + " (on-demand-via = " + options.onDemandVia.wire + ")",
                    "DR options (site-timeout-option, site-sip-register-timeout-option): "
                            + options.drSection + "/" + options.siteTimeoutOption + ", " + options.drSection + "/"
                            + options.siteSipRegisterTimeoutOption);
        }
    }

    /** The build id baked into the jar by the plugin's build script. */
    static String build() {
        try (InputStream in = Sidecar.class.getResourceAsStream("build-id")) {
            if (in == null) {
                return "unknown";
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Entry point. */
    public static void main(String[] args) {
        List<String> list = List.of(args);
        if (list.contains("--self-test")) {
            System.exit(selfTest(list.contains("--hello-on-stdin")));
        }
        if (list.contains("--version")) {
            System.out.println("drctl-ail-sidecar protocol " + PROTOCOL + " build " + build());
            System.exit(0);
        }
        // Stdout is the protocol: anything else that prints (AIL's own logging)
        // goes to stderr, which the plugin forwards to the host's log.
        Out out = new Out();
        System.setOut(System.err);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int code = run(in, out);
        out.close(2000);
        System.exit(code);
    }

    /**
     * Checks every AIL name against the classpath and prints the effective
     * mapping; connects nowhere. Exit 0: all found; 1: names missing; 3: the
     * settings or names file are wrong.
     */
    static int selfTest(boolean helloOnStdin) {
        Map<?, ?> helloOptions = Map.of();
        if (helloOnStdin) {
            try {
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
                String line = in.readLine();
                if (line != null && asMap(Json.parse(line)).get("options") instanceof Map<?, ?> m) {
                    helloOptions = m;
                }
            } catch (IOException | IllegalArgumentException e) {
                System.out.println("ERROR no valid hello on stdin: " + e.getMessage());
                return 3;
            }
        }
        Setup setup = Setup.from(helloOptions);
        System.out.println("drctl ail-bridge sidecar self-test (protocol " + PROTOCOL + ", build " + build()
                + "): loading every AIL class, method and constant the bridge uses; nothing connects anywhere");
        for (String line : setup.names.report()) {
            System.out.println(line);
        }
        for (String line : setup.ail.report()) {
            System.out.println(line);
        }
        for (String line : setup.behaviour()) {
            System.out.println(line);
        }
        for (String error : setup.errors) {
            System.out.println("ERROR    " + error);
        }
        List<String> missing = setup.ail.missing();
        if (missing.isEmpty()) {
            System.out.println("all " + Ail.count() + " AIL names found");
        } else {
            System.out.println(missing.size() + " of " + Ail.count() + " AIL names missing: " + String.join(", ", missing));
        }
        return !setup.errors.isEmpty() ? 3 : missing.isEmpty() ? 0 : 1;
    }

    private static int run(BufferedReader in, Out out) {
        Setup setup;
        try {
            String first = in.readLine();
            if (first == null) {
                return 0;
            }
            Map<?, ?> hello = asMap(Json.parse(first));
            Object protocol = hello.get("protocol");
            Object opts = hello.get("options");
            setup = Setup.from(opts instanceof Map<?, ?> m ? m : Map.of());
            out.send(Json.object("kind", "hello", "protocol", (long) PROTOCOL, "build", build(),
                    "java", System.getProperty("java.version"), "missing", setup.ail.missing(),
                    "errors", setup.errors, "kill_factory", setup.ail.killFactoryKind()));
            if (!"hello".equals(hello.get("kind")) || !(protocol instanceof Long p) || p != PROTOCOL) {
                Log.error("the plugin speaks protocol " + protocol + ", this sidecar " + PROTOCOL + "; exiting");
                return 3;
            }
        } catch (IOException | IllegalArgumentException e) {
            Log.error("no valid hello from the plugin: " + e.getMessage());
            return 3;
        }
        Sidecar sidecar = new Sidecar(out, setup);
        Log.debug("ready: protocol " + PROTOCOL + ", build " + build() + ", Java " + System.getProperty("java.version")
                + (setup.ail.missing().isEmpty() ? ", every AIL name found"
                        : ", " + setup.ail.missing().size() + " AIL names missing"));
        for (String line : setup.behaviour()) {
            Log.debug(line);
        }
        // Commands run one at a time, in order, off the reading thread: AIL's
        // loader blocks while it connects, and stdin must still be watched.
        ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "drctl-ail-commands");
            t.setDaemon(true);
            return t;
        });
        try {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                String command = line;
                worker.submit(() -> sidecar.handle(command));
            }
        } catch (IOException e) {
            Log.warn("reading commands failed: " + e.getMessage());
        }
        // End of input: the plugin stops us (or is gone). Leave AIL cleanly.
        worker.submit(sidecar::stop);
        worker.shutdown();
        try {
            worker.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    private static Map<?, ?> asMap(Object value) {
        if (value instanceof Map<?, ?> m) {
            return m;
        }
        throw new IllegalArgumentException("expected a JSON object");
    }

    /** Runs one command line; every failure becomes an error result, never an exit. */
    private void handle(String line) {
        Object id = null;
        Object sessionOfCommand = null;
        try {
            Map<?, ?> input = asMap(Json.parse(line));
            id = input.get("id");
            sessionOfCommand = input.get("session");
            Map<?, ?> command = asMap(input.get("command"));
            Object type = command.get("type");
            Map<String, Object> reply = dispatch(String.valueOf(type), input, command);
            result(sessionOfCommand, id, reply);
            Runnable after = afterReply;
            afterReply = null;
            if (after != null) {
                after.run();
            }
            if ("shutdown".equals(type)) {
                Log.info("shutdown: the AIL factory is killed, exiting");
                out.close(2000);
                System.exit(0);
            }
        } catch (Ail.AilException | RuntimeException e) {
            afterReply = null;
            String message = e instanceof Ail.AilException ? e.getMessage() : Ail.describe(e);
            if (id == null) {
                Log.error("cannot read a command: " + message);
                return;
            }
            result(sessionOfCommand, id, Json.object("type", "error", "message", message));
        }
    }

    private void result(Object sessionOfCommand, Object id, Map<String, Object> reply) {
        out.send(Json.object("kind", "result", "session", sessionOfCommand, "id", id, "result", reply));
    }

    private static Map<String, Object> error(String message) {
        return Json.object("type", "error", "message", message);
    }

    private static Map<String, Object> done() {
        return Json.object("type", "done");
    }

    private Map<String, Object> dispatch(String type, Map<?, ?> input, Map<?, ?> command) throws Ail.AilException {
        switch (type) {
            case "connect": return connect(input, command);
            case "read_person_sites": return readPerson(command);
            case "read_application": return readApplication(command);
            case "subscribe": return subscribe(command);
            case "login": return login(command);
            case "kill_factory":
            case "shutdown":
                stop();
                return done();
            default:
                return error("the AIL sidecar does not handle command " + type);
        }
    }

    /**
     * One AIL connection (epoch): the AilLoader instance, its factory, and
     * every AIL object the bridge listens on with its listeners. AIL objects
     * live only as long as the application references them (the guide), so
     * all of them stay referenced from here for the epoch's life, and are
     * released together when the factory is killed.
     */
    private static final class Connection {
        final long epoch;
        final String session;
        final Ail.Loaded loaded;
        /** The DN object, the listeners: whatever AIL might hold only weakly. */
        final List<Object> held = new ArrayList<>();

        Connection(long epoch, String session, Ail.Loaded loaded) {
            this.epoch = epoch;
            this.session = session;
            this.loaded = loaded;
        }
    }

    /** Kills the current factory, if any, and releases every AIL object of its epoch. */
    private void stop() {
        Connection c = conn;
        if (c == null) {
            return;
        }
        conn = null;
        try {
            ail.killFactory(c.loaded.loader());
        } catch (Ail.AilException e) {
            Log.warn("killFactory failed: " + e.getMessage());
        }
        c.held.clear();
    }

    private Map<String, Object> connect(Map<?, ?> input, Map<?, ?> c) throws Ail.AilException {
        Object newEpoch = input.get("epoch");
        if (!(newEpoch instanceof Long e)) {
            return error("connect without an epoch");
        }
        String csProxy = String.valueOf(c.get("cs_proxy"));
        int colon = csProxy.lastIndexOf(':');
        int port;
        try {
            port = Integer.parseInt(csProxy.substring(colon + 1));
        } catch (NumberFormatException | IndexOutOfBoundsException ex) {
            return error("cs_proxy " + csProxy + " is not host:port");
        }
        String host = csProxy.substring(0, Math.max(colon, 0));
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        // One factory per JVM: a connect replaces the current one (after a
        // disconnect the host reconnects without a kill_factory first).
        if (conn != null) {
            Log.debug("killing the factory of epoch " + conn.epoch + " before loading a new one");
            stop();
        }
        String app = String.valueOf(c.get("app_name"));
        boolean onDemand = Boolean.TRUE.equals(c.get("on_demand_loading"));
        Object password = c.get("password");
        Log.info("loading AIL: CS Proxy " + csProxy + ", application " + app + ", " + options.onDemandOption + " "
                + onDemand + " (" + options.onDemandVia.description + ")");
        Ail.Loaded loaded;
        try {
            loaded = ail.load(host, port, app, String.valueOf(c.get("username")),
                    password instanceof String p ? p : "", options.retryIntervalSeconds, onDemand,
                    options.onDemandVia, options.onDemandOption);
        } catch (Ail.AilException ex) {
            return error("AIL could not connect to CS Proxy " + csProxy + " as " + app + ": " + ex.getMessage());
        }
        Object s = input.get("session");
        conn = new Connection(e, s instanceof String str ? str : "", loaded);
        return Json.object("type", "connected", "epoch", e);
    }

    private Map<String, Object> readPerson(Map<?, ?> c) throws Ail.AilException {
        if (conn == null) {
            return error("not connected to a CS Proxy");
        }
        String user = String.valueOf(c.get("username"));
        Object section = ail.personAnnex(conn.loaded.factory(), user).get(options.personSection);
        if (!(section instanceof Map<?, ?> s)) {
            return error("the Person object of " + user + " has no annex section [" + options.personSection + "]");
        }
        Object preferred = s.get(options.preferredOption);
        Object secondary = s.get(options.secondaryOption);
        if (preferred == null || preferred.toString().isBlank()) {
            return error("the Person object of " + user + " has no option " + options.personSection + "/"
                    + options.preferredOption);
        }
        return Json.object("type", "person_sites", "preferred_app", preferred.toString(), "secondary_app",
                secondary == null ? "" : secondary.toString());
    }

    private Map<String, Object> readApplication(Map<?, ?> c) throws Ail.AilException {
        if (conn == null) {
            return error("not connected to a CS Proxy");
        }
        String name = String.valueOf(c.get("app_name"));
        Ail.AppInfo app = ail.application(conn.loaded.factory(), name);
        if (app == null) {
            return error("no AIL Application named \"" + name + "\"");
        }
        String host = app.host().contains(":") ? "[" + app.host() + "]" : app.host();
        Object dr = app.options().get(options.drSection);
        Map<?, ?> drOptions = dr instanceof Map<?, ?> m ? m : Map.of();
        return Json.object("type", "application", "app_name", name, "cs_proxy", host + ":" + app.port(),
                "site_timeout_s", seconds(drOptions, options.siteTimeoutOption, name),
                "site_sip_register_timeout_s", seconds(drOptions, options.siteSipRegisterTimeoutOption, name),
                "options", flatOptions(app.options(), name));
    }

    /** At most this many options of an Application go back to drctl (its protocol's bound). */
    private static final int MAX_OPTIONS = 256;

    /** An Application's options as {@code section/option -> text} (E5 reads its evacuate option at startup). */
    private Map<String, Object> flatOptions(Map<?, ?> sections, String app) {
        Map<String, Object> flat = new java.util.TreeMap<>();
        for (Map.Entry<?, ?> section : sections.entrySet()) {
            if (!(section.getValue() instanceof Map<?, ?> opts)) {
                continue;
            }
            for (Map.Entry<?, ?> o : opts.entrySet()) {
                if (flat.size() >= MAX_OPTIONS) {
                    Log.warn("application " + app + ": more than " + MAX_OPTIONS + " options; the rest are not read");
                    return flat;
                }
                flat.put(section.getKey() + "/" + o.getKey(), String.valueOf(o.getValue()));
            }
        }
        return flat;
    }

    /** A DR option in whole seconds; absent or unreadable is null (not configured). */
    private Long seconds(Map<?, ?> drOptions, String option, String app) {
        Object v = drOptions.get(option);
        if (v == null || v.toString().isBlank()) {
            return null;
        }
        try {
            long s = Long.parseLong(v.toString().trim());
            if (s >= 0) {
                return s;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        Log.warn("application " + app + ": " + options.drSection + "/" + option + " = \"" + v
                + "\" is not whole seconds; treated as not configured");
        return null;
    }

    /** Why command {@code c} cannot run on connection {@code live}, or null if it can. */
    private static String notCurrent(Connection live, Map<?, ?> c) {
        if (live == null) {
            return "not connected to a CS Proxy";
        }
        Object wanted = c.get("epoch");
        if (!(wanted instanceof Long e) || e != live.epoch) {
            return "epoch " + wanted + " is not the current connection (" + live.epoch + ")";
        }
        return null;
    }

    private Map<String, Object> subscribe(Map<?, ?> c) throws Ail.AilException {
        Connection live = conn;
        String why = notCurrent(live, c);
        if (why != null) {
            return error(why);
        }
        Object list = c.get("listeners");
        List<?> listeners = list instanceof List<?> l ? l : List.of();
        if (listeners.contains("dn") && options.dn == null) {
            return error("no DN to listen to: set agent.dn in drctl's config");
        }
        Object factory = live.loaded.factory();
        Listeners sink = new Listeners(live.session, live.epoch);
        // AIL itself (not a listener of the wire): its OFF is a lost session.
        // Best effort: without it a lost session still shows as services OFF.
        try {
            live.held.add(ail.addServiceListener(factory, Names.TYPE_AIL, sink));
        } catch (Ail.AilException ex) {
            Log.warn("cannot listen to the AIL service itself: " + ex.getMessage());
        }
        // E5: Configuration Server changes. Best effort: without them the
        // directives are not followed, everything else works.
        try {
            live.held.add(ail.addConfigListener(factory, sink));
        } catch (Ail.AilException ex) {
            Log.warn("cannot follow Configuration Server changes (E5 directives): " + ex.getMessage());
        }
        List<String> typeKeys = new ArrayList<>();
        for (Object l : listeners) {
            String typeKey = Ail.serviceTypeKey(String.valueOf(l));
            if (typeKey != null) {
                live.held.add(ail.addServiceListener(factory, typeKey, sink));
                typeKeys.add(typeKey);
            } else if ("dn".equals(l)) {
                live.held.addAll(ail.addDnListener(factory, options.dn, sink));
            }
        }
        // The statuses follow the result on the wire (see handle).
        afterReply = () -> reportStatuses(factory, typeKeys, sink);
        return done();
    }

    /** W5: the agent's login on its DN at the current connection's site. */
    private Map<String, Object> login(Map<?, ?> c) throws Ail.AilException {
        Connection live = conn;
        String why = notCurrent(live, c);
        if (why != null) {
            return error(why);
        }
        Object dn = c.get("dn");
        if (!(dn instanceof String d) || d.isBlank()) {
            return error("login without a DN");
        }
        Map<String, String> reasons = new LinkedHashMap<>();
        if (c.get("reasons") instanceof Map<?, ?> r) {
            r.forEach((k, v) -> reasons.put(String.valueOf(k), String.valueOf(v)));
        }
        Object queue = c.get("queue");
        Object workmode = c.get("workmode");
        try {
            ail.login(live.loaded.factory(), d, queue instanceof String q ? q : null,
                    workmode instanceof String w ? w : null, reasons);
        } catch (Ail.AilException ex) {
            // The engine says it was the login that failed.
            return error(ex.getMessage());
        }
        return done();
    }

    /** After a (re)login: each subscribed service's current status, as the mock reports it. */
    private void reportStatuses(Object factory, List<String> typeKeys, Listeners sink) {
        for (String typeKey : typeKeys) {
            try {
                sink.service(ail.name(typeKey), ail.serviceStatus(factory, typeKey));
            } catch (Ail.AilException e) {
                Log.warn("cannot read the status of service " + ail.name(typeKey) + ": " + e.getMessage());
            }
        }
    }

    /** Work to do once the current command's result is queued. */
    private Runnable afterReply;

    /**
     * The listeners of one connection epoch: AIL callbacks (on AIL's threads)
     * become wire events. The protocol's statuses are on|off; which AIL
     * statuses are which is decided here.
     */
    private final class Listeners implements Ail.Sink {
        private final String session;
        private final long epoch;
        private final AtomicBoolean lost = new AtomicBoolean();
        /** The DN's last status, to tell a status change from an echo. */
        private final AtomicReference<String> lastDnStatus = new AtomicReference<>();
        /** (type, status) pairs already logged at info: AIL may repeat them on every retry. */
        private final Set<String> noted = ConcurrentHashMap.newKeySet();

        Listeners(String session, long epoch) {
            this.session = session;
            this.epoch = epoch;
        }

        private void event(Map<String, Object> event) {
            out.send(Json.object("kind", "event", "session", session, "epoch", epoch, "event", event));
        }

        /** A status the bridge does not act on: at info the first time in this epoch, then at debug. */
        private void ignored(String type, String status, String what) {
            String message = "AIL reports " + type + " " + status + " (epoch " + epoch + "): " + what
                    + " (backend.ail-bridge.off-statuses = " + setup.offStatuses + "); ignored";
            if (noted.add(type + "\t" + status)) {
                Log.info(message);
            } else {
                Log.debug(message);
            }
        }

        @Override
        public void service(String type, String status) {
            if (type == null || status == null) {
                return;
            }
            boolean on = status.equals(ail.name(Names.STATUS_ON));
            boolean unknown = status.equals(ail.name(Names.STATUS_UNKNOWN));
            boolean off = setup.offStatuses.contains(status);
            if (type.equals(ail.name(Names.TYPE_AIL))) {
                if (off) {
                    if (!lost.getAndSet(true)) {
                        Log.warn("AIL reports its session " + status + " (epoch " + epoch + ")");
                        event(Json.object("type", "disconnected"));
                    }
                } else if (!on && !unknown) {
                    ignored(type, status, "not counted as a lost AIL session");
                }
                return;
            }
            String service = ail.wireService(type);
            if (service == null || unknown) {
                return;
            }
            if (on || off) {
                event(Json.object("type", "service_status", "service", service, "status", on ? "on" : "off"));
            } else {
                ignored(type, status, "not counted as OFF");
            }
        }

        @Override
        public void dn(String reason, String status, Map<String, String> reasons, Map<String, String> extensions) {
            String dn = options.dn;
            if (status == null || dn == null) {
                return;
            }
            String previous = lastDnStatus.getAndSet(status);
            // STATUS_CHANGED events are what the bridge reports; an event of
            // another reason is taken when it changes the DN's status (AIL may
            // report a change under another reason), and is otherwise an echo.
            if (!ail.name(Names.REASON_STATUS_CHANGED).equals(reason)) {
                if (status.equals(previous)) {
                    Log.debug("DN " + dn + ": a " + reason + " event with status " + status
                            + " and no status change; ignored (reasons keys " + reasons.keySet()
                            + ", extensions keys " + extensions.keySet() + ")");
                    return;
                }
                Log.debug("DN " + dn + ": a " + reason + " event changes the status " + previous + " -> " + status
                        + "; taken as a status change");
            }
            if (status.equals(ail.name(Names.DN_LOGGED_OUT))) {
                event(Json.object("type", "agent_logout", "dn", dn, "reason", reasonCode(reasons, extensions),
                        "extensions", extensions));
            } else if (status.equals(ail.name(Names.DN_IN_SERVICE))) {
                event(Json.object("type", "dn_back_in_service", "dn", dn));
            } else if (status.equals(ail.name(Names.DN_OUT_OF_SERVICE))) {
                event(Json.object("type", "dn_out_of_service", "dn", dn));
            } else {
                Log.debug("DN " + dn + ": status " + status + " (" + reason + "); not a D4 event");
            }
        }

        @Override
        public void config(String objectType, String name, String section, String option, String value) {
            String object = objectType == null ? "" : objectType.toLowerCase(java.util.Locale.ROOT);
            if (!object.equals("person") && !object.equals("application")) {
                Log.debug("Configuration Server change of a " + objectType + " object " + name + "; not followed");
                return;
            }
            if (name == null || section == null || option == null) {
                return;
            }
            Map<String, Object> e = Json.object("type", "config_changed", "object", object, "name", name, "section",
                    section, "option", option);
            e.put("value", value);
            event(e);
        }

        /**
         * The logout's reason code: the first configured key found in the
         * reasons, else in the extensions; mapped through the aliases; null
         * (a manual logout) if none.
         */
        private String reasonCode(Map<String, String> reasons, Map<String, String> extensions) {
            for (String key : options.reasonCodeKeys) {
                for (Map<String, String> where : List.of(reasons, extensions)) {
                    String code = where.get(key);
                    if (code != null && !code.isBlank()) {
                        return options.reasonCodeAliases.getOrDefault(code, code);
                    }
                }
            }
            Log.debug("EventAgentLogout on DN " + options.dn + " (epoch " + epoch + ") has no reason code under "
                    + options.reasonCodeKeys + " (backend.ail-bridge.reason-code-keys); its reasons keys: "
                    + reasons.keySet() + ", extensions keys: " + extensions.keySet());
            return null;
        }
    }
}

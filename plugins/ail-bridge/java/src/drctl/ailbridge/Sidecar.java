package drctl.ailbridge;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

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
 * <p>Usage: {@code java -cp sidecar.jar:AIL-JARS drctl.ailbridge.Sidecar [--self-test]}.
 */
public final class Sidecar {
    /** The protocol version; the plugin refuses any other. */
    static final int PROTOCOL = 1;

    private final Out out;
    private final Ail ail;
    private final Options options;
    /** The current AIL factory, its epoch and the agent session it serves. */
    private Object factory;
    private long epoch;
    private String session;

    private Sidecar(Out out, Ail ail, Options options) {
        this.out = out;
        this.ail = ail;
        this.options = options;
    }

    /** What the plugin tells the sidecar once, in its hello. */
    private record Options(int retryIntervalSeconds, String personSection, String preferredOption,
            String secondaryOption, String drSection, String dn) {
        static Options from(Map<?, ?> m) {
            Object retry = m.get("retry_interval_s");
            return new Options(retry instanceof Number n ? n.intValue() : 10,
                    text(m, "person_annex_section", "dr"), text(m, "preferred_app_option", "site1-application"),
                    text(m, "secondary_app_option", "site2-application"), text(m, "dr_options_section", "dr"),
                    text(m, "dn", null));
        }
    }

    private static String text(Map<?, ?> m, String key, String fallback) {
        Object v = m.get(key);
        return v instanceof String s ? s : fallback;
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
        for (String arg : args) {
            if (arg.equals("--self-test")) {
                System.exit(selfTest());
            }
            if (arg.equals("--version")) {
                System.out.println("drctl-ail-sidecar protocol " + PROTOCOL + " build " + build());
                System.exit(0);
            }
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

    /** Checks every AIL name against the classpath; connects nowhere. */
    static int selfTest() {
        Ail ail = Ail.resolve();
        System.out.println("drctl ail-bridge sidecar self-test (protocol " + PROTOCOL + ", build " + build()
                + "): loading every AIL class, method and constant the bridge uses; nothing connects anywhere");
        for (String line : ail.report()) {
            System.out.println(line);
        }
        int missing = ail.missing().size();
        if (missing == 0) {
            System.out.println("all " + Ail.count() + " AIL names found");
            return 0;
        }
        System.out.println(missing + " of " + Ail.count() + " AIL names missing: " + String.join(", ", ail.missing()));
        return 1;
    }

    private static int run(BufferedReader in, Out out) {
        Options options;
        Ail ail;
        try {
            String first = in.readLine();
            if (first == null) {
                return 0;
            }
            Map<?, ?> hello = asMap(Json.parse(first));
            Object protocol = hello.get("protocol");
            ail = Ail.resolve();
            out.send(Json.object("kind", "hello", "protocol", (long) PROTOCOL, "build", build(),
                    "java", System.getProperty("java.version"), "missing", ail.missing()));
            if (!"hello".equals(hello.get("kind")) || !(protocol instanceof Long p) || p != PROTOCOL) {
                Log.error("the plugin speaks protocol " + protocol + ", this sidecar " + PROTOCOL + "; exiting");
                return 3;
            }
            Object opts = hello.get("options");
            options = Options.from(opts instanceof Map<?, ?> m ? m : Map.of());
        } catch (IOException | IllegalArgumentException e) {
            Log.error("no valid hello from the plugin: " + e.getMessage());
            return 3;
        }
        Sidecar sidecar = new Sidecar(out, ail, options);
        Log.debug("ready: protocol " + PROTOCOL + ", build " + build() + ", Java " + System.getProperty("java.version")
                + (ail.missing().isEmpty() ? ", every AIL name found" : ", " + ail.missing().size() + " AIL names missing"));
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
            case "kill_factory":
            case "shutdown":
                stop();
                return done();
            default:
                return error("the AIL sidecar does not handle command " + type);
        }
    }

    /** Kills the current factory, if any. */
    private void stop() {
        if (factory == null) {
            return;
        }
        factory = null;
        epoch = 0;
        try {
            ail.killFactory();
        } catch (Ail.AilException e) {
            Log.warn("killFactory failed: " + e.getMessage());
        }
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
        if (factory != null) {
            Log.debug("killing the factory of epoch " + epoch + " before loading a new one");
            stop();
        }
        String app = String.valueOf(c.get("app_name"));
        boolean onDemand = Boolean.TRUE.equals(c.get("on_demand_loading"));
        Object password = c.get("password");
        Log.info("loading AIL: CS Proxy " + csProxy + ", application " + app + ", loading/on-demand " + onDemand);
        try {
            factory = ail.load(host, port, app, String.valueOf(c.get("username")),
                    password instanceof String p ? p : "", options.retryIntervalSeconds, onDemand);
        } catch (Ail.AilException ex) {
            return error("AIL could not connect to CS Proxy " + csProxy + " as " + app + ": " + ex.getMessage());
        }
        epoch = e;
        Object s = input.get("session");
        session = s instanceof String str ? str : "";
        return Json.object("type", "connected", "epoch", e);
    }

    private Map<String, Object> readPerson(Map<?, ?> c) throws Ail.AilException {
        if (factory == null) {
            return error("not connected to a CS Proxy");
        }
        String user = String.valueOf(c.get("username"));
        Object section = ail.personAnnex(factory, user).get(options.personSection);
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
        if (factory == null) {
            return error("not connected to a CS Proxy");
        }
        String name = String.valueOf(c.get("app_name"));
        Ail.AppInfo app = ail.application(factory, name);
        if (app == null) {
            return error("no AIL Application named \"" + name + "\"");
        }
        String host = app.host().contains(":") ? "[" + app.host() + "]" : app.host();
        Object dr = app.options().get(options.drSection);
        Map<?, ?> drOptions = dr instanceof Map<?, ?> m ? m : Map.of();
        return Json.object("type", "application", "app_name", name, "cs_proxy", host + ":" + app.port(),
                "site_timeout_s", seconds(drOptions, "site-timeout", name),
                "site_sip_register_timeout_s", seconds(drOptions, "site-sip-register-timeout", name));
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

    private Map<String, Object> subscribe(Map<?, ?> c) throws Ail.AilException {
        if (factory == null) {
            return error("not connected to a CS Proxy");
        }
        Object wanted = c.get("epoch");
        if (!(wanted instanceof Long e) || e != epoch) {
            return error("epoch " + wanted + " is not the current connection (" + epoch + ")");
        }
        Object list = c.get("listeners");
        List<?> listeners = list instanceof List<?> l ? l : List.of();
        if (listeners.contains("dn") && options.dn == null) {
            return error("no DN to listen to: set agent.dn in drctl's config");
        }
        Listeners sink = new Listeners(session, epoch);
        // AIL itself (not a listener of the wire): its OFF is a lost session.
        // Best effort: without it a lost session still shows as services OFF.
        try {
            ail.addServiceListener(factory, Ail.TYPE_AIL, sink);
        } catch (Ail.AilException ex) {
            Log.warn("cannot listen to the AIL service itself: " + ex.getMessage());
        }
        for (Object l : listeners) {
            String type = ail.serviceTypeName(String.valueOf(l));
            if (type != null) {
                ail.addServiceListener(factory, type, sink);
            } else if ("dn".equals(l)) {
                ail.addDnListener(factory, options.dn, sink);
            }
        }
        // The statuses follow the result on the wire (see handle).
        List<String> types = new java.util.ArrayList<>();
        for (Object l : listeners) {
            String type = ail.serviceTypeName(String.valueOf(l));
            if (type != null) {
                types.add(type);
            }
        }
        afterReply = () -> reportStatuses(types, sink);
        return done();
    }

    /** After a (re)login: each subscribed service's current status, as the mock reports it. */
    private void reportStatuses(List<String> types, Listeners sink) {
        for (String type : types) {
            try {
                sink.service(type, ail.serviceStatus(factory, type));
            } catch (Ail.AilException e) {
                Log.warn("cannot read the status of service " + type + ": " + e.getMessage());
            }
        }
    }

    /** Work to do once the current command's result is queued. */
    private Runnable afterReply;

    /** The listeners of one connection epoch: AIL callbacks become wire events. */
    private final class Listeners implements Ail.Sink {
        private final String session;
        private final long epoch;
        private final AtomicBoolean lost = new AtomicBoolean();

        Listeners(String session, long epoch) {
            this.session = session;
            this.epoch = epoch;
        }

        private void event(Map<String, Object> event) {
            out.send(Json.object("kind", "event", "session", session, "epoch", epoch, "event", event));
        }

        @Override
        public void service(String type, String status) {
            if (type == null || status == null) {
                return;
            }
            if (type.equals(Ail.TYPE_AIL)) {
                if (!status.equals(Ail.STATUS_ON) && !status.equals(Ail.STATUS_UNKNOWN)
                        && !lost.getAndSet(true)) {
                    Log.warn("AIL reports its session " + status + " (epoch " + epoch + ")");
                    event(Json.object("type", "disconnected"));
                }
                return;
            }
            String service = Ail.wireService(type);
            if (service == null || status.equals(Ail.STATUS_UNKNOWN)) {
                return;
            }
            // ON is up; OFF and every degraded status (ABSENT, RESTORING, ...) is down.
            event(Json.object("type", "service_status", "service", service, "status",
                    status.equals(Ail.STATUS_ON) ? "on" : "off"));
        }

        @Override
        public void dn(String reason, String status, Map<String, String> reasons, Map<String, String> extensions) {
            if (!Ail.REASON_STATUS_CHANGED.equals(reason) || status == null || options.dn == null) {
                return;
            }
            switch (status) {
                case Ail.DN_LOGGED_OUT: {
                    String code = reasons.get(Ail.REASON_CODE_KEY);
                    event(Json.object("type", "agent_logout", "dn", options.dn, "reason",
                            code == null || code.isEmpty() ? null : code, "extensions", extensions));
                    break;
                }
                case Ail.DN_IN_SERVICE:
                    event(Json.object("type", "dn_back_in_service", "dn", options.dn));
                    break;
                case Ail.DN_OUT_OF_SERVICE:
                    event(Json.object("type", "dn_out_of_service", "dn", options.dn));
                    break;
                default:
                    break;
            }
        }
    }
}

//! The ABI end to end, through real cdylibs (the fixtures in `tests/fixtures/`).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use drctl_plugin_api::loader::{self, LogSink};
use drctl_plugin_api::{
    Capabilities, Command, Encoding, Event, Input, Instance, Listener, LogLevel, Output, Plugin,
    PluginError, Reply, Service, ServiceState, ABI_MAJOR, ABI_MINOR,
};
use serde_json::json;
use support::{fixture, wire};

type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

/// A host side for one instance: counts wakes, keeps log lines.
struct TestHost {
    wakes: Arc<AtomicUsize>,
    lines: Lines,
}

impl TestHost {
    fn new() -> Self {
        TestHost {
            wakes: Arc::default(),
            lines: Arc::default(),
        }
    }

    fn create(&self, plugin: &Plugin, config: serde_json::Value) -> Result<Instance, PluginError> {
        self.create_with(plugin, config, Encoding::Compact)
    }

    /// An instance speaking `encoding` (compact only if the plugin offers it).
    fn create_with(
        &self,
        plugin: &Plugin,
        config: serde_json::Value,
        encoding: Encoding,
    ) -> Result<Instance, PluginError> {
        let wakes = self.wakes.clone();
        let lines = self.lines.clone();
        plugin.create_with(
            &config,
            Arc::new(move || {
                wakes.fetch_add(1, Ordering::SeqCst);
            }),
            LogSink::new(LogLevel::Trace, move |level, msg| {
                lines.lock().unwrap().push((level, msg.to_owned()))
            }),
            encoding,
        )
    }

    /// An instance of the echo fixture that panics in `export`.
    fn panicking_in(&self, export: &str) -> Instance {
        self.create(&echo(), json!({ "panic_in": export })).unwrap()
    }

    fn logged(&self, needle: &str) -> Option<LogLevel> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find(|(_, line)| line.contains(needle))
            .map(|(level, _)| *level)
    }
}

fn echo() -> Plugin {
    loader::load(&fixture("echo")).expect("load echo fixture")
}

/// The session of every command and output here.
const AGENT: &str = "agent-1";

fn command(id: u64, command: Command) -> Input {
    wire::input(AGENT, id, command)
}

fn connect(password: &str) -> Command {
    wire::connect("site1", "csp1.example:7000", password)
}

fn drain(instance: &mut Instance, now: u64) -> Vec<Output> {
    let mut outputs = Vec::new();
    while let Some(output) = instance.poll_output(now).expect("poll_output") {
        outputs.push(output);
    }
    outputs
}

fn result(id: u64, result: Result<Reply, drctl_plugin_api::CommandError>) -> Output {
    wire::result(AGENT, id, result)
}

fn event(epoch: u64, event: Event) -> Output {
    wire::event(AGENT, epoch, event)
}

#[test]
fn header_is_read() {
    let plugin = echo();
    let info = plugin.info();
    assert_eq!(info.name, "echo");
    assert_eq!(info.version, "9.8.7");
    assert_eq!((info.abi_major, info.abi_minor), (ABI_MAJOR, ABI_MINOR));
    assert_eq!(
        info.capabilities,
        Capabilities::DETERMINISTIC | Capabilities::COMPACT
    );
    assert_eq!(info.path, fixture("echo"));
    let shown = info.to_string();
    assert!(
        shown.starts_with(&format!(
            "echo 9.8.7 (ABI {ABI_MAJOR}.{ABI_MINOR}, deterministic,compact) /"
        )),
        "{shown}"
    );
    // Loading again is fine (the library is never unloaded).
    assert_eq!(echo().info(), info);
}

#[test]
fn round_trip_commands_results_events_wake_and_logs_in_json() {
    round_trip(Encoding::Json);
}

#[test]
fn round_trip_commands_results_events_wake_and_logs_compact() {
    round_trip(Encoding::Compact);
}

/// Every message kind of a session both ways, in `encoding`.
fn round_trip(encoding: Encoding) {
    let host = TestHost::new();
    let mut instance = host.create_with(&echo(), json!({}), encoding).unwrap();
    assert_eq!(instance.encoding(), encoding);
    assert_eq!(instance.name(), "echo");
    assert_eq!(
        host.logged("echo fixture created with config {}"),
        Some(LogLevel::Info),
        "create's HostHandle::info reaches the sink"
    );

    instance
        .handle(1_000, &command(1, connect("s3cret")))
        .unwrap();
    assert!(host.wakes.load(Ordering::SeqCst) >= 1, "wake was called");
    assert_eq!(
        drain(&mut instance, 1_000),
        vec![result(1, Ok(Reply::Connected { epoch: 1 }))]
    );
    // The plugin's own `tracing::info!` crossed through the log callback, with its fields.
    let lines = host.lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|(level, line)| *level == LogLevel::Info
            && line == r#"echo fixture got a command command="connect" now_ns=1000"#),
        "{lines:?}"
    );

    instance
        .handle(
            2_000,
            &command(
                2,
                wire::subscribe(
                    1,
                    vec![
                        Listener::Telephony,
                        Listener::Configuration,
                        Listener::Statistic,
                        Listener::Dn,
                    ],
                ),
            ),
        )
        .unwrap();
    let on = |service| Event::ServiceStatus {
        service,
        status: ServiceState::On,
    };
    assert_eq!(
        drain(&mut instance, 2_000),
        vec![
            result(2, Ok(Reply::Done)),
            event(1, on(Service::Telephony)),
            event(1, on(Service::Configuration)),
            event(1, on(Service::Statistic)),
            event(1, Event::DnBackInService { dn: "5001".into() }),
        ]
    );

    instance
        .handle(3_000, &command(3, wire::read_application("AIL_site2")))
        .unwrap();
    instance
        .handle(3_000, &command(4, Command::KillFactory))
        .unwrap();
    assert_eq!(
        drain(&mut instance, 3_000),
        vec![
            result(
                3,
                Ok(Reply::Application {
                    app_name: "AIL_site2".into(),
                    cs_proxy: "csp1.example:7000".into(),
                    site_timeout: Some(std::time::Duration::from_secs(30)),
                    site_sip_register_timeout: None,
                    options: Default::default(),
                })
            ),
            result(4, Ok(Reply::Done)),
            event(1, Event::Disconnected),
        ]
    );
    assert_eq!(instance.poll_timeout(), None);
    assert_eq!(instance.try_poll_timeout().unwrap(), None);
}

#[test]
fn poll_timeout_crosses() {
    let host = TestHost::new();
    let instance = host
        .create(&echo(), json!({"timeout_ns": 5_000_000}))
        .unwrap();
    assert_eq!(instance.poll_timeout(), Some(5_000_000));
}

#[test]
fn wake_from_a_plugin_thread() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let lines: Lines = Arc::default();
    let sink_lines = lines.clone();
    let mut instance = echo()
        .create(
            &json!({}),
            Arc::new(move || {
                let _ = tx.lock().unwrap().send(std::thread::current().id());
            }),
            LogSink::new(LogLevel::Debug, move |level, msg| {
                sink_lines.lock().unwrap().push((level, msg.to_owned()))
            }),
        )
        .unwrap();
    instance
        .handle(0, &command(1, Command::RelaunchEndpoint))
        .unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        std::thread::current().id(),
        "wake in handle"
    );
    assert_eq!(drain(&mut instance, 0), vec![result(1, Ok(Reply::Done))]);
    let waker = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("wake from the plugin's thread");
    assert_ne!(waker, std::thread::current().id());
    assert_eq!(
        drain(&mut instance, 10),
        vec![event(0, Event::DnBackInService { dn: "5001".into() })]
    );
    assert!(lines.lock().unwrap().contains(&(
        LogLevel::Debug,
        "endpoint relaunched, waking the host".into()
    )));
}

#[test]
fn log_level_filter_is_passed_to_the_plugin() {
    let lines: Lines = Arc::default();
    let sink_lines = lines.clone();
    let mut instance = echo()
        .create(
            &json!({}),
            Arc::new(|| {}),
            LogSink::new(LogLevel::Warn, move |level, msg| {
                sink_lines.lock().unwrap().push((level, msg.to_owned()))
            }),
        )
        .unwrap();
    instance.handle(0, &command(1, connect("x"))).unwrap();
    assert_eq!(
        *lines.lock().unwrap(),
        vec![],
        "info lines are skipped plugin-side"
    );
}

#[test]
fn command_error_and_backend_error_differ() {
    let host = TestHost::new();
    let mut instance = host.create(&echo(), json!({})).unwrap();
    // A failed command is an ordinary result ...
    instance.handle(0, &command(1, connect("wrong"))).unwrap();
    assert_eq!(
        drain(&mut instance, 0),
        vec![result(
            1,
            Err(drctl_plugin_api::CommandError::new(
                "login failed: bad password"
            ))
        )]
    );
    // ... a backend fault is an error of the call, and the instance goes on.
    let err = instance
        .handle(0, &command(2, wire::read_application("fail")))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::Failed {
                export: "handle",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.instance_unusable());
    let text = err.to_string();
    assert!(
        text.starts_with("plugin `echo` (/")
            && text.ends_with("failed in handle: echo fixture: cannot read application `fail`"),
        "{text}"
    );
    instance.handle(0, &command(3, connect("ok"))).unwrap();
    assert_eq!(
        drain(&mut instance, 0),
        vec![result(3, Ok(Reply::Connected { epoch: 1 }))]
    );
}

#[test]
fn create_failure_carries_the_plugins_message() {
    let err = TestHost::new()
        .create(&echo(), json!({"fail_create": "scenario file missing"}))
        .unwrap_err();
    assert!(matches!(err, PluginError::CreateFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("libdrctl_fixture_echo"), "{text}");
    assert!(
        text.ends_with("failed to start: scenario file missing"),
        "{text}"
    );
}

fn assert_panicked(err: &PluginError, export: &str) {
    match err {
        PluginError::Panicked {
            export: e, message, ..
        } => {
            assert_eq!(*e, export);
            assert!(
                message.starts_with(&format!(
                    "echo fixture: panic in {export} as configured (at "
                )) && message.contains("src/lib.rs:"),
                "panic message with location: {message}"
            );
        }
        other => panic!("expected a panic in {export}, got {other:?}"),
    }
    assert!(err.instance_unusable());
    assert!(err.to_string().contains(&format!(
        "panicked in {export}: echo fixture: panic in {export}"
    )));
}

/// After its panic was reported, the instance refuses the next call.
fn assert_poisoned(instance: &mut Instance) {
    let err = instance.poll_output(0).unwrap_err();
    assert!(matches!(err, PluginError::Poisoned { .. }), "{err:?}");
}

#[test]
fn panic_in_create_is_an_error() {
    let err = TestHost::new()
        .create(&echo(), json!({"panic_in": "create"}))
        .unwrap_err();
    assert_panicked(&err, "create");
    // The host lives on and the plugin still works.
    let mut instance = TestHost::new().create(&echo(), json!({})).unwrap();
    instance.handle(0, &command(1, connect("x"))).unwrap();
    assert_eq!(drain(&mut instance, 0).len(), 1);
}

#[test]
fn panic_in_handle_poisons_the_instance() {
    let mut instance = TestHost::new().panicking_in("handle");
    let err = instance.handle(0, &command(1, connect("x"))).unwrap_err();
    assert_panicked(&err, "handle");
    // Later calls are refused cleanly, naming the original panic.
    for err in [
        instance.handle(0, &command(2, connect("x"))).unwrap_err(),
        instance.poll_output(0).unwrap_err(),
        instance.try_poll_timeout().unwrap_err(),
    ] {
        assert!(matches!(err, PluginError::Poisoned { .. }), "{err:?}");
        assert!(err.instance_unusable());
        assert!(
            err.to_string().contains(
                "instance unusable after a panic in handle: echo fixture: panic in handle"
            ),
            "{err}"
        );
    }
    drop(instance); // destroy still works
}

#[test]
fn panic_in_poll_output_is_an_error() {
    let mut instance = TestHost::new().panicking_in("poll_output");
    instance.handle(0, &command(1, connect("x"))).unwrap();
    assert_panicked(&instance.poll_output(0).unwrap_err(), "poll_output");
    assert_poisoned(&mut instance);
}

#[test]
fn panic_in_poll_timeout_is_an_error() {
    let host = TestHost::new();
    let instance = host.panicking_in("poll_timeout");
    assert_panicked(&instance.try_poll_timeout().unwrap_err(), "poll_timeout");

    // The infallible form yields None and the next call reports the panic.
    let mut instance = host.panicking_in("poll_timeout");
    assert_eq!(instance.poll_timeout(), None);
    assert_panicked(&instance.poll_output(0).unwrap_err(), "poll_timeout");
    assert_poisoned(&mut instance);
}

#[test]
fn panic_in_drop_is_logged_not_fatal() {
    let host = TestHost::new();
    drop(host.panicking_in("drop"));
    assert_eq!(
        host.logged("backend panicked while being dropped: echo fixture: panic in drop"),
        Some(LogLevel::Error)
    );
}

/// Loading the fixture `name` fails with `message` (`{path}` in it standing
/// for the fixture's path); the error.
fn refused_fixture(name: &str, message: &str) -> PluginError {
    let path = fixture(name);
    let err = loader::load(&path).unwrap_err();
    let path = path.display().to_string();
    assert_eq!(err.to_string(), message.replace("{path}", &path));
    err
}

#[test]
fn abi_major_mismatch_is_refused_with_both_versions() {
    let err = refused_fixture(
        "abi2",
        "plugin {path} speaks drctl plugin ABI 2.3, this drctl speaks 1.2",
    );
    assert!(matches!(err, PluginError::AbiMismatch { .. }), "{err:?}");
}

#[test]
fn not_a_plugin_is_refused() {
    let err = refused_fixture(
        "badmagic",
        "{path} is not a drctl plugin: bad magic 0x0bad0bad0bad0bad in its header (expected 0x445243544c504c47)",
    );
    assert!(matches!(err, PluginError::NotAPlugin { .. }), "{err:?}");

    refused_fixture(
        "nosym",
        "{path} is not a drctl plugin: it does not export `drctl_plugin_entry`",
    );

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("libdrctl_plugin_text.so");
    std::fs::write(&text, "not a library").unwrap();
    let err = loader::load(&text).unwrap_err();
    assert!(matches!(err, PluginError::NotLoadable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot load plugin {}: ", text.display())),
        "{err}"
    );
}

#[test]
fn malformed_output_is_an_error_naming_the_plugin() {
    let plugin = loader::load(&fixture("badjson")).unwrap();
    let host = TestHost::new();
    for (mode, expect) in [
        ("garbage", "this is not json"),
        ("shape", r#"{"kind":"event","session":"agent-1"}"#),
        ("utf8", "\u{fffd}"),
        ("status", "unknown status 7"),
    ] {
        let mut instance = host.create(&plugin, json!({ "output": mode })).unwrap();
        // Compact asked for, but the plugin does not offer it: JSON.
        assert_eq!(instance.encoding(), Encoding::Json);
        for _ in 0..2 {
            let err = instance.poll_output(0).unwrap_err();
            assert!(
                matches!(
                    err,
                    PluginError::Malformed {
                        export: "poll_output",
                        ..
                    }
                ),
                "{mode}: {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.starts_with(&format!(
                    "plugin `badjson` ({}) returned malformed output from poll_output: ",
                    fixture("badjson").display()
                )) && text.contains(expect),
                "{mode}: {text}"
            );
            assert!(!err.instance_unusable());
        }
    }
}

#[test]
fn not_found_lists_every_directory() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let err = loader::find_plugin("no-such", &[a.path(), b.path()]).unwrap_err();
    let PluginError::NotFound { file, searched, .. } = &err else {
        panic!("{err:?}")
    };
    let file_name = format!(
        "{}drctl_plugin_no_such{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    assert_eq!(file, &file_name);
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(searched[0], a.path());
    assert_eq!(searched[1], b.path());
    assert!(searched.contains(&exe_dir));
    assert!(searched.contains(&support::profile_dir()), "deps/ parent");
    let text = err.to_string();
    assert!(text.starts_with(&format!("plugin `no-such` not found: no {file_name} in ")));
    for dir in searched {
        assert!(text.contains(&dir.display().to_string()), "{text}");
    }
}

#[test]
fn find_and_list_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(loader::plugin_file_name("echo-copy"));
    assert!(copy.ends_with("libdrctl_plugin_echo_copy.so") || cfg!(not(target_os = "linux")));
    std::fs::copy(fixture("echo"), &copy).unwrap();
    let broken = dir.path().join(loader::plugin_file_name("broken"));
    std::fs::write(&broken, "not a library").unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();

    assert_eq!(
        loader::find_plugin("echo-copy", &[dir.path()]).unwrap(),
        copy
    );
    // A path is taken as is.
    let as_path = copy.to_str().unwrap();
    assert_eq!(loader::find_plugin(as_path, &[] as &[&str]).unwrap(), copy);

    let listed = loader::list_plugins(&[dir.path()]);
    let mine: Vec<_> = listed
        .iter()
        .filter(|entry| match entry {
            Ok(info) => info.path.starts_with(dir.path()),
            Err(PluginError::NotLoadable { path, .. }) => path.starts_with(dir.path()),
            Err(_) => false,
        })
        .collect();
    assert_eq!(mine.len(), 2, "{listed:?}");
    assert!(matches!(mine[0], Err(PluginError::NotLoadable { path, .. }) if *path == broken));
    let info = mine[1].as_ref().unwrap();
    assert_eq!(
        (info.name.as_str(), info.path.as_path()),
        ("echo", copy.as_path())
    );

    // The copy is a working plugin.
    let mut instance = TestHost::new()
        .create(&loader::load(&copy).unwrap(), json!({}))
        .unwrap();
    instance.handle(0, &command(1, connect("x"))).unwrap();
    assert_eq!(drain(&mut instance, 0).len(), 1);
}

#[test]
fn instances_on_several_threads() {
    let plugin = echo();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                let host = TestHost::new();
                let mut instance = host.create(&plugin, json!({})).unwrap();
                for i in 0..200 {
                    instance.handle(i, &command(i, connect("x"))).unwrap();
                    let out = drain(&mut instance, i);
                    assert_eq!(
                        out,
                        vec![result(i, Ok(Reply::Connected { epoch: i + 1 }))],
                        "thread {t}"
                    );
                }
                instance
            })
        })
        .collect();
    // Instances are Send: they may be dropped on another thread.
    for thread in threads {
        drop(thread.join().unwrap());
    }
}

/// The glue leaves an instance's dispatcher installed on the thread that
/// called it: a call of another instance on that thread (or of one made
/// after it was destroyed) must still log to its own host, on any thread.
#[test]
fn each_instance_logs_to_its_own_host_whatever_was_called_before_on_the_thread() {
    let plugin = echo();
    let got = |host: &TestHost| {
        host.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, line)| line.starts_with("echo fixture got a command"))
            .count()
    };
    let (a, b) = (TestHost::new(), TestHost::new());
    let mut first = a.create(&plugin, json!({})).unwrap();
    let mut second = b.create(&plugin, json!({})).unwrap();
    first.handle(0, &command(0, connect("x"))).unwrap();
    second.handle(0, &command(1, connect("x"))).unwrap();
    first.handle(0, &command(2, connect("x"))).unwrap();
    assert_eq!((got(&a), got(&b)), (2, 1));
    drop(second);
    let c = TestHost::new();
    let mut third = c.create(&plugin, json!({})).unwrap();
    third.handle(0, &command(9, connect("x"))).unwrap();
    first.handle(0, &command(3, connect("x"))).unwrap();
    assert_eq!((got(&a), got(&b), got(&c)), (3, 1, 1));
    // The same instance called from another thread logs there too.
    std::thread::scope(|s| {
        s.spawn(|| third.handle(0, &command(10, connect("x"))).unwrap());
    });
    first.handle(0, &command(4, connect("x"))).unwrap();
    assert_eq!((got(&a), got(&b), got(&c)), (4, 1, 2));
}

#[test]
fn plugin_logs_land_in_host_tracing_with_the_plugin_field() {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Capture(captured.clone());
    tracing::subscriber::with_default(subscriber, || {
        let plugin = echo();
        let mut instance = plugin
            .create(&json!({}), Arc::new(|| {}), plugin.tracing_log_sink())
            .unwrap();
        instance.handle(0, &command(1, connect("x"))).unwrap();
    });
    let captured = captured.lock().unwrap();
    let created = captured
        .iter()
        .find(|e| e.fields["message"].starts_with("echo fixture created"))
        .unwrap_or_else(|| panic!("{captured:?}"));
    assert_eq!(created.target, "drctl::plugin");
    assert_eq!(created.level, tracing::Level::INFO);
    assert_eq!(created.fields["plugin"], "echo");
}

/// A minimal subscriber recording events with their fields.
struct Capture(Arc<Mutex<Vec<Captured>>>);

#[derive(Debug)]
struct Captured {
    target: String,
    level: tracing::Level,
    fields: BTreeMap<String, String>,
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().into(), value.into());
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().into(), format!("{value:?}"));
            }
        }
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().into(),
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Like ssh with its keys: a plugin someone else could have written is refused,
/// with the fix in the message.
#[cfg(unix)]
#[test]
fn plugins_writable_by_others_or_owned_by_another_user_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join(fixture("echo").file_name().unwrap());
    std::fs::copy(fixture("echo"), &lib).unwrap();
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(dir.path(), 0o755);
    set(&lib, 0o755);
    loader::load(&lib).expect("a plugin only its owner can write loads");

    set(&lib, 0o775);
    let err = loader::load(&lib).unwrap_err().to_string();
    assert!(
        err.contains("is writable by group or others (mode 775)")
            && err.contains(&format!("chmod go-w {}", lib.display())),
        "{err}"
    );
    set(&lib, 0o755);
    set(dir.path(), 0o777);
    let err = loader::load(&lib).unwrap_err().to_string();
    assert!(
        err.contains("the directory") && err.contains("mode 777"),
        "{err}"
    );
    set(dir.path(), 0o755);

    // Another (non-root) owner: only root can arrange that here.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&lib, Some(4242), None).unwrap();
        let err = loader::load(&lib).unwrap_err().to_string();
        assert!(
            err.contains("is owned by uid 4242, neither root nor you"),
            "{err}"
        );
    }
}

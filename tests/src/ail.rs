//! The ail-bridge test rig: the AIL stand-ins (variant A compiled from
//! `plugins/ail-bridge/ail-standin`, variant B from the same sources with
//! `plugins/ail-bridge/ail-standin-b` laid over them), a stand-in
//! *deployment* that plays a mock scenario on the real clock behind real
//! loopback CS Proxy listeners, and helpers to run drctl against it.
//!
//! The deployment follows `plugins/mock/src/sim.rs`: a site that is not
//! reachable has no listener (connections are refused); after a login the
//! site's service statuses are sent and, once the desktop listens to its DN,
//! the DN comes back in service after `register-delay` if telephony is on;
//! status changes go only to a desktop connected at that site; logouts and
//! DN events only to the desktop once it listens to its DN (the mock's
//! "connected and subscribed").
//!
//! Its *scenario clock* starts when the stand-in reports its first AilLoader
//! on the control channel, which is drctl's first connect, and stands still
//! while the desktop is logged in but has not subscribed yet (from the
//! login's `OK` to its DN listener or the connection's end). On the mock's
//! virtual clock that stretch takes no time at all (reads and subscribe
//! answer at once; only `connect-latency` passes): a JVM that is slow to
//! read the Person and Applications and subscribe under load must not see
//! scenario events land before it listens, or the run end early. Timers in
//! drctl still run on the real clock; none is armed in that stretch.
//!
//! Wire to the stand-in: see `AilFactory.java` (tab-separated, URL-encoded).

use drctl_plugin_mock::scenario::{Happening, Scenario, ServiceState, SiteState};
use drctl_protocol::ConfigObject;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{drctl_bin, records, repo};

/// The agent every rig run logs in as.
pub const USER: &str = "agent007";
/// The password the stand-in CS Proxy accepts.
pub const PASSWORD: &str = "s3cret-Pa55";
/// The environment variable drctl reads the password from.
pub const PASSWORD_ENV: &str = "DRCTL_E2E_AIL_PASSWORD";
/// The agent's DN.
pub const DN: &str = "7001";

/// The `target/<profile>` directory of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds drctl and the ail-bridge plugin (with its `drctl-ail-bridge` tool) once.
pub fn build_ail_bridge() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let bin = drctl_bin();
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "drctl-plugin-ail-bridge"]);
        if profile_dir().file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.current_dir(repo()).status().expect("cargo build");
        assert!(status.success(), "building the ail-bridge plugin failed");
        bin
    })
    .clone()
}

/// The `drctl-ail-bridge` tool (self-test, jar).
pub fn ail_bridge_tool() -> PathBuf {
    build_ail_bridge();
    profile_dir().join("drctl-ail-bridge")
}

/// Which AIL stand-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `ail-standin/`: the shapes the adapter was first written for (static
    /// killFactory and getAilFactory, listeners held strongly, the reason
    /// code in the reasons, `loading/on-demand` in the constructor's Properties).
    A,
    /// `ail-standin-b/` over A: instance killFactory, a getAilFactory that
    /// blocks until loaded, listeners and DN objects held weakly (GC forced),
    /// the reason code in the extensions, extra statuses, `loading/on-demand`
    /// as a system property (see its AilFactory.java).
    B,
}

impl Variant {
    /// Source roots, later ones replacing files of the same path.
    fn roots(self) -> Vec<PathBuf> {
        let base = repo().join("plugins/ail-bridge");
        match self {
            Variant::A => vec![base.join("ail-standin/src")],
            Variant::B => vec![base.join("ail-standin/src"), base.join("ail-standin-b/src")],
        }
    }

    /// The `[backend.ail-bridge]` lines this stand-in needs beyond the defaults.
    pub fn bridge_config(self) -> &'static str {
        match self {
            Variant::A => "",
            // B reads loading/on-demand as a JVM system property.
            Variant::B => "on-demand-via = \"system-property\"\n",
        }
    }
}

/// The stand-in's sources: (path relative to its root, file), B's over A's.
fn standin_sources(variant: Variant) -> Vec<(PathBuf, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("read the stand-in sources")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "java") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_path_buf();
                out.insert(rel, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    for root in variant.roots() {
        walk(&root, &root, &mut out);
    }
    out.into_iter().collect()
}

/// Compiles the stand-in into `dest`, after replacing `from` by `to` in the
/// file named `file` (to rename one method), if given.
pub fn compile_standin(dest: &Path, variant: Variant, edit: Option<(&str, &str, &str)>) {
    let copy = dest.join("src");
    let classes = dest.join("classes");
    std::fs::create_dir_all(&classes).expect("create the classes dir");
    let mut files = Vec::new();
    for (rel, source) in standin_sources(variant) {
        let target = copy.join(rel);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create dirs");
        let mut text = std::fs::read_to_string(&source).expect("read a stand-in source");
        if let Some((file, from, to)) = edit {
            if source.file_name().is_some_and(|n| n == file) {
                assert!(text.contains(from), "{from} not in {file}");
                text = text.replace(from, to);
            }
        }
        std::fs::write(&target, text).expect("write a stand-in source");
        files.push(target);
    }
    let status = Command::new("javac")
        .args(["--release", "17", "-encoding", "UTF-8", "-d"])
        .arg(&classes)
        .args(&files)
        .status()
        .expect("run javac (the ail-bridge tests need a JDK)");
    assert!(status.success(), "javac failed on the AIL stand-in");
}

/// The compiled stand-in's classes directory (compiled once per source version).
pub fn standin_classes(variant: Variant) -> PathBuf {
    static DIRS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    DIRS[variant as usize]
        .get_or_init(|| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for (rel, path) in standin_sources(variant) {
                let bytes = rel.to_string_lossy().into_owned().into_bytes();
                for b in bytes
                    .into_iter()
                    .chain(std::fs::read(&path).expect("read a stand-in source"))
                {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            let root = profile_dir().join("ail-standin");
            let done = root.join(format!("{hash:016x}"));
            if !done.join("classes").is_dir() {
                let tmp = root.join(format!("tmp-{}-{variant:?}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                compile_standin(&tmp, variant, None);
                if std::fs::rename(&tmp, &done).is_err() {
                    // Another test process won the race; its copy is the same.
                    let _ = std::fs::remove_dir_all(&tmp);
                }
            }
            done.join("classes")
        })
        .clone()
}

/// A copy of a shipped scenario with every duration scaled by `num/den`
/// (the defaults `connect-latency` and `register-delay` too) and `end`
/// replaced if given. DR options must come out as whole seconds (they are
/// whole seconds in an AIL Application).
pub fn scale_scenario(text: &str, num: u32, den: u32, end: Option<Duration>) -> String {
    let mut doc: toml::Table = toml::from_str(text).expect("a valid scenario");
    let scale = |d: Duration| d * num / den;
    let parse = |v: &toml::Value| {
        humantime::parse_duration(v.as_str().expect("a duration string")).expect("a duration")
    };
    let micros = |d: Duration| toml::Value::String(format!("{}us", d.as_micros()));
    let deployment = doc
        .get_mut("deployment")
        .and_then(|d| d.as_table_mut())
        .expect("[deployment]");
    for (key, default) in [
        ("connect-latency", Some(Duration::from_millis(200))),
        ("register-delay", Some(Duration::from_secs(2))),
        ("end", None),
    ] {
        let value = deployment.get(key).map(parse).or(default);
        if let Some(v) = value {
            deployment.insert(key.into(), micros(scale(v)));
        }
    }
    for key in ["site-timeout", "site-sip-register-timeout"] {
        if let Some(v) = deployment.get(key).map(parse) {
            let scaled = scale(v);
            assert!(
                scaled.subsec_nanos() == 0,
                "{key} {v:?} * {num}/{den} is not whole seconds"
            );
            deployment.insert(key.into(), format!("{}s", scaled.as_secs()).into());
        }
    }
    if let Some(end) = end {
        deployment.insert("end".into(), micros(end));
    }
    if let Some(events) = doc.get_mut("events").and_then(|e| e.as_array_mut()) {
        for event in events.iter_mut().filter_map(|e| e.as_table_mut()) {
            let at = event.get("at").map(parse).expect("events.at");
            event.insert("at".into(), micros(scale(at)));
        }
    }
    toml::to_string(&doc).expect("serialize the scenario")
}

// ---- the stand-in deployment ------------------------------------------------

/// One site of the deployment.
#[derive(Clone, Debug)]
pub struct Site {
    /// Site name (`site1`).
    pub name: String,
    /// Its AIL Application.
    pub app: String,
    /// Its CS Proxy listener.
    pub addr: SocketAddr,
}

/// The desktop's live AIL connection.
struct Conn {
    id: u64,
    site: String,
    stream: TcpStream,
    /// It listens to its DN: subscribed, in the mock's words.
    listening: bool,
}

/// What the deployment has seen and done, for tests to wait on.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Control channel lines: `HELLO pid`, `LOADER host:port app on-demand=…`, `KILL`,
    /// `LOST what…` (stand-in B: an event that reached no listener), `EOF pid`.
    pub control: Vec<String>,
    /// `site user password-ok|password-wrong` per login.
    pub logins: Vec<String>,
    /// `site DN id` per DN listener.
    pub listens: Vec<String>,
    /// `site message...` per message pushed to the desktop after its login.
    pub sent: Vec<String>,
    /// `site dn queue workmode ok|refused` per agent login on the DN (W5).
    pub agent_logins: Vec<String>,
}

#[derive(Default)]
struct State {
    /// When the stand-in reported its first AilLoader.
    t0: Option<Instant>,
    /// The scenario clock stood still this long (see the module's doc)...
    paused: Duration,
    /// ...plus since this instant, if it stands still now.
    paused_since: Option<Instant>,
    sites: BTreeMap<String, SiteState>,
    conn: Option<Conn>,
    next_conn: u64,
    seen: Seen,
    /// Each site's Application options now (`section/option`), as a login
    /// reads them: the scenario's, changed by its `config` events (E5).
    app_options: BTreeMap<String, BTreeMap<String, String>>,
}

impl State {
    /// Scenario time at `now`: real time since t0 less the pauses (zero before t0).
    fn scenario_now(&self, now: Instant) -> Duration {
        let Some(t0) = self.t0 else {
            return Duration::ZERO;
        };
        let current = self
            .paused_since
            .map_or(Duration::ZERO, |p| now.saturating_duration_since(p));
        now.saturating_duration_since(t0)
            .saturating_sub(self.paused + current)
    }

    /// Stops the scenario clock (a login answered, its subscribe not yet seen).
    fn pause(&mut self, now: Instant) {
        self.paused_since.get_or_insert(now);
    }

    /// Restarts the scenario clock.
    fn resume(&mut self, now: Instant) {
        if let Some(p) = self.paused_since.take() {
            self.paused += now.saturating_duration_since(p);
        }
    }
}

struct Shared {
    scenario: Scenario,
    sites: Vec<Site>,
    /// One file per site, `healthy` or `down` (reachable with telephony ON,
    /// as the mock's probe judges): what an operator's probe command would
    /// ask of a monitoring system; see [`Deployment::probe_command`].
    health: tempfile::TempDir,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce(Arc<Shared>) + Send + 'static) {
        let shared = self.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || f(shared))
            .expect("spawn a deployment thread");
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    fn site(&self, name: &str) -> &Site {
        self.sites
            .iter()
            .find(|s| s.name == name)
            .expect("a known site")
    }
}

/// A stand-in two-site deployment playing one scenario; stops on drop.
pub struct Deployment {
    shared: Arc<Shared>,
    control: SocketAddr,
}

fn encode(field: &str) -> String {
    let mut out = String::new();
    for b in field.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("3F");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn send(stream: &mut TcpStream, fields: &[&str]) {
    let line = fields
        .iter()
        .map(|f| encode(f))
        .collect::<Vec<_>>()
        .join("\t")
        + "\n";
    // A desktop that is gone reads nothing: same as the mock's unsubscribed session.
    let _ = stream.write_all(line.as_bytes());
}

/// Reads one line, waking up every 100 ms to check for the stop flag.
fn read_fields(reader: &mut BufReader<TcpStream>, shared: &Shared) -> Option<Vec<String>> {
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with('\n') => {
                return Some(line.trim_end().split('\t').map(decode).collect());
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if shared.stopped() {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

/// Writes `site`'s health file (renamed into place: a probe reads it any time).
fn write_health(dir: &Path, site: &str, state: &SiteState) {
    let healthy = state.reachable && state.telephony == ServiceState::On;
    let tmp = dir.join(format!(".{site}"));
    std::fs::write(&tmp, if healthy { "healthy" } else { "down" }).expect("write a health file");
    std::fs::rename(&tmp, dir.join(site)).expect("rename a health file");
}

/// Pushes a message to the connected desktop and notes it.
fn push(conn: &mut Conn, seen: &mut Seen, fields: &[&str]) {
    send(&mut conn.stream, fields);
    seen.sent
        .push(format!("{} {}", conn.site, fields.join(" ")));
}

fn on_off(s: ServiceState) -> &'static str {
    match s {
        ServiceState::On => "ON",
        ServiceState::Off => "OFF",
    }
}

impl Deployment {
    /// Starts the deployment of the scenario file `path` (sites `site1`, `site2`).
    pub fn start(path: &Path) -> Deployment {
        let names = ["site1".to_owned(), "site2".to_owned()];
        let scenario = Scenario::load(path, &names).expect("a valid scenario");
        let mut listeners = Vec::new();
        let mut sites = Vec::new();
        for name in &names {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a CS Proxy listener");
            sites.push(Site {
                name: name.clone(),
                app: format!("AIL_{name}"),
                addr: listener.local_addr().expect("its address"),
            });
            listeners.push(listener);
        }
        let control = TcpListener::bind("127.0.0.1:0").expect("bind the control listener");
        let control_addr = control.local_addr().expect("its address");
        let state = State {
            sites: scenario.sites.clone(),
            app_options: scenario
                .applications
                .iter()
                .map(|(site, app)| (site.clone(), app.options.clone()))
                .collect(),
            ..State::default()
        };
        let health = tempfile::tempdir().expect("a health directory");
        for (name, site) in &state.sites {
            write_health(health.path(), name, site);
        }
        let shared = Arc::new(Shared {
            scenario,
            sites,
            health,
            state: Mutex::new(state),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        });
        for (i, listener) in listeners.into_iter().enumerate() {
            let name = shared.sites[i].name.clone();
            shared.spawn(&format!("csproxy-{name}"), move |s| {
                serve_site(&s, &name, listener)
            });
        }
        shared.spawn("control", move |s| serve_control(&s, control));
        shared.spawn("timeline", |s| play(&s));
        Deployment {
            shared,
            control: control_addr,
        }
    }

    /// The sites, with their listener addresses.
    pub fn sites(&self) -> &[Site] {
        &self.shared.sites
    }

    /// An operator's `probe-command` (TOML array) for this deployment: healthy
    /// when the probed site is reachable with its telephony ON, as the mock's
    /// probe judges (the bridge's own TCP connect sees reachability only).
    pub fn probe_command(&self) -> String {
        let script = format!(
            "test \"$(cat {}/$DRCTL_PROBE_SITE)\" = healthy",
            self.shared.health.path().display()
        );
        format!("[\"/bin/sh\", \"-c\", {script:?}]")
    }

    /// Where the stand-in reports to (`-Dailstandin.control=...`).
    pub fn control_addr(&self) -> SocketAddr {
        self.control
    }

    /// Waits until `pred` holds for what the deployment has seen, up to `timeout`.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if pred(&st.seen) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// When the timeline started (the first AilLoader), waiting up to `timeout`.
    pub fn wait_t0(&self, timeout: Duration) -> Option<Instant> {
        self.wait(timeout, |s| {
            s.control.iter().any(|l| l.starts_with("HELLO "))
        });
        self.shared.lock().t0
    }

    /// Waits until the scenario clock reads `at`, at most `timeout` of real
    /// time; whether it got there.
    pub fn wait_scenario(&self, at: Duration, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            let left = at.saturating_sub(self.shared.lock().scenario_now(now));
            if left.is_zero() {
                return true;
            }
            if now >= deadline {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    /// What the deployment has seen so far.
    pub fn seen(&self) -> Seen {
        self.shared.lock().seen.clone()
    }

    /// Control channel lines so far.
    pub fn control_log(&self) -> Vec<String> {
        self.seen().control
    }

    /// Logins so far (`site user password-ok|password-wrong`).
    pub fn logins(&self) -> Vec<String> {
        self.seen().logins
    }

    /// The JVM pids that said hello, in order.
    pub fn pids(&self) -> Vec<u32> {
        self.control_log()
            .iter()
            .filter_map(|l| l.strip_prefix("HELLO "))
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(conn) = self.shared.lock().conn.take() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        loop {
            let handle = self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            match handle {
                Some(h) => {
                    let _ = h.join();
                }
                None => break,
            }
        }
    }
}

/// A site's CS Proxy: listening while the site is reachable, closed (refusing) while not.
fn serve_site(shared: &Arc<Shared>, name: &str, first: TcpListener) {
    let addr = shared.site(name).addr;
    let _ = first.set_nonblocking(true);
    let mut listener = Some(first);
    // While the site is down its port stays bound, not listening (refusing),
    // so that no parallel test's server is handed the number meanwhile.
    let mut held: Option<socket2::Socket> = None;
    while !shared.stopped() {
        let reachable = shared.lock().sites.get(name).is_some_and(|s| s.reachable);
        match (&listener, reachable) {
            (None, true) => {
                drop(held.take());
                // std sets SO_REUSEADDR: the port is ours again at once.
                listener = TcpListener::bind(addr).ok();
                if let Some(l) = &listener {
                    let _ = l.set_nonblocking(true);
                }
            }
            (Some(_), false) => {
                listener = None;
                held = hold(addr);
            }
            _ => {}
        }
        if let Some(l) = &listener {
            match l.accept() {
                Ok((stream, _)) => {
                    let site = name.to_owned();
                    shared.spawn(&format!("conn-{name}"), move |s| {
                        serve_conn(&s, &site, stream)
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `addr` bound with SO_REUSEADDR and not listening: connects are refused,
/// and a later `TcpListener::bind` of it (also SO_REUSEADDR) still succeeds.
fn hold(addr: SocketAddr) -> Option<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .ok()?;
    socket.set_reuse_address(true).ok()?;
    socket.bind(&addr.into()).ok()?;
    Some(socket)
}

/// One desktop connection: login, configuration, statuses, then DN listens.
fn serve_conn(shared: &Arc<Shared>, site: &str, stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_nodelay(true);
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let Some(login) = read_fields(&mut reader, shared) else {
        return;
    };
    if login.first().map(String::as_str) != Some("LOGIN") || login.len() < 4 {
        return;
    }
    let d = &shared.scenario.deployment;
    std::thread::sleep(d.connect_latency);
    let mut writer = stream;
    let id = {
        let mut st = shared.lock();
        if !st.sites.get(site).is_some_and(|s| s.reachable) {
            return;
        }
        let password_ok = login[3] == PASSWORD;
        st.seen.logins.push(format!(
            "{site} {} {}",
            login[2],
            if password_ok {
                "password-ok"
            } else {
                "password-wrong"
            }
        ));
        shared.changed.notify_all();
        if !password_ok {
            send(
                &mut writer,
                &["ERR", "LOGIN_INCORRECT: wrong user name or password"],
            );
            return;
        }
        let preferred = d.preferred_site.get_ref();
        for s in &shared.sites {
            let option = if &s.name == preferred {
                "site1-application"
            } else {
                "site2-application"
            };
            send(&mut writer, &["PERSON", &login[2], "dr", option, &s.app]);
            let (host, port) = (s.addr.ip().to_string(), s.addr.port().to_string());
            send(&mut writer, &["APP", &s.app, &host, &port]);
            for (key, value) in [
                ("site-timeout", d.site_timeout),
                ("site-sip-register-timeout", d.site_sip_register_timeout),
            ] {
                if let Some(v) = value {
                    send(
                        &mut writer,
                        &["OPTION", &s.app, "dr", key, &v.as_secs().to_string()],
                    );
                }
            }
            for (key, value) in st.app_options.get(&s.name).into_iter().flatten() {
                if let Some((section, option)) = key.split_once('/') {
                    send(&mut writer, &["OPTION", &s.app, section, option, value]);
                }
            }
        }
        let now = st.sites.get(site).copied().unwrap_or_default();
        for (service, status) in [
            ("TELEPHONY", now.telephony),
            ("CONFIG", now.configuration),
            ("STATISTICS", now.statistic),
        ] {
            send(&mut writer, &["STATUS", service, on_off(status)]);
        }
        send(&mut writer, &["OK"]);
        st.next_conn += 1;
        let id = st.next_conn;
        if let Ok(stream) = writer.try_clone() {
            st.conn = Some(Conn {
                id,
                site: site.to_owned(),
                stream,
                listening: false,
            });
            // Until it subscribes, no scenario time passes (the mock's reads
            // and subscribe take none).
            st.pause(Instant::now());
        }
        id
    };
    while let Some(fields) = read_fields(&mut reader, shared) {
        match fields.first().map(String::as_str) {
            Some("LISTEN") if fields.get(1).map(String::as_str) == Some("DN") => {
                let dn = fields.get(2).cloned().unwrap_or_default();
                {
                    let mut st = shared.lock();
                    st.seen.listens.push(format!("{site} DN {dn}"));
                    if let Some(c) = st.conn.as_mut().filter(|c| c.id == id) {
                        c.listening = true;
                        st.resume(Instant::now());
                    }
                    shared.changed.notify_all();
                }
                dn_back_later(shared, site, id, dn);
            }
            Some("AGENTLOGIN") => {
                let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
                let dn = field(1);
                let refused = {
                    let mut st = shared.lock();
                    let st = &mut *st;
                    let refused = st.sites.get(site).is_some_and(|s| s.login_fails);
                    st.seen.agent_logins.push(format!(
                        "{site} {dn} {} {} {}",
                        field(2),
                        field(3),
                        if refused { "refused" } else { "ok" }
                    ));
                    if let Some(c) = st.conn.as_mut().filter(|c| c.id == id) {
                        let why = format!("login refused at {site}");
                        let answer: &[&str] = if refused {
                            &["AGENTLOGIN", &dn, &why]
                        } else {
                            &["AGENTLOGIN", &dn]
                        };
                        push(c, &mut st.seen, answer);
                    }
                    shared.changed.notify_all();
                    refused
                };
                // As after a subscribe: the phone registers once logged in.
                if !refused {
                    dn_back_later(shared, site, id, dn);
                }
            }
            Some("BYE") => break,
            _ => {}
        }
    }
    let mut st = shared.lock();
    if st.conn.as_ref().is_some_and(|c| c.id == id) {
        st.conn = None;
        st.resume(Instant::now());
    }
}

/// The DN comes back in service `register-delay` from now, if SIP (telephony)
/// is up at `site` and connection `id` is still the desktop's.
fn dn_back_later(shared: &Arc<Shared>, site: &str, id: u64, dn: String) {
    // The phone (re)registers after register-delay if SIP is up there.
    let delay = shared.scenario.deployment.register_delay;
    let site = site.to_owned();
    shared.spawn("dn-back", move |s| {
        let due = Instant::now() + delay;
        while Instant::now() < due {
            if s.stopped() {
                return;
            }
            std::thread::sleep(
                Duration::from_millis(5).min(due.saturating_duration_since(Instant::now())),
            );
        }
        let mut st = s.lock();
        let st = &mut *st;
        let up = st
            .sites
            .get(&site)
            .is_some_and(|x| x.telephony == ServiceState::On);
        if let Some(c) = st.conn.as_mut().filter(|c| c.id == id) {
            if up {
                push(c, &mut st.seen, &["DN", &dn, "IN_SERVICE"]);
                s.changed.notify_all();
            }
        }
    });
}

/// The control channel: the stand-in's lifecycle reports; the first one starts the timeline.
fn serve_control(shared: &Arc<Shared>, listener: TcpListener) {
    let _ = listener.set_nonblocking(true);
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _)) => shared.spawn("control-conn", move |s| {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let mut reader = BufReader::new(stream);
                let mut pid = String::new();
                while let Some(fields) = read_fields(&mut reader, &s) {
                    let mut st = s.lock();
                    if fields[0] == "HELLO" {
                        pid = fields.get(1).cloned().unwrap_or_default();
                        st.t0.get_or_insert_with(Instant::now);
                    }
                    st.seen.control.push(fields.join(" "));
                    s.changed.notify_all();
                }
                if !s.stopped() {
                    s.lock().seen.control.push(format!("EOF {pid}"));
                    s.changed.notify_all();
                }
            }),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Plays the scenario's timeline from t0, on the scenario clock.
fn play(shared: &Arc<Shared>) {
    loop {
        let st = shared.lock();
        if st.t0.is_some() {
            break;
        }
        if shared.stopped() {
            return;
        }
        drop(
            shared
                .changed
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner()),
        );
    }
    for h in shared.scenario.timeline.clone() {
        // Due on the scenario clock, which stands still while a login waits
        // for its subscribe: played under the same lock that reads it.
        let mut st = loop {
            if shared.stopped() {
                return;
            }
            let st = shared.lock();
            let left = h.at.saturating_sub(st.scenario_now(Instant::now()));
            if left.is_zero() {
                break st;
            }
            drop(st);
            std::thread::sleep(left.min(Duration::from_millis(10)));
        };
        if h.stale {
            // D5's late events of a left site cannot reach a closed connection.
            continue;
        }
        let st = &mut *st;
        match h.what {
            Happening::Set { site, patch } => {
                let Some(state) = st.sites.get_mut(&site) else {
                    continue;
                };
                let before = *state;
                state.apply(&patch);
                let after = *state;
                write_health(shared.health.path(), &site, &after);
                if let Some(c) = st.conn.as_mut().filter(|c| c.site == site) {
                    for (service, old, new) in [
                        ("TELEPHONY", before.telephony, after.telephony),
                        ("CONFIG", before.configuration, after.configuration),
                        ("STATISTICS", before.statistic, after.statistic),
                    ] {
                        if old != new {
                            push(c, &mut st.seen, &["STATUS", service, on_off(new)]);
                        }
                    }
                }
            }
            Happening::Logout { reason } => {
                if let Some(c) = st.conn.as_mut().filter(|c| c.listening) {
                    let mut fields = vec!["DN", DN, "LOGGED_OUT"];
                    if let Some(r) = &reason {
                        fields.extend(["R", "ReasonCode", r.as_str()]);
                    }
                    push(c, &mut st.seen, &fields);
                }
            }
            Happening::DnBackInService => {
                if let Some(c) = st.conn.as_mut().filter(|c| c.listening) {
                    push(c, &mut st.seen, &["DN", DN, "IN_SERVICE"]);
                }
            }
            Happening::DnOutOfService => {
                if let Some(c) = st.conn.as_mut().filter(|c| c.listening) {
                    push(c, &mut st.seen, &["DN", DN, "OUT_OF_SERVICE"]);
                }
            }
            Happening::Disconnect => {
                if let Some(c) = st.conn.take() {
                    st.seen.sent.push(format!("{} (disconnected)", c.site));
                    let _ = c.stream.shutdown(Shutdown::Both);
                    st.resume(Instant::now());
                }
            }
            // E5: Configuration Server notifies the desktop once it listens
            // (the mock's "connected and subscribed").
            Happening::ConfigChanged(c) => {
                let site = shared.sites.iter().find(|s| s.app == c.name);
                if let (ConfigObject::Application, Some(site)) = (c.object, site) {
                    let options = st.app_options.entry(site.name.clone()).or_default();
                    let key = format!("{}/{}", c.section, c.option);
                    match &c.value {
                        Some(v) => options.insert(key, v.clone()),
                        None => options.remove(&key),
                    };
                }
                if let Some(conn) = st.conn.as_mut().filter(|c| c.listening) {
                    // `Person` -> `PERSON`, as AIL names object types (ASSUMED).
                    let object = format!("{:?}", c.object).to_uppercase();
                    let mut fields = vec!["CONFIG", &object, &c.name, &c.section, &c.option];
                    if let Some(v) = &c.value {
                        fields.push(v);
                    }
                    push(conn, &mut st.seen, &fields);
                }
            }
        }
        shared.changed.notify_all();
    }
}

// ---- running drctl against it -------------------------------------------------

/// A scratch directory with a drctl config for the deployment.
pub struct Rig {
    /// The scratch directory (HOME, caches, config).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config: PathBuf,
}

/// Writes a drctl config for `deployment`: sites, agent, fast backoff, and
/// `[backend.ail-bridge]` on the stand-in. `extra` is appended verbatim.
pub fn rig(deployment: &Deployment, first_site: &str, classpath: &Path, extra: &str) -> Rig {
    let dir = tempfile::tempdir().expect("a scratch dir");
    let mut text = format!(
        "[agent]\nusername = \"{USER}\"\npassword-env = \"{PASSWORD_ENV}\"\ndn = \"{DN}\"\n\n"
    );
    for s in deployment.sites() {
        text.push_str(&format!(
            "[[sites]]\nname = \"{}\"\ncs-proxy = \"{}\"\napp-name = \"{}\"\n\n",
            s.name, s.addr, s.app
        ));
    }
    text.push_str(&format!(
        "[startup]\nfirst-site = \"{first_site}\"\n\
         backoff = {{ initial = \"1s\", factor = 2.0, max = \"4s\", jitter = 0.0 }}\n\n\
         [backend.ail-bridge]\nclasspath = [{:?}]\n\
         jvm-args = [\"-Dailstandin.control={}\", \"-XX:+UseSerialGC\", \"-XX:TieredStopAtLevel=1\", \"-Xss512k\"]\n\
         retry-interval = \"1s\"\nrestart-delay = \"300ms\"\nstartup-timeout = \"60s\"\n\
         shutdown-grace = \"5s\"\n{extra}\n",
        classpath.display().to_string(),
        deployment.control_addr(),
    ));
    let config = dir.path().join("drctl.toml");
    std::fs::write(&config, text).expect("write the config");
    Rig { dir, config }
}

impl Rig {
    /// A drctl command in this rig: isolated HOME and caches, the password in its variable.
    pub fn drctl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(build_ail_bridge());
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(repo())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            // Runs in parallel: each its own control socket directory.
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env(PASSWORD_ENV, PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs drctl with `args` in this rig to its end (killed after `within`).
    pub fn run(&self, args: &[&str], within: Duration) -> Run {
        finish(self.drctl(args).spawn().expect("spawn drctl"), within)
    }
}

/// What a run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: Option<i32>,
    /// Decision records (see [`records`]).
    pub records: Vec<String>,
    /// stderr.
    pub stderr: String,
}

/// Sends SIGINT to a child.
pub fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

/// Waits for `child` to exit (killing it after `timeout`) and collects its output.
pub fn finish(child: Child, timeout: Duration) -> Run {
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    };
    let out = child.wait_with_output().expect("wait for drctl");
    done.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    Run {
        code: out.status.code(),
        records: records(&out.stdout),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `drctl watch --backend ail-bridge` until the deployment's scenario clock
/// reads `end`, then SIGINT.
pub fn watch_bridge(rig: &Rig, deployment: &Deployment, end: Duration) -> Run {
    watch_bridge_with(rig, deployment, end, &[])
}

/// As [`watch_bridge`], with extra drctl arguments (`-v`).
pub fn watch_bridge_with(rig: &Rig, deployment: &Deployment, end: Duration, extra: &[&str]) -> Run {
    let mut args = vec!["watch", "--backend", "ail-bridge", "--output", "json"];
    args.extend_from_slice(extra);
    let child = rig.drctl(&args).spawn().expect("spawn drctl");
    // Generous: a JVM start on a loaded 2-core machine.
    if deployment.wait_t0(Duration::from_secs(60)).is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let run = finish(child, Duration::from_secs(10));
        panic!("the stand-in never reported an AilLoader: {run:#?}");
    }
    // A login stuck before its subscribe stops the scenario clock: bounded,
    // so such a run ends (and fails on its decisions) instead of hanging.
    deployment.wait_scenario(end, end + Duration::from_secs(60));
    interrupt(&child);
    finish(child, Duration::from_secs(30))
}

/// The same scenario on the mock, virtual clock, to its `end`.
pub fn watch_mock(rig: &Rig, scenario: &Path) -> Run {
    watch_mock_with(rig, scenario, &[])
}

/// As [`watch_mock`], with extra drctl arguments (`--set KEY=VALUE`).
pub fn watch_mock_with(rig: &Rig, scenario: &Path, extra: &[&str]) -> Run {
    let scenario = scenario.to_string_lossy().into_owned();
    let mut args = vec![
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &scenario,
        "--clock",
        "virtual",
        "--until-end",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let child = rig.drctl(&args).spawn().expect("spawn drctl");
    finish(child, Duration::from_secs(30))
}

/// Records without their time, and without the error text of a failed
/// switchover (the mock's and the JVM's wording differ).
pub fn decisions(records: &[String]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let rest: Vec<&str> = r.split(' ').skip(1).collect();
            if rest.first() == Some(&"switchover-failed") {
                rest[..2.min(rest.len())].join(" ")
            } else {
                rest.join(" ")
            }
        })
        .collect()
}

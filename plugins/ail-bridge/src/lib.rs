//! `ail-bridge`: drctl's real backend. It drives the Genesys Agent Interaction
//! Layer (AIL, a Java library) in a JVM sidecar that it starts, supervises and
//! stops; see `README.md` beside this crate for setup and the AIL names.
//!
//! - [`sidecar`]: one JVM (cleaned environment, stdout/stderr threads).
//! - [`protocol`]: the JSON lines spoken with it; a version handshake first.
//! - [`jar`]: the sidecar jar, embedded at build time, written to a cache file.
//! - [`AilBridge`]: the [`Backend`]: forwards commands, assigns connection
//!   epochs, turns a dead JVM into a `disconnected` event and restarts it
//!   with backoff.
//!
//! Not `DETERMINISTIC`: the JVM and AIL run on their own clocks and threads.
//! AIL's factory is a per-JVM singleton, so one instance serves one agent session.

pub mod config;
pub mod error;
pub mod jar;
pub mod names;
pub mod probe;
pub mod protocol;
pub mod sidecar;

pub use config::BridgeConfig;
pub use error::BridgeError;

use drctl_plugin_api::messages::{
    Command, CommandError, CommandResult, Event, Input, Output, Reply,
};
use drctl_plugin_api::plugin::{Backend, HostHandle};
use protocol::{Line, SidecarHello, ToSidecar, BUILD_ID, PROTOCOL};
use sidecar::{Msg, Sidecar};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How long the first start waits for a dead JVM's stderr to end (its last
/// lines say why it died); a grandchild keeping the pipe open costs this much.
const STDERR_DRAIN: Duration = Duration::from_secs(2);

/// The same after a kill, and in the host's loop, which must not stall long.
const STDERR_DRAIN_SHORT: Duration = Duration::from_millis(500);

/// Where the sidecar JVM is in its life.
#[derive(Debug)]
enum Proc {
    /// Handshake done: commands go straight to it.
    Ready(Sidecar),
    /// Started; its hello is due by `deadline` (host ns).
    Starting {
        /// The JVM.
        sidecar: Sidecar,
        /// Host time by which the hello must have come.
        deadline: u64,
    },
    /// None running; the next start is due at `at` (host ns).
    Down {
        /// Host time of the next start.
        at: u64,
    },
    /// Stopped on purpose (shutdown); a later connect starts it again.
    Stopped,
}

/// What an unanswered command was, for when its answer (or the JVM's death) comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A connect that will open this epoch.
    Connect {
        /// The epoch the plugin picked.
        epoch: u64,
    },
    /// A kill_factory.
    KillFactory,
    /// A shutdown.
    Shutdown,
    /// Anything else.
    Other,
}

/// The plugin: a supervised AIL sidecar behind the drctl ABI.
#[derive(Debug)]
pub struct AilBridge {
    cfg: BridgeConfig,
    jar: PathBuf,
    host: HostHandle,
    proc: Proc,
    /// Starts so far; messages of an older start are ignored.
    generation: u64,
    tx: Sender<(u64, Msg)>,
    rx: Receiver<(u64, Msg)>,
    inflight: BTreeMap<u64, Pending>,
    /// Connects waiting for a sidecar to be ready.
    waiting: VecDeque<(u64, Command)>,
    out: VecDeque<Output>,
    /// The one agent session served.
    session: Option<String>,
    /// The epoch of the live AIL connection.
    connection: Option<u64>,
    next_epoch: u64,
    /// Consecutive deaths or failed starts, for the restart backoff.
    failures: u32,
    /// A shutdown was asked for: the JVM's exit is expected.
    stopping: bool,
    /// Probes (E2) running on their own threads, and where they answer.
    probes_in_flight: usize,
    probe_tx: Sender<(u64, CommandResult)>,
    probe_rx: Receiver<(u64, CommandResult)>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl AilBridge {
    /// Reads the config, writes out the jar, starts the JVM and waits for its
    /// handshake: a bad setup fails here, with a message naming the cause.
    pub fn start(config: serde_json::Value, host: HostHandle) -> Result<AilBridge, BridgeError> {
        let cfg = BridgeConfig::from_json(config)?;
        let dir = cfg.cache_dir.clone().unwrap_or_else(jar::default_dir);
        let jar = jar::materialize(&dir)?;
        AilBridge::with_jar(cfg, jar, host)
    }

    /// As [`AilBridge::start`], with the sidecar jar at `jar`.
    fn with_jar(
        cfg: BridgeConfig,
        jar: PathBuf,
        host: HostHandle,
    ) -> Result<AilBridge, BridgeError> {
        let (tx, rx) = mpsc::channel();
        let (probe_tx, probe_rx) = mpsc::channel();
        let mut bridge = AilBridge {
            cfg,
            jar,
            host,
            proc: Proc::Stopped,
            generation: 0,
            tx,
            rx,
            inflight: BTreeMap::new(),
            waiting: VecDeque::new(),
            out: VecDeque::new(),
            session: None,
            connection: None,
            next_epoch: 0,
            failures: 0,
            stopping: false,
            probes_in_flight: 0,
            probe_tx,
            probe_rx,
        };
        bridge.first_start()?;
        Ok(bridge)
    }

    /// Starts the first JVM and blocks until its hello (or a failure).
    fn first_start(&mut self) -> Result<(), BridgeError> {
        self.generation += 1;
        let mut sidecar =
            Sidecar::spawn(&self.cfg, &self.jar, &self.host, &self.tx, self.generation)?;
        let deadline = Instant::now() + self.cfg.startup_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((generation, _)) if generation != self.generation => {}
                Ok((_, Msg::Line(Line::Hello(hello)))) => {
                    self.check_hello(&hello)?;
                    self.ready(&sidecar, &hello);
                    self.proc = Proc::Ready(sidecar);
                    return Ok(());
                }
                Ok((_, Msg::Line(Line::Output(_)))) => self
                    .host
                    .warn("the AIL sidecar wrote an output before its handshake (ignored)"),
                Ok((_, Msg::Line(Line::Bad(line)))) => self.host.warn(format_args!(
                    "the AIL sidecar wrote a non-protocol line before its handshake (ignored): {line}"
                )),
                Ok((_, Msg::Eof)) | Err(RecvTimeoutError::Disconnected) => {
                    let (status, _) = sidecar.wait_or_kill(Duration::from_secs(2));
                    // Why it exited (a wrong classpath, a bad option) is in
                    // its last stderr lines, which may still be in the pipe.
                    sidecar.drain_stderr(STDERR_DRAIN);
                    return Err(BridgeError::EarlyExit {
                        status,
                        tail: sidecar.tail(),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    sidecar.stop(Duration::ZERO);
                    sidecar.drain_stderr(STDERR_DRAIN_SHORT);
                    return Err(BridgeError::HandshakeTimeout {
                        timeout: human(self.cfg.startup_timeout),
                        tail: sidecar.tail(),
                    });
                }
            }
        }
    }

    /// Same protocol and build on both sides, and every AIL name found.
    fn check_hello(&self, hello: &SidecarHello) -> Result<(), BridgeError> {
        if hello.protocol != PROTOCOL || hello.build != BUILD_ID {
            return Err(BridgeError::Mismatch {
                plugin_protocol: PROTOCOL,
                plugin_build: BUILD_ID.to_owned(),
                sidecar_protocol: hello.protocol,
                sidecar_build: hello.build.clone(),
            });
        }
        if !hello.errors.is_empty() {
            return Err(BridgeError::SidecarConfig(hello.errors.join("; ")));
        }
        if !hello.missing.is_empty() {
            return Err(BridgeError::ail_missing(
                &self.cfg.classpath,
                &hello.missing,
            ));
        }
        Ok(())
    }

    fn ready(&self, sidecar: &Sidecar, hello: &SidecarHello) {
        self.host.info(format_args!(
            "AIL sidecar ready: pid {}, start {}, Java {}, protocol {}, build {}, killFactory: {}",
            sidecar.pid(),
            sidecar.generation(),
            hello.java,
            hello.protocol,
            hello.build,
            hello.kill_factory.as_deref().unwrap_or("none")
        ));
    }

    fn session(&self) -> String {
        self.session.clone().unwrap_or_default()
    }

    /// Queues the answer to command `id`.
    fn answer(&mut self, id: u64, result: CommandResult) {
        self.out.push_back(Output::Result {
            session: self.session(),
            id,
            result,
        });
    }

    /// Sends a command to the ready sidecar; a failed write is answered when
    /// the JVM's death is noticed (its stdout ends right after).
    fn forward(&mut self, id: u64, command: &Command, epoch: Option<u64>, pending: Pending) {
        let session = self.session();
        let Proc::Ready(sidecar) = &mut self.proc else {
            self.answer(id, Err(CommandError::new("the AIL sidecar is not running")));
            return;
        };
        if let Err(e) = sidecar.send(&ToSidecar::new(&session, id, epoch, command)) {
            self.host.warn(format_args!(
                "cannot send {} to the AIL sidecar: {e}",
                command.type_name()
            ));
        }
        self.inflight.insert(id, pending);
    }

    /// Sends the waiting connects, if the sidecar is ready.
    fn flush_waiting(&mut self) {
        while matches!(self.proc, Proc::Ready(_)) {
            let Some((id, command)) = self.waiting.pop_front() else {
                return;
            };
            self.next_epoch += 1;
            let epoch = self.next_epoch;
            self.forward(id, &command, Some(epoch), Pending::Connect { epoch });
        }
    }

    /// Fails every waiting connect with `why`.
    fn fail_waiting(&mut self, why: &str) {
        while let Some((id, _)) = self.waiting.pop_front() {
            self.answer(id, Err(CommandError::new(why)));
        }
    }

    /// Starts E2's probe of `site` on its own thread; it answers through `probe_rx`.
    fn probe(&mut self, id: u64, site: String, cs_proxy: String) {
        if self.probes_in_flight >= probe::MAX_IN_FLIGHT {
            let message = format!(
                "{} probes are still running (each bounded by probe-timeout {})",
                self.probes_in_flight,
                human(self.cfg.probe_timeout)
            );
            self.answer(id, Err(CommandError::new(message)));
            return;
        }
        let job = probe::Probe {
            site,
            cs_proxy,
            command: self.cfg.probe_command.clone(),
            timeout: self.cfg.probe_timeout,
            env: sidecar::inherited_env()
                .into_iter()
                .chain(self.cfg.env.iter().map(|(k, v)| (k.into(), v.into())))
                .collect(),
        };
        let (tx, host) = (self.probe_tx.clone(), self.host.clone());
        let spawned = std::thread::Builder::new()
            .name("ail-bridge-probe".into())
            .spawn(move || {
                let _ = tx.send((id, job.run()));
                host.wake();
            });
        match spawned {
            Ok(_) => self.probes_in_flight += 1,
            Err(e) => self.answer(
                id,
                Err(CommandError::new(format!(
                    "cannot start a probe thread: {e}"
                ))),
            ),
        }
    }

    /// Takes what the sidecar threads reported, and runs due timers.
    fn pump(&mut self, now: u64) {
        while let Ok((id, result)) = self.probe_rx.try_recv() {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
            match &result {
                Ok(Reply::Probed { healthy, detail }) => self.host.debug(format_args!(
                    "probe {id}: {}: {detail}",
                    if *healthy { "healthy" } else { "not healthy" }
                )),
                Ok(_) => {}
                Err(e) => self.host.debug(format_args!("probe {id} failed: {e}")),
            }
            self.answer(id, result);
        }
        while let Ok((generation, msg)) = self.rx.try_recv() {
            if generation != self.generation {
                continue;
            }
            match msg {
                Msg::Line(Line::Hello(hello)) => self.on_hello(now, &hello),
                Msg::Line(Line::Output(output)) => self.on_output(*output),
                Msg::Line(Line::Bad(line)) => self.host.warn(format_args!(
                    "the AIL sidecar wrote a line that is not protocol JSON (ignored): {line}"
                )),
                Msg::Eof => self.on_exit(now),
            }
        }
        match &self.proc {
            Proc::Starting { deadline, .. } if now >= *deadline => {
                if let Proc::Starting { mut sidecar, .. } =
                    std::mem::replace(&mut self.proc, Proc::Stopped)
                {
                    sidecar.stop(Duration::ZERO);
                    sidecar.drain_stderr(STDERR_DRAIN_SHORT);
                    let why = format!(
                        "no handshake within {}{}",
                        human(self.cfg.startup_timeout),
                        sidecar.tail()
                    );
                    self.start_failed(now, &why);
                }
            }
            Proc::Down { at } if now >= *at => self.restart(now),
            _ => {}
        }
    }

    /// Starts a new JVM after a death; its hello comes through the channel.
    fn restart(&mut self, now: u64) {
        self.generation += 1;
        match Sidecar::spawn(&self.cfg, &self.jar, &self.host, &self.tx, self.generation) {
            Ok(sidecar) => {
                self.host.info(format_args!(
                    "restarting the AIL sidecar: pid {}, start {}",
                    sidecar.pid(),
                    sidecar.generation()
                ));
                self.proc = Proc::Starting {
                    sidecar,
                    deadline: now.saturating_add(ns(self.cfg.startup_timeout)),
                };
            }
            Err(e) => self.start_failed(now, &e.to_string()),
        }
    }

    /// A start failed: fail the waiting connects (the host backs off and
    /// retries) and try again later.
    fn start_failed(&mut self, now: u64, why: &str) {
        self.failures += 1;
        let delay = self.cfg.restart_backoff(self.failures);
        self.host.error(format_args!(
            "the AIL sidecar could not be started: {why}; next try in {}",
            human(delay)
        ));
        self.fail_waiting(&format!("the AIL sidecar could not be started: {why}"));
        self.proc = Proc::Down {
            at: now.saturating_add(ns(delay)),
        };
    }

    fn on_hello(&mut self, now: u64, hello: &SidecarHello) {
        let Proc::Starting { mut sidecar, .. } = std::mem::replace(&mut self.proc, Proc::Stopped)
        else {
            self.host
                .warn("the AIL sidecar sent a second handshake (ignored)");
            return;
        };
        match self.check_hello(hello) {
            Ok(()) => {
                self.ready(&sidecar, hello);
                self.proc = Proc::Ready(sidecar);
                self.flush_waiting();
            }
            Err(e) => {
                sidecar.stop(self.cfg.shutdown_grace);
                self.start_failed(now, &e.to_string());
            }
        }
    }

    fn on_output(&mut self, output: Output) {
        match &output {
            Output::Result { id, result, .. } => match self.inflight.remove(id) {
                None => {
                    self.host.warn(format_args!(
                        "the AIL sidecar answered command {id}, which it was not given (ignored)"
                    ));
                    return;
                }
                Some(Pending::Connect { epoch }) => {
                    if let Ok(Reply::Connected { epoch: got }) = result {
                        if *got == epoch {
                            self.connection = Some(epoch);
                            self.failures = 0;
                        } else {
                            self.host.warn(format_args!(
                                "the AIL sidecar connected epoch {got}, asked for {epoch}"
                            ));
                        }
                    }
                }
                Some(_) => {}
            },
            Output::Event { .. } => {}
            _ => return,
        }
        self.out.push_back(output);
    }

    /// The JVM's stdout ended: expected after a shutdown, a crash otherwise.
    fn on_exit(&mut self, now: u64) {
        let (mut sidecar, was_starting) = match std::mem::replace(&mut self.proc, Proc::Stopped) {
            Proc::Ready(s) => (s, false),
            Proc::Starting { sidecar, .. } => (sidecar, true),
            other => {
                self.proc = other;
                return;
            }
        };
        let (status, _) = sidecar.wait_or_kill(Duration::from_secs(1));
        sidecar.drain_stderr(STDERR_DRAIN_SHORT);
        let pid = sidecar.pid();
        let inflight = std::mem::take(&mut self.inflight);
        if self.stopping {
            self.host.info(format_args!(
                "the AIL sidecar (pid {pid}) stopped: {status}"
            ));
            for (id, pending) in inflight {
                let result = match pending {
                    Pending::Shutdown | Pending::KillFactory => Ok(Reply::Done),
                    _ => Err(CommandError::new("the AIL sidecar stopped")),
                };
                self.answer(id, result);
            }
            self.connection = None;
            return;
        }
        if was_starting {
            let why = format!(
                "it exited before its handshake ({status}){}",
                sidecar.tail()
            );
            return self.start_failed(now, &why);
        }
        self.failures += 1;
        let delay = self.cfg.restart_backoff(self.failures);
        self.host.error(format_args!(
            "the AIL sidecar (pid {pid}) died: {status}{}; restarting it in {} (failure {})",
            sidecar.tail(),
            human(delay),
            self.failures
        ));
        for (id, pending) in inflight {
            let result = match pending {
                // The factory died with the JVM: that is what was asked.
                Pending::KillFactory => Ok(Reply::Done),
                _ => Err(CommandError::new(format!(
                    "the AIL sidecar died ({status}) before answering"
                ))),
            };
            self.answer(id, result);
        }
        if let Some(epoch) = self.connection.take() {
            self.out.push_back(Output::Event {
                session: self.session(),
                epoch,
                event: Event::Disconnected,
            });
        }
        self.proc = Proc::Down {
            at: now.saturating_add(ns(delay)),
        };
    }

    /// Runs `relaunch-endpoint` (D4, embedded SIP endpoint); does not wait for it.
    fn relaunch(&self) -> CommandResult {
        let Some((program, args)) = self.cfg.relaunch_endpoint.split_first() else {
            return Err(CommandError::new(
                "no embedded SIP endpoint to relaunch: backend.ail-bridge.relaunch-endpoint is not set",
            ));
        };
        let spawned = std::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(sidecar::inherited_env())
            .envs(&self.cfg.env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                self.host.info(format_args!(
                    "relaunched the SIP endpoint: {program} (pid {})",
                    child.id()
                ));
                // Reap it whenever it ends; the endpoint's re-registration is
                // what the host waits for (EventDNBackInService).
                let _ = std::thread::Builder::new()
                    .name("ail-bridge-relaunch".into())
                    .spawn(move || child.wait());
                Ok(Reply::Done)
            }
            Err(e) => Err(CommandError::new(format!(
                "cannot run relaunch-endpoint {program:?}: {e}"
            ))),
        }
    }
}

impl Backend for AilBridge {
    fn create(config: serde_json::Value, host: HostHandle) -> Result<Self, String> {
        AilBridge::start(config, host).map_err(|e| e.to_string())
    }

    fn handle(&mut self, now_ns: u64, input: Input) -> Result<(), String> {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        if let Some(served) = self.session.as_ref().filter(|s| **s != session) {
            let message = format!(
                "ail-bridge serves one agent session per JVM (AIL's factory is a singleton) and \
                 already serves {served}"
            );
            self.out.push_back(Output::Result {
                session,
                id,
                result: Err(CommandError::new(message)),
            });
            return Ok(());
        }
        self.session = Some(session);
        // A death reported meanwhile changes what can be forwarded.
        self.pump(now_ns);
        match command {
            Command::RelaunchEndpoint => {
                let result = self.relaunch();
                self.answer(id, result);
            }
            Command::Connect { .. } => {
                self.connection = None;
                self.stopping = false;
                if matches!(self.proc, Proc::Stopped) {
                    self.proc = Proc::Down { at: now_ns };
                }
                self.waiting.push_back((id, command));
                self.flush_waiting();
                self.pump(now_ns);
            }
            Command::Shutdown => {
                self.stopping = true;
                self.fail_waiting("the AIL bridge is shutting down");
                if matches!(self.proc, Proc::Ready(_)) {
                    self.forward(id, &command, None, Pending::Shutdown);
                } else {
                    if let Proc::Starting { mut sidecar, .. } =
                        std::mem::replace(&mut self.proc, Proc::Stopped)
                    {
                        sidecar.stop(self.cfg.shutdown_grace);
                    }
                    self.proc = Proc::Stopped;
                    self.answer(id, Ok(Reply::Done));
                }
            }
            Command::KillFactory => {
                self.connection = None;
                if matches!(self.proc, Proc::Ready(_)) {
                    self.forward(id, &command, None, Pending::KillFactory);
                } else {
                    // No JVM, no factory: already done.
                    self.answer(id, Ok(Reply::Done));
                }
            }
            // E2: answered without the sidecar, which holds the current
            // site's connection and must not leave it.
            Command::Probe { site, cs_proxy } => self.probe(id, site, cs_proxy),
            Command::ReadPersonSites { .. }
            | Command::Login { .. }
            | Command::ReadApplication { .. }
            | Command::Subscribe { .. } => {
                if matches!(self.proc, Proc::Ready(_)) {
                    self.forward(id, &command, None, Pending::Other);
                } else {
                    self.answer(
                        id,
                        Err(CommandError::new(
                            "not connected: the AIL sidecar is not running (it is being restarted)",
                        )),
                    );
                }
            }
        }
        Ok(())
    }

    fn poll_output(&mut self, now_ns: u64) -> Option<Output> {
        if self.out.is_empty() {
            self.pump(now_ns);
        }
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        match &self.proc {
            Proc::Starting { deadline, .. } => Some(*deadline),
            Proc::Down { at } => Some(*at),
            Proc::Ready(_) | Proc::Stopped => None,
        }
    }
}

impl Drop for AilBridge {
    fn drop(&mut self) {
        let mut sidecar = match std::mem::replace(&mut self.proc, Proc::Stopped) {
            Proc::Ready(s) | Proc::Starting { sidecar: s, .. } => s,
            Proc::Down { .. } | Proc::Stopped => return,
        };
        let pid = sidecar.pid();
        let (status, killed) = sidecar.stop(self.cfg.shutdown_grace);
        if killed {
            self.host.warn(format_args!(
                "the AIL sidecar (pid {pid}) did not exit within {}; killed ({status})",
                human(self.cfg.shutdown_grace)
            ));
        } else {
            self.host
                .info(format_args!("the AIL sidecar (pid {pid}) exited: {status}"));
        }
    }
}

drctl_plugin_api::export_plugin! {
    backend: AilBridge,
    name: "ail-bridge",
}

#[cfg(test)]
mod tests {
    //! The supervision logic against a fake sidecar (a shell script standing
    //! in for `java`): no JVM needed, so these run without a JDK.

    use super::*;
    use drctl_plugin_api::messages::{Listener, Password};
    use drctl_plugin_api::LogLevel;
    use std::sync::{Arc, Mutex};

    /// A fake sidecar: answers the hello as `hello` (BUILD = the real build
    /// id), connects any epoch, says done to the rest, exits after a
    /// shutdown, and crashes on read_application.
    fn fake(dir: &std::path::Path, hello: &str) -> PathBuf {
        let script = format!(
            r#"read hello
echo '{hello}'
while read line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  epoch=$(printf '%s' "$line" | sed -n 's/.*"epoch":\([0-9]*\).*/\1/p')
  case "$line" in
    *'"type":"connect"'*) echo "{{\"kind\":\"result\",\"session\":\"a\",\"id\":$id,\"result\":{{\"type\":\"connected\",\"epoch\":$epoch}}}}";;
    *'"type":"read_application"'*) echo "ERROR crashing on purpose" >&2; exit 3;;
    *'"type":"shutdown"'*) echo "{{\"kind\":\"result\",\"session\":\"a\",\"id\":$id,\"result\":{{\"type\":\"done\"}}}}"; exit 0;;
    *) echo "{{\"kind\":\"result\",\"session\":\"a\",\"id\":$id,\"result\":{{\"type\":\"done\"}}}}";;
  esac
done
"#
        )
        .replace("BUILD", BUILD_ID);
        let path = dir.join("fake-sidecar.sh");
        std::fs::write(&path, script).unwrap();
        path
    }

    const GOOD_HELLO: &str =
        r#"{"kind":"hello","protocol":1,"build":"BUILD","java":"fake","missing":[]}"#;

    type Logs = Arc<Mutex<Vec<String>>>;

    /// A bridge whose `java` is `/bin/sh script` (never exec'ing a file just
    /// written: no ETXTBSY races with other tests' forks).
    fn bridge(
        script: &std::path::Path,
        extra: serde_json::Value,
    ) -> (Result<AilBridge, BridgeError>, Logs) {
        let logs: Logs = Arc::default();
        let sink = logs.clone();
        let host = HostHandle::local(
            || {},
            move |level: LogLevel, msg: &str| sink.lock().unwrap().push(format!("{level} {msg}")),
        );
        let mut config = serde_json::json!({
            "java": "/bin/sh",
            "jvm-args": [script],
            "restart-delay": "50ms",
            "startup-timeout": "5s",
            "dn": "7001",
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let cfg = BridgeConfig::from_json(config).unwrap();
        (
            AilBridge::with_jar(cfg, PathBuf::from("unused.jar"), host),
            logs,
        )
    }

    fn command(id: u64, command: Command) -> Input {
        Input::Command {
            session: "a".into(),
            id,
            command,
        }
    }

    fn connect() -> Command {
        Command::Connect {
            site: "site1".into(),
            cs_proxy: "127.0.0.1:7000".into(),
            app_name: "AIL_site1".into(),
            username: "u".into(),
            password: Password::new("p"),
            on_demand_loading: false,
        }
    }

    /// Polls until `n` outputs came (or 10 s passed), at host time `now()`.
    fn outputs(b: &mut AilBridge, n: usize, now: impl Fn() -> u64) -> Vec<Output> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            match b.poll_output(now()) {
                Some(o) => got.push(o),
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        got
    }

    #[test]
    fn a_crash_becomes_errors_and_disconnected_then_a_restart_with_new_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let (b, logs) = bridge(&fake(dir.path(), GOOD_HELLO), serde_json::json!({}));
        let mut b = b.unwrap();
        let start = Instant::now();
        let now = || u64::try_from(start.elapsed().as_nanos()).unwrap();
        b.handle(now(), command(1, connect())).unwrap();
        let got = outputs(&mut b, 1, now);
        assert!(
            matches!(
                &got[..],
                [Output::Result {
                    id: 1,
                    result: Ok(Reply::Connected { epoch: 1 }),
                    ..
                }]
            ),
            "{got:?}"
        );
        let read = Command::ReadApplication {
            app_name: "AIL_site1".into(),
        };
        b.handle(now(), command(2, read)).unwrap();
        let got = outputs(&mut b, 2, now);
        match &got[..] {
            [Output::Result {
                id: 2,
                result: Err(e),
                ..
            }, Output::Event {
                epoch: 1,
                event: Event::Disconnected,
                ..
            }] => {
                assert!(e.message.contains("died"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let log = logs.lock().unwrap().join("\n");
        assert!(
            log.contains("died: exit status: 3") && log.contains("crashing on purpose"),
            "{log}"
        );
        assert!(log.contains("restarting it in 50ms"), "{log}");
        // While it restarts, reads fail at once and connects wait.
        let sub = Command::Subscribe {
            epoch: 1,
            listeners: vec![Listener::Dn],
        };
        b.handle(now(), command(3, sub)).unwrap();
        b.handle(now(), command(4, connect())).unwrap();
        let got = outputs(&mut b, 2, now);
        assert!(
            matches!(
                &got[0],
                Output::Result {
                    id: 3,
                    result: Err(_),
                    ..
                }
            ),
            "{got:?}"
        );
        // The restart is due: the new sidecar takes the waiting connect, epoch 2.
        assert!(
            matches!(
                &got[1],
                Output::Result {
                    id: 4,
                    result: Ok(Reply::Connected { epoch: 2 }),
                    ..
                }
            ),
            "{got:?}"
        );
        assert!(logs.lock().unwrap().iter().any(|l| l.contains("start 2")));
        b.handle(now(), command(5, Command::Shutdown)).unwrap();
        let got = outputs(&mut b, 1, now);
        assert!(
            matches!(
                &got[..],
                [Output::Result {
                    id: 5,
                    result: Ok(Reply::Done),
                    ..
                }]
            ),
            "{got:?}"
        );
        // The expected exit after a shutdown is no crash: no restart is due.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(b.poll_output(now()), None);
        assert_eq!(b.poll_timeout(), None);
        drop(b);
        let log = logs.lock().unwrap().join("\n");
        assert_eq!(log.matches("died").count(), 1, "{log}");
    }

    #[test]
    fn kill_factory_and_shutdown_without_a_sidecar_are_done_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (b, _) = bridge(&fake(dir.path(), GOOD_HELLO), serde_json::json!({}));
        let mut b = b.unwrap();
        b.handle(0, command(1, Command::Shutdown)).unwrap();
        let got = outputs(&mut b, 1, || 0);
        assert!(matches!(
            &got[..],
            [Output::Result {
                id: 1,
                result: Ok(Reply::Done),
                ..
            }]
        ));
        std::thread::sleep(Duration::from_millis(50));
        b.handle(0, command(2, Command::KillFactory)).unwrap();
        let got = outputs(&mut b, 1, || 0);
        assert!(
            matches!(
                &got[..],
                [Output::Result {
                    id: 2,
                    result: Ok(Reply::Done),
                    ..
                }]
            ),
            "{got:?}"
        );
        b.handle(0, command(3, Command::RelaunchEndpoint)).unwrap();
        let got = outputs(&mut b, 1, || 0);
        match &got[..] {
            [Output::Result {
                id: 3,
                result: Err(e),
                ..
            }] => {
                assert!(e.message.contains("relaunch-endpoint"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_second_session_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (b, _) = bridge(&fake(dir.path(), GOOD_HELLO), serde_json::json!({}));
        let mut b = b.unwrap();
        b.handle(0, command(1, Command::KillFactory)).unwrap();
        let other = Input::Command {
            session: "b".into(),
            id: 2,
            command: Command::KillFactory,
        };
        b.handle(0, other).unwrap();
        let got = outputs(&mut b, 2, || 0);
        let refused = got.iter().find_map(|o| match o {
            Output::Result {
                session,
                result: Err(e),
                ..
            } if session == "b" => Some(e.message.clone()),
            _ => None,
        });
        assert!(
            refused.is_some_and(|m| m.contains("one agent session")),
            "{got:?}"
        );
    }

    #[test]
    fn handshake_failures_name_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        let error = |hello: &str, extra: serde_json::Value| {
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            bridge(&fake(sub.path(), hello), extra)
                .0
                .unwrap_err()
                .to_string()
        };
        // The bridge's error with `body` as the "JVM".
        let script_error = |name: &str, body: &str, extra: serde_json::Value| {
            let script = dir.path().join(name);
            std::fs::write(&script, body).unwrap();
            bridge(&script, extra).0.unwrap_err().to_string()
        };
        let e = error(
            r#"{"kind":"hello","protocol":2,"build":"other"}"#,
            serde_json::json!({}),
        );
        assert!(
            e.contains("protocol 2 (build other)")
                && e.contains(&format!("protocol 1 (build {BUILD_ID})")),
            "{e}"
        );
        let e = error(
            r#"{"kind":"hello","protocol":1,"build":"BUILD","missing":["com.genesyslab.ail.AilLoader"]}"#,
            serde_json::json!({"classpath": ["/opt/ail/lib/*"]}),
        );
        assert!(
            e.contains("[/opt/ail/lib/*]") && e.contains("com.genesyslab.ail.AilLoader"),
            "{e}"
        );

        let e = error(
            r#"{"kind":"hello","protocol":1,"build":"BUILD","errors":["names.toml: unknown key method.x"]}"#,
            serde_json::json!({}),
        );
        assert!(
            e.contains("refuses backend.ail-bridge: names.toml: unknown key method.x"),
            "{e}"
        );

        let e = script_error(
            "dies.sh",
            "echo 'Error: Could not find or load main class' >&2; exit 1\n",
            serde_json::json!({}),
        );
        assert!(
            e.contains("exited before its handshake (exit status: 1)"),
            "{e}"
        );
        assert!(e.contains("Could not find or load main class"), "{e}");

        // The reason arrives on stderr after stdout ended and the JVM was
        // reaped (a child still holds the pipe): the error waits for it.
        let e = script_error(
            "late.sh",
            "exec >&-\n(sleep 0.3; echo 'Error: late reason' >&2) &\nexit 1\n",
            serde_json::json!({}),
        );
        assert!(
            e.contains("exited before its handshake (exit status: 1)")
                && e.contains("Error: late reason"),
            "{e}"
        );

        // The mute JVM says who it is, then nothing: it is killed (and reaped)
        // at the startup timeout, not waited for.
        let pid_file = dir.path().join("mute.pid");
        let mute = format!("echo $$ > '{}'\nexec sleep 600\n", pid_file.display());
        let e = script_error(
            "mute.sh",
            &mute,
            serde_json::json!({"startup-timeout": "300ms"}),
        );
        assert!(e.contains("no handshake within 300ms"), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
            "the mute JVM (pid {}) was not killed and reaped",
            pid.trim()
        );

        let no_java = serde_json::json!({"java": "/nonexistent/java", "jvm-args": []});
        let e = script_error("mute.sh", &mute, no_java);
        assert!(
            e.starts_with("cannot start the JVM \"/nonexistent/java\""),
            "{e}"
        );
    }
}

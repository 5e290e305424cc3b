//! The control socket of `drctl watch`: a Unix socket (0600, in a 0700
//! directory) speaking newline-delimited JSON, one request a connection.
//!
//! ```json
//! → {"v":1,"request":"status"}
//! ← {"v":1,"ok":true,"status":{...}}
//! → {"v":1,"request":"switch","to":"site2","agent":"ann"}
//! ← {"v":1,"progress":{"t":...,"type":"switchover-started",...}}   (one per decision)
//! ← {"v":1,"ok":true,"switched":{"from":"site1","to":"site2","phases":[...]}}
//! ```
//!
//! A switch with `at_ms` is scheduled (answered at once with `scheduled`);
//! `cancel` cancels it. A switch with `agents`/`wave` is a fleet's wave
//! plan: progress lines are decision records (with `agent`) and the plan's
//! notes (`wave-started`, `wave-verified`), the last line has `wave`.
//! A switch with `drill` (`abort_after_ms`, `lifetime_ms`, `rto_ms`) is a
//! drill the watcher runs to its end: progress lines are the decisions of
//! its switchover and of its return, and the note `drill-return`; the last
//! line has `drill` (the report) and `switched`, `ok` by the verdict, the
//! first failure as `error`. A client that leaves does not stop it.
//!
//! ```json
//! → {"v":1,"request":"switch","to":"site2","reason":"CHG-1","timeout_ms":120000,"drill":{"abort_after_ms":30000}}
//! ← {"v":1,"progress":{"type":"drill-return","why":"--abort-after 30s","to":"site1"}}
//! ← {"v":1,"ok":false,"error":"drill FAIL: ...","switched":{...},"drill":{"verdict":"FAIL",...}}
//! ```
//!
//! A request of another protocol version `v` is answered with an error naming
//! both versions. `agent` (optional) names the agent a request is for; the
//! watcher answers for its only agent without it, and refuses a name it does
//! not run. `status|pause|resume|switch|events` are the clients.
//!
//! ```json
//! → {"v":1,"request":"events","follow":true,"agent":"ann"}
//! ← {"v":1,"event":{"t":...,"agent":"ann","type":"switchover-started",...}}   (one per event)
//! ← {"v":1,"event":{"type":"dropped","count":12}}                           (this client was slow)
//! ← {"v":1,"ok":true}                                                        (the watcher stopped)
//! ```
//!
//! A fleet watcher answers `status` without `agent` with `fleet`: a row per
//! agent and a summary.
//!
//! Limits: a request line is at most [`MAX_REQUEST`] bytes and must arrive
//! within [`REQUEST_TIMEOUT`]; at most [`MAX_CONNECTIONS`] connections are
//! served at once (more are answered "busy" and closed). Clients talk only to
//! a watcher running as themselves or root (checked with `SO_PEERCRED`).

use crate::exit::CliError;
use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, Semaphore};

/// The protocol version this drctl speaks.
pub const VERSION: u32 = 1;

/// The longest request line the watcher reads (requests are a few dozen bytes).
pub const MAX_REQUEST: usize = 64 * 1024;

/// Control connections served at once; more are answered "busy" and closed.
pub const MAX_CONNECTIONS: usize = 16;

/// How long a client has to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request to the watcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// Where the agent is, listeners, timers, alarms, last decisions.
    Status,
    /// E3: hold automatic switchovers, until `drctl resume` or for a while.
    Pause {
        /// Resume by itself after this many seconds (`pause --for`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_s: Option<u64>,
        /// Why (`pause --reason`), shown by `status`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// E3: release them.
    Resume,
    /// A forced switchover, performed by the watcher's own AIL session.
    Switch {
        /// The target; `None` is the other site.
        to: Option<String>,
        /// Gates not to run (`--skip-gate`), recorded as `gate-skipped`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skip_gates: Vec<String>,
        /// Why (`--reason`), recorded in the history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Not now: at this wall-clock time, milliseconds since the Unix
        /// epoch (`--at`); the watcher schedules it and answers at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ms: Option<u64>,
        /// A share of a fleet's agents (`--agents 10%`), moved in waves
        /// (`wave`); `None` with `wave` set: every agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agents: Option<crate::schedule::Share>,
        /// Moves the selected agents in waves of this share (`--wave 10%`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wave: Option<crate::schedule::Share>,
        /// Between two waves, after the previous one is verified (`--wave-interval`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wave_interval_ms: Option<u64>,
        /// How long each switchover may take to verify (`--timeout`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// A drill (`--abort-after`, `--lifetime`, `--rto`, `--report`): the
        /// watcher returns to the origin as asked and ends with the report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drill: Option<DrillAsk>,
    },
    /// Cancels the scheduled switch (`drctl switch --cancel`), or a fleet's
    /// wave plan in progress (its waves not started yet).
    Cancel,
    /// The event stream: the recent events, then (`follow`) every new one
    /// until the watcher stops or the client leaves.
    Events {
        /// Keep streaming (`drctl events --follow`).
        #[serde(default)]
        follow: bool,
    },
}

/// What a drill through the watcher asks beyond the switchover,
/// milliseconds each (each at most [`crate::schedule::MAX_WAVE_WAIT`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillAsk {
    /// `--abort-after`: not verified this long after the trigger, switch back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_after_ms: Option<u64>,
    /// `--lifetime`: return to the origin this long after the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_ms: Option<u64>,
    /// `--rto`: the expected recovery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_ms: Option<u64>,
}

/// A request on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    /// The agent the request is for (`--agent`); `None`: the watcher's only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(flatten)]
    request: Request,
}

/// One line of a reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// The protocol version.
    pub v: u32,
    /// Set on the last line: whether the request succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `status`: the watcher's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::report::StatusReport>,
    /// `switch`: a decision record while the switchover runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
    /// `switch`: the outcome and per-phase timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched: Option<crate::report::SwitchReport>,
    /// `events`: one event (a decision record or a [`crate::events::Marker`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// `status` of a fleet watcher without `agent`: every agent and a summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::report::FleetReport>,
    /// `switch --at`: what was scheduled; `switch --cancel`: what was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<crate::report::ScheduledRow>,
    /// `switch --agents/--wave`: the wave plan as it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<crate::report::WaveReport>,
    /// `switch` as a drill (`--abort-after`, `--lifetime`, `--rto`,
    /// `--report`): the report, with the verdict (`ok` follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Box<crate::drill_report::DrillReport>>,
}

impl Reply {
    /// A last line: success, with nothing else.
    pub fn ok() -> Reply {
        Reply {
            v: VERSION,
            ok: Some(true),
            error: None,
            status: None,
            progress: None,
            switched: None,
            event: None,
            fleet: None,
            scheduled: None,
            wave: None,
            drill: None,
        }
    }

    /// A last line: failure.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            ok: Some(false),
            error: Some(message.into()),
            ..Reply::ok()
        }
    }

    /// An intermediate line.
    pub fn progress(value: serde_json::Value) -> Reply {
        Reply {
            ok: None,
            progress: Some(value),
            ..Reply::ok()
        }
    }

    fn is_last(&self) -> bool {
        self.ok.is_some()
    }
}

/// A request as the host loop receives it, with where to send the reply lines.
#[derive(Debug)]
pub struct Incoming {
    /// What is asked.
    pub request: Request,
    /// For which agent (`None`: the watcher's only one).
    pub agent: Option<String>,
    /// Who asks: the client's uid (`SO_PEERCRED`).
    pub peer_uid: Option<u32>,
    /// Reply lines; the last one has `ok` set.
    pub reply: mpsc::UnboundedSender<Reply>,
}

/// The watcher's socket: `control.socket`, else `<agent>.sock` in
/// [`crate::paths::runtime_dir`] (`$RUNTIME_DIRECTORY` under the shipped
/// unit, `$XDG_RUNTIME_DIR/drctl`, `/run/drctl` for root), else in a private
/// `/tmp/drctl-<uid>/` (a user without a runtime dir: a shell over ssh).
pub fn socket_path(configured: Option<&Path>, agent: &str) -> PathBuf {
    if let Some(p) = configured {
        return p.to_owned();
    }
    let dir = crate::paths::runtime_dir().unwrap_or_else(|| fallback_dir(euid()));
    dir.join(socket_name(agent))
}

/// The socket a client talks to: the watcher's default ([`socket_path`]) if
/// a socket is there, else the first of `/run/drctl/` (the shipped unit's
/// `RuntimeDirectory=`, reached as its user: `sudo -u drctl drctl status`)
/// and `/tmp/drctl-<uid>/` that has one. The peer check still decides
/// whether to trust whoever answers.
pub fn client_socket_path(configured: Option<&Path>, agent: &str) -> PathBuf {
    let own = socket_path(configured, agent);
    if configured.is_some() || is_socket(&own) {
        return own;
    }
    let name = socket_name(agent);
    [
        PathBuf::from(crate::paths::SYSTEM_RUNTIME_DIR),
        fallback_dir(euid()),
    ]
    .into_iter()
    .map(|dir| dir.join(&name))
    .find(|p| is_socket(p))
    .unwrap_or(own)
}

/// The socket a client with `--agent NAME` talks to: `NAME`'s watcher's
/// ([`client_socket_path`]); when none answers there and `control.socket` is
/// not set, the one watcher running here (a fleet watcher runs `NAME` among
/// others on its own socket, and refuses a name it does not run).
pub fn agent_socket_path(configured: Option<&Path>, agent: &str) -> PathBuf {
    let own = client_socket_path(configured, agent);
    if configured.is_some() || is_socket(&own) {
        return own;
    }
    match running_watchers().as_slice() {
        [(_, only)] => only.clone(),
        _ => own,
    }
}

/// Whether `path` is a socket (not following a symlink).
fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The private directory of a user without a runtime dir.
fn fallback_dir(uid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("drctl-{uid}"))
}

/// `<agent>.sock`, with anything but letters, digits, `-`, `_` and `.` as `_`.
fn socket_name(agent: &str) -> String {
    format!("{}.sock", crate::paths::file_safe(agent))
}

/// How many entries of the socket directory [`running_watchers`] looks at.
const MAX_SCAN: usize = 4096;

/// The watchers answering where a client without `control.socket` looks
/// ([`client_socket_path`]'s directories: this user's default, then
/// `/run/drctl/`, then `/tmp/drctl-<uid>/`), as `(agent, socket)` by agent
/// name, an agent found twice kept where it is found first. A socket nobody
/// answers on (a dead watcher's) is left out; whose each one is gets checked
/// when a request is sent ([`request`]).
pub fn running_watchers() -> Vec<(String, PathBuf)> {
    use std::os::unix::fs::FileTypeExt;
    let own = socket_path(None, "agent");
    let dirs = [
        own.parent().map(Path::to_path_buf),
        Some(PathBuf::from(crate::paths::SYSTEM_RUNTIME_DIR)),
        Some(fallback_dir(euid())),
    ];
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs.into_iter().flatten() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries
            .take(MAX_SCAN)
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        {
            let Some(agent) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            // A watcher that connected and left without a word: no request reaches it.
            if found.iter().any(|(a, _)| *a == agent) || StdUnixStream::connect(&path).is_err() {
                continue;
            }
            found.push((agent, path));
        }
    }
    found.sort();
    found
}

/// The watcher's end: a bound socket, removed again when dropped.
pub struct Server {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    /// The event stream `events` requests read (answered here, not by the loop).
    events: Option<Arc<crate::events::Hub>>,
}

impl Server {
    /// Binds `path`: makes its directory (0700) or checks the one there (never
    /// through a symlink), replaces a stale socket left by a dead watcher,
    /// refuses when a live watcher answers there or the path is not a socket.
    pub fn bind(path: &Path, agent: &str) -> anyhow::Result<Server> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => replace_stale(path, agent)?,
            // Whatever else is there (a file, a symlink) is the user's: never deleted.
            Ok(meta) => {
                return Err(anyhow!(
                    "control.socket {} exists and is not a socket (it is {}); drctl does not \
                     delete it: set control.socket to another path",
                    path.display(),
                    file_kind(&meta)
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("control socket {}: {e}", path.display())),
        }
        // Bound before the runtime starts, so a second watcher refuses before connecting anywhere.
        let listener = std::os::unix::net::UnixListener::bind(path)
            .with_context(|| format!("control socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
        Ok(Server {
            listener,
            path: path.to_owned(),
            events: None,
        })
    }

    /// Serves `events` requests from `hub`.
    pub fn with_events(mut self, hub: Arc<crate::events::Hub>) -> Server {
        self.events = Some(hub);
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until dropped; each request goes to `inbox`.
    pub async fn serve(&self, inbox: mpsc::UnboundedSender<Incoming>) {
        let listener = match self.listener.try_clone().and_then(UnixListener::from_std) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(
                    "control socket {}: {e}; no control requests will be answered",
                    self.path.display()
                );
                return;
            }
        };
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                busy(stream);
                continue;
            };
            let inbox = inbox.clone();
            let events = self.events.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = connection(stream, inbox, events).await {
                    tracing::debug!("control connection: {e}");
                }
            });
        }
    }
}

/// The socket at `path` is a socket: a live watcher's (refused) or a dead one's (removed).
fn replace_stale(path: &Path, agent: &str) -> anyhow::Result<()> {
    if StdUnixStream::connect(path).is_ok() {
        return Err(anyhow!(
            "another drctl watch is running for agent {agent}: its control socket {} \
             answers (use drctl status; stop that watcher first)",
            path.display()
        ));
    }
    tracing::warn!(
        "replacing the stale control socket {} (its watcher is gone)",
        path.display()
    );
    std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))
}

/// What a non-socket at the socket's path is, for the refusal.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a socket"
    }
}

/// The socket's directory must be a real directory only we can write: in
/// someone else's (one another user made in /tmp first), or through a
/// symlink they planted, the socket could be swapped or read under us. The
/// directory drctl makes is 0700; an existing one may be readable by others
/// (the socket itself is 0600, so they still cannot connect), never writable.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| {
                format!(
                    "control socket directory {} (set control.socket to a writable path)",
                    parent.display()
                )
            })?;
    }
    // mkdir never follows a symlink in its last component (an existing one is
    // "already exists", then refused by the lstat below).
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(anyhow!(
                "control socket directory {}: {e} (set control.socket to a writable path)",
                dir.display()
            ))
        }
    }
    verify_private_dir(dir)
}

/// The checks of [`private_dir`] on a directory that exists: a real
/// directory (not a symlink), ours, writable by us only.
fn verify_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Err(anyhow!(
            "control socket directory {} is a symbolic link (to {}): refused, another user may \
             have planted it (remove it with: rm {}, or set control.socket to a directory of \
             your own)",
            dir.display(),
            std::fs::read_link(dir)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".to_owned()),
            dir.display()
        ));
    }
    if !meta.is_dir() {
        return Err(anyhow!(
            "control socket directory {} is not a directory (set control.socket to a path in a \
             directory of your own)",
            dir.display()
        ));
    }
    let me = euid();
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(anyhow!(
            "control socket directory {} must belong to you (uid {me}) and be writable by you \
             only; it has {} and mode {:o} (fix it with: chmod 700 {}, or remove it if it is \
             not yours, or set control.socket)",
            dir.display(),
            owner(meta.uid()),
            meta.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// What `drctl watch` would refuse about the control socket `path` before
/// connecting anywhere ([`Server::bind`]), checked without creating or
/// binding anything: its directory (an existing one must be private; a
/// missing one must be creatable) and what is at the path. `Ok(Some(note))`
/// when a watcher already answers there (a second one would be refused).
pub fn check_socket(path: &Path) -> anyhow::Result<Option<String>> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if std::fs::symlink_metadata(dir).is_ok() {
            verify_private_dir(dir)?;
        } else {
            // The nearest directory that exists is where drctl would create it.
            let existing = dir
                .ancestors()
                .find(|a| a.exists())
                .unwrap_or(Path::new("/"));
            if !writable(existing) {
                return Err(anyhow!(
                    "control socket directory {} does not exist and cannot be created: {} is \
                     not writable by you (set control.socket to a writable path)",
                    dir.display(),
                    existing.display()
                ));
            }
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            Ok(StdUnixStream::connect(path).is_ok().then(|| {
                format!(
                    "a drctl watch already answers on {} (a second one for this agent would be refused)",
                    path.display()
                )
            }))
        }
        Ok(meta) => Err(anyhow!(
            "control.socket {} exists and is not a socket (it is {}); drctl does not delete \
             it: set control.socket to another path",
            path.display(),
            file_kind(&meta)
        )),
        Err(_) => Ok(None),
    }
}

/// Whether this process may create entries in `dir` (`access(W_OK|X_OK)`).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Answers a connection over the limit with "busy" and closes it, without
/// waiting: the line fits an empty socket buffer, and a client that reads
/// nothing just sees the close.
fn busy(stream: tokio::net::UnixStream) {
    tracing::debug!("control socket: {MAX_CONNECTIONS} connections open; one refused");
    let reply = Reply::error(format!(
        "the watcher is busy: {MAX_CONNECTIONS} control connections are open (the limit); try again"
    ));
    if let Ok(mut line) = serde_json::to_vec(&reply) {
        line.push(b'\n');
        let _ = stream.try_write(&line);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection: read one request (bounded in size and time), forward it,
/// write the reply lines.
async fn connection(
    stream: tokio::net::UnixStream,
    inbox: mpsc::UnboundedSender<Incoming>,
    events: Option<Arc<crate::events::Hub>>,
) -> std::io::Result<()> {
    let peer_uid = stream.peer_cred().ok().map(|c| c.uid());
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    // One byte past the limit is enough to tell an overlong request.
    let limit = u64::try_from(MAX_REQUEST)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut reader = tokio::io::BufReader::new(read.take(limit));
    match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
        // Connected and left without a word (switch probes for a watcher so).
        Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            let why = format!(
                "no request line within {} (the control request timeout)",
                humantime::format_duration(REQUEST_TIMEOUT)
            );
            return send(&mut write, &Reply::error(why)).await;
        }
    }
    if line.len() > MAX_REQUEST {
        // Closed right after the refusal: the rest of the line is never read.
        let why = format!(
            "request line longer than {MAX_REQUEST} bytes (the control request limit): refused"
        );
        return send(&mut write, &Reply::error(why)).await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let parsed = std::str::from_utf8(&line)
        .map_err(|e| format!("not a JSON request: {e}"))
        .and_then(parse_request);
    match parsed {
        Ok(Envelope {
            agent,
            request: Request::Events { follow },
            ..
        }) => {
            // Streamed from the hub by this task: the loop never waits on a client.
            let Some(hub) = events else {
                let why = "this watcher does not stream events (a drctl without them, or no live session)";
                return send(&mut write, &Reply::error(why)).await;
            };
            return stream_events(reader, write, &hub, agent.as_deref(), follow).await;
        }
        Ok(Envelope { agent, request, .. }) => {
            let incoming = Incoming {
                request,
                agent,
                peer_uid,
                reply: tx,
            };
            if inbox.send(incoming).is_err() {
                send(&mut write, &Reply::error("the watcher is stopping")).await?;
                return Ok(());
            }
        }
        Err(message) => {
            send(&mut write, &Reply::error(message)).await?;
            return Ok(());
        }
    }
    while let Some(reply) = rx.recv().await {
        let last = reply.is_last();
        send(&mut write, &reply).await?;
        if last {
            break;
        }
    }
    Ok(())
}

/// Answers an `events` request: the recent events, then (`follow`) each new
/// one, until the watcher stops (a last `ok` line) or the client leaves.
async fn stream_events<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    mut write: tokio::net::unix::OwnedWriteHalf,
    hub: &crate::events::Hub,
    agent: Option<&str>,
    follow: bool,
) -> std::io::Result<()> {
    use crate::events::Next;
    let sub = match hub.subscribe(agent, true) {
        Ok(sub) => sub,
        Err(e) => return send(&mut write, &Reply::error(e.to_string())).await,
    };
    let mut scratch = [0u8; 256];
    loop {
        let next = if follow {
            tokio::select! {
                next = sub.next() => next,
                // The client left (or wrote something, which is ignored).
                read = reader.read(&mut scratch) => match read {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(_) => continue,
                },
            }
        } else {
            sub.try_next().unwrap_or(Next::End)
        };
        let Some(json) = next.json() else {
            return send(&mut write, &Reply::ok()).await;
        };
        // The event is a JSON object already: put it in the envelope as it is.
        let line = format!("{{\"v\":{VERSION},\"event\":{json}}}\n");
        write.write_all(line.as_bytes()).await?;
    }
}

fn parse_request(line: &str) -> Result<Envelope, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON request: {e}"))?;
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "control protocol version {v} is not spoken here: this watcher (drctl {}) speaks version {VERSION}",
                env!("CARGO_PKG_VERSION")
            ))
        }
        None => return Err("missing \"v\" (the control protocol version)".to_owned()),
    }
    serde_json::from_value::<Envelope>(value).map_err(|e| format!("bad request: {e}"))
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::from)?;
    line.push(b'\n');
    w.write_all(&line).await
}

/// The longest reply line a client reads (a status is a few KiB).
const MAX_REPLY: usize = 1024 * 1024;

/// Why a client could not get an answer from the watcher.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the socket.
    #[error("no drctl watch answers on {} ({source}); is one running for this agent?", path.display())]
    NotRunning {
        /// The control socket.
        path: PathBuf,
        /// Why the connect failed.
        source: std::io::Error,
    },
    /// The socket is served by a process of another user.
    #[error(
        "refusing the control socket {}: it is served by {owner}, not by you (uid {me}) or root; \
         another user may have planted it. Nothing was sent. Remove it (as root or its owner) or \
         set control.socket or XDG_RUNTIME_DIR to a directory of your own; a watcher that runs \
         as another user is reached as that user (sudo -u USER drctl ...)",
        path.display()
    )]
    Untrusted {
        /// The control socket.
        path: PathBuf,
        /// The serving process's user, e.g. `uid 998 (nobody)`.
        owner: String,
        /// The caller's effective uid.
        me: u32,
    },
    /// Talking to the watcher failed midway.
    #[error("control socket {}: {what}: {source}", path.display())]
    Io {
        /// The control socket.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The watcher said nothing in time.
    #[error("the watcher did not answer within {timeout}: {source}")]
    Timeout {
        /// The client's timeout.
        timeout: String,
        /// The read error.
        source: std::io::Error,
    },
    /// The watcher hung up before its last line.
    #[error("the watcher closed the connection without an answer")]
    Closed,
    /// A reply line that is no reply.
    #[error("unreadable reply from the watcher: {line}")]
    Unreadable {
        /// The line, cut at 200 characters.
        line: String,
    },
}

impl From<ClientError> for CliError {
    /// A socket of another user is bad input (exit 2: the path must be fixed,
    /// a retry will not help, as for the watcher refusing that directory);
    /// everything else a failed operation (exit 1).
    fn from(e: ClientError) -> CliError {
        match e {
            ClientError::Untrusted { .. } => CliError::bad_input(e),
            _ => CliError::failed(e),
        }
    }
}

/// The client's end: checks that the watcher at `path` runs as us or root,
/// sends `request` (for `agent`, if named) and calls `on_line` for every
/// reply line until the last, which it returns.
pub fn request(
    path: &Path,
    agent: Option<&str>,
    request: &Request,
    timeout: Duration,
    on_line: impl FnMut(&Reply),
) -> Result<Reply, ClientError> {
    exchange(path, agent, request, Some(timeout), on_line)
}

/// [`request`] without a timeout between lines: a stream that may be quiet
/// for hours (`drctl events --follow`).
pub fn stream(
    path: &Path,
    agent: Option<&str>,
    request: &Request,
    on_line: impl FnMut(&Reply),
) -> Result<Reply, ClientError> {
    exchange(path, agent, request, None, on_line)
}

fn exchange(
    path: &Path,
    agent: Option<&str>,
    request: &Request,
    timeout: Option<Duration>,
    mut on_line: impl FnMut(&Reply),
) -> Result<Reply, ClientError> {
    let io = |what| {
        move |source| ClientError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let stream = StdUnixStream::connect(path).map_err(|source| ClientError::NotRunning {
        path: path.to_owned(),
        source,
    })?;
    // Before anything is sent: a fake watcher of another user learns nothing
    // and cannot answer for the real one.
    let peer = peer_uid(&stream).map_err(io("reading the peer's credentials"))?;
    let me = euid();
    if peer != me && peer != 0 {
        return Err(ClientError::Untrusted {
            path: path.to_owned(),
            owner: owner(peer),
            me,
        });
    }
    stream
        .set_read_timeout(timeout)
        .map_err(io("setting the timeout"))?;
    let mut line = serde_json::to_vec(&Envelope {
        v: VERSION,
        agent: agent.map(str::to_owned),
        request: request.clone(),
    })
    .map_err(|e| io("encoding the request")(e.into()))?;
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(io("sending the request"))?;
    let limit = u64::try_from(MAX_REPLY).unwrap_or(u64::MAX);
    let mut reader = BufReader::new(&stream);
    loop {
        let mut text = Vec::new();
        let n = std::io::Read::take(&mut reader, limit)
            .read_until(b'\n', &mut text)
            .map_err(|source| ClientError::Timeout {
                timeout: timeout.map_or_else(
                    || "no timeout".to_owned(),
                    |t| humantime::format_duration(t).to_string(),
                ),
                source,
            })?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        let reply: Reply = serde_json::from_slice(&text).map_err(|_| ClientError::Unreadable {
            line: String::from_utf8_lossy(&text).chars().take(200).collect(),
        })?;
        if reply.is_last() {
            return Ok(reply);
        }
        on_line(&reply);
    }
}

/// The effective uid of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of `stream` (as of its connect or listen).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid(stream: &StdUnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(std::io::Error::other)?;
    // SAFETY: `cred` and `len` are valid for writes of `len` bytes; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The uid of the process at the other end of `stream`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid(stream: &StdUnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: `uid` and `gid` are valid for writes; the fd is open.
    if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(uid)
}

/// `uid N (name)`, or `uid N` for a uid without a passwd entry.
pub fn owner(uid: u32) -> String {
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given; getpwuid_r writes
    // the entry into `pwd` and its strings into `buf`, and sets `result`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            pwd.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: on success `result` points at `pwd`, whose `pw_name` is a
    // NUL-terminated string inside `buf`, alive until the end of this function.
    let name = unsafe { std::ffi::CStr::from_ptr((*result).pw_name) };
    format!("uid {uid} ({})", name.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_served_by_us_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let server = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let client = StdUnixStream::connect(&path).unwrap();
        drop(server);
        assert_eq!(peer_uid(&client).unwrap(), euid());
    }

    /// A watcher's control socket in a fresh private dir, served with an
    /// inbox nobody answers; returns the path and the inbox (kept alive).
    fn serving(dir: &Path) -> (PathBuf, mpsc::UnboundedReceiver<Incoming>) {
        let path = dir.join("run").join("ctl.sock");
        let server = Server::bind(&path, "agent").unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move { server.serve(tx).await });
        (path, rx)
    }

    async fn reply_line(stream: tokio::net::UnixStream) -> String {
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stream);
        let read = reader.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("a reply line")
            .unwrap();
        line
    }

    #[tokio::test]
    async fn an_overlong_request_line_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _inbox) = serving(dir.path());
        let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
        // Exactly one byte over: the watcher stops reading there.
        s.write_all(&vec![b'x'; MAX_REQUEST + 1]).await.unwrap();
        let line = reply_line(s).await;
        assert!(
            line.contains("request line longer than 65536 bytes (the control request limit)"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_told_busy() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut inbox) = serving(dir.path());
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
            s.write_all(b"{\"v\":1,\"request\":\"status\"}\n")
                .await
                .unwrap();
            // Received by the "host", never answered: the connection stays open.
            held.push((s, inbox.recv().await.unwrap()));
        }
        let s = tokio::net::UnixStream::connect(&path).await.unwrap();
        let line = reply_line(s).await;
        assert!(
            line.contains("busy: 16 control connections are open"),
            "{line}"
        );
        drop(held);
    }

    #[test]
    fn the_owner_is_named() {
        assert!(owner(0).starts_with("uid 0"));
        assert_eq!(owner(4_000_000_000), "uid 4000000000");
    }
}

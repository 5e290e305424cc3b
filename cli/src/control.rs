//! The control socket of `drctl watch`: a Unix socket (0600, in a 0700
//! directory) speaking newline-delimited JSON, one request a connection.
//!
//! ```json
//! → {"v":1,"request":"status"}
//! ← {"v":1,"ok":true,"status":{...}}
//! → {"v":1,"request":"switch","to":"site2"}
//! ← {"v":1,"progress":{"t":...,"type":"switchover-started",...}}   (one per decision)
//! ← {"v":1,"ok":true,"switched":{"from":"site1","to":"site2","phases":[...]}}
//! ```
//!
//! A request of another protocol version `v` is answered with an error naming
//! both versions. `status|pause|resume|switch` are the clients.

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// The protocol version this drctl speaks.
pub const VERSION: u32 = 1;

/// A request to the watcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// Where the agent is, listeners, timers, alarms, last decisions.
    Status,
    /// E3: hold automatic switchovers.
    Pause,
    /// E3: release them.
    Resume,
    /// A forced switchover, performed by the watcher's own AIL session.
    Switch {
        /// The target; `None` is the other site.
        to: Option<String>,
    },
}

/// A request on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
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
    pub status: Option<serde_json::Value>,
    /// `switch`: a decision record while the switchover runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
    /// `switch`: the outcome and per-phase timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched: Option<serde_json::Value>,
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
    /// Reply lines; the last one has `ok` set.
    pub reply: mpsc::UnboundedSender<Reply>,
}

/// The default socket: `$XDG_RUNTIME_DIR/drctl/<agent>.sock`, else `/run/drctl/<agent>.sock`.
pub fn socket_path(configured: Option<&Path>, agent: &str) -> PathBuf {
    if let Some(p) = configured {
        return p.to_owned();
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty() && Path::new(d).is_absolute())
    {
        Some(runtime) => PathBuf::from(runtime).join("drctl"),
        // systemd's RuntimeDirectory for the service; a user without a
        // runtime dir (a shell over ssh) gets a private one in /tmp.
        None if uid == 0 => PathBuf::from("/run/drctl"),
        None => std::env::temp_dir().join(format!("drctl-{uid}")),
    };
    let agent: String = agent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{agent}.sock"))
}

/// The watcher's end: a bound socket, removed again when dropped.
pub struct Server {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl Server {
    /// Binds `path`: makes its directory (0700), replaces a stale socket left
    /// by a dead watcher, refuses when a live watcher answers there.
    pub fn bind(path: &Path, agent: &str) -> anyhow::Result<Server> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| {
                        format!(
                            "control socket directory {} (set control.socket to a writable path)",
                            dir.display()
                        )
                    })?;
            }
            private_dir(dir)?;
        }
        if path.exists() {
            match StdUnixStream::connect(path) {
                Ok(_) => {
                    return Err(anyhow!(
                        "another drctl watch is running for agent {agent}: its control socket {} \
                         answers (use drctl status; stop that watcher first)",
                        path.display()
                    ))
                }
                Err(_) => {
                    tracing::warn!(
                        "replacing the stale control socket {} (its watcher is gone)",
                        path.display()
                    );
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing stale socket {}", path.display()))?;
                }
            }
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
        })
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
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let inbox = inbox.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, inbox).await {
                    tracing::debug!("control connection: {e}");
                }
            });
        }
    }
}

/// The socket's directory must be one only we can write: in someone else's
/// (a directory another user made in /tmp first) the socket could be swapped
/// under us. The directories drctl makes are 0700.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(anyhow!(
            "control socket directory {} must belong to you (uid {me}) and be writable by you only; \
             it has uid {} and mode {:o} (fix it with: chmod 700 {}, or set control.socket)",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection: read one request, forward it, write the reply lines.
async fn connection(
    stream: tokio::net::UnixStream,
    inbox: mpsc::UnboundedSender<Incoming>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read);
    // A request is one short line; a client that sends nothing is dropped.
    match tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return Ok(()),
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    match parse_request(&line) {
        Ok(request) => {
            if inbox.send(Incoming { request, reply: tx }).is_err() {
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

fn parse_request(line: &str) -> Result<Request, String> {
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
    serde_json::from_value::<Envelope>(value)
        .map(|e| e.request)
        .map_err(|e| format!("bad request: {e}"))
}

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::from)?;
    line.push(b'\n');
    w.write_all(&line).await
}

/// The client's end: sends `request` to the watcher at `path` and calls
/// `on_line` for every reply line until the last, which it returns.
pub fn request(
    path: &Path,
    request: &Request,
    timeout: Duration,
    mut on_line: impl FnMut(&Reply),
) -> anyhow::Result<Reply> {
    let stream = StdUnixStream::connect(path).map_err(|e| {
        anyhow!(
            "no drctl watch answers on {} ({e}); is one running for this agent?",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(&Envelope {
        v: VERSION,
        request: request.clone(),
    })?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut reader = BufReader::new(&stream);
    loop {
        let mut text = String::new();
        let n = reader.read_line(&mut text).map_err(|e| {
            anyhow!(
                "the watcher did not answer within {}: {e}",
                humantime::format_duration(timeout)
            )
        })?;
        if n == 0 {
            return Err(anyhow!(
                "the watcher closed the connection without an answer"
            ));
        }
        let reply: Reply = serde_json::from_str(&text)
            .with_context(|| format!("unreadable reply from the watcher: {}", text.trim()))?;
        if reply.is_last() {
            return Ok(reply);
        }
        on_line(&reply);
    }
}

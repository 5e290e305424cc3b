//! Exec sinks: one run of the command per notification, with least
//! privilege. The command gets a cleared environment (a short allow-list of
//! drctl's, the sink's `env`, the `DRCTL_*` event variables: never the
//! agent's password nor anything else of drctl's), stdin from /dev/null, and
//! its stdout/stderr in drctl's log (never drctl's stdout, which may be
//! `--output json`), bounded. Each run is a process group of its own, killed
//! whole at the timeout, when the command exits, and at shutdown, so that no
//! grandchild outlives its run.

use super::Notification;
use anyhow::Context;
use drctl_config::SinkConfig;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Variables of drctl's environment an exec sink's command keeps (also every
/// `LC_*`); all others are cleared.
pub const INHERITED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"];

/// Bytes of a run's stdout, and as many of its stderr, that go to the log;
/// the rest is read and dropped (so a chatty command never blocks on a pipe).
pub const CAPTURE_LIMIT: usize = 4096;

/// After SIGTERM at the timeout, how long the run's group gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);

/// After the run's group is killed, how long its output may take to reach EOF
/// (a process that left the group could keep the pipe open forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// One exec sink.
pub(super) struct Exec {
    command: Vec<String>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

/// The program `command` runs, found as its runs will find it (a name
/// without `/` on the `PATH` it gets: the sink's `env` one, else drctl's),
/// or why it cannot run: missing, not a regular file, not executable by us.
pub fn runnable(
    command: &[String],
    env: &BTreeMap<String, String>,
) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let program = command
        .first()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| anyhow::anyhow!("empty command"))?;
    let executable = |p: &std::path::Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        if executable(&p) {
            return Ok(p);
        }
        let why = match std::fs::metadata(&p) {
            Err(e) => e.to_string(),
            Ok(m) if !m.is_file() => "not a regular file".to_owned(),
            Ok(_) => "not executable by drctl's user (chmod +x?)".to_owned(),
        };
        anyhow::bail!("command {program}: {why}");
    }
    let path = env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "command {program}: not found as an executable on PATH ({path}); give its full path"
            )
        })
}

/// What the log gets of one output stream.
#[derive(Default)]
pub(crate) struct Captured {
    /// The first [`CAPTURE_LIMIT`] bytes.
    pub bytes: Vec<u8>,
    /// Bytes read beyond [`CAPTURE_LIMIT`] and dropped.
    pub dropped: u64,
}

impl Exec {
    /// The sink's command, environment and timeout; refused when its program
    /// cannot run ([`runnable`]).
    pub(super) fn new(sink: &SinkConfig) -> anyhow::Result<Exec> {
        runnable(&sink.command, &sink.env)?;
        Ok(Exec {
            command: sink.command.clone(),
            env: sink.env.clone(),
            timeout: sink.timeout,
        })
    }

    /// Runs the command once for `n`; `name` names the sink in the log.
    pub(super) async fn deliver(&self, n: &Notification, name: &str) -> anyhow::Result<()> {
        let env = self
            .env
            .clone()
            .into_iter()
            .chain(n.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        let ran = run_bounded(&self.command, env, self.timeout).await?;
        let failed = ran.result.is_err();
        log_output(name, "stdout", &ran.stdout, failed);
        log_output(name, "stderr", &ran.stderr, failed);
        ran.result.map_err(|why| anyhow::anyhow!(why))
    }
}

/// One bounded run of a command ([`run_bounded`]): how it ended and the
/// first [`CAPTURE_LIMIT`] bytes of each output stream.
pub(crate) struct BoundedRun {
    /// `Err`: why it failed (`exited with exit status: 1`, `killed after 10s`).
    pub result: Result<(), String>,
    /// Its stdout.
    pub stdout: Captured,
    /// Its stderr.
    pub stderr: Captured,
}

/// Runs `command` (no shell) once with least privilege: a cleared
/// environment (the allow-list of drctl's, then `env`), stdin from
/// /dev/null, its output captured (bounded), in a process group of its own
/// that is killed whole at `timeout` (SIGTERM, then SIGKILL), when it exits
/// and if the run is abandoned. Shared by exec sinks and exec gates.
pub(crate) async fn run_bounded(
    command: &[String],
    env: impl IntoIterator<Item = (String, String)>,
    timeout: Duration,
) -> anyhow::Result<BoundedRun> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("empty command"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(inherited_env())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut group = Group::of(&child);
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());

    let result = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status.context("waiting for the command")?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}"))
            }
        }
        Err(_) => {
            group.signal(libc::SIGTERM);
            let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
            group.signal(libc::SIGKILL);
            let _ = child.wait().await;
            Err(format!(
                "killed after {}",
                humantime::format_duration(timeout)
            ))
        }
    };
    // Whatever the command left running in its group goes with it.
    group.kill_now();
    Ok(BoundedRun {
        result,
        stdout: stdout.finish().await,
        stderr: stderr.finish().await,
    })
}

/// The allow-listed part of drctl's own environment.
fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok()?;
        let keep = INHERITED_ENV.contains(&k.as_str()) || k.starts_with("LC_");
        Some((k, v.into_string().ok()?)).filter(|_| keep)
    })
}

/// A run's process group: killed (SIGKILL) when dropped, unless already
/// killed once the run ended, so an abandoned run (shutdown) leaves nothing.
struct Group {
    /// The group's id (the command's pid); `None` once killed for good.
    pgid: Option<libc::pid_t>,
}

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        Group {
            pgid: child.id().and_then(|id| libc::pid_t::try_from(id).ok()),
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg has no memory effects; a group already gone is ESRCH.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    }

    /// SIGKILL to the group, once: after this the id is forgotten (it could
    /// be reused once the group is empty).
    fn kill_now(&mut self) {
        self.signal(libc::SIGKILL);
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// A stream being read into a bounded buffer by a task of its own.
struct Capture {
    got: Arc<Mutex<Captured>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Starts reading `stream` (if any) up to [`CAPTURE_LIMIT`] bytes.
fn capture<R: AsyncRead + Unpin + Send + 'static>(stream: Option<R>) -> Capture {
    let got = Arc::new(Mutex::new(Captured::default()));
    let task = stream.map(|mut stream| {
        let got = got.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                let Ok(mut kept) = got.lock() else { return };
                let keep = n.min(CAPTURE_LIMIT.saturating_sub(kept.bytes.len()));
                kept.bytes.extend_from_slice(&buf[..keep]);
                kept.dropped += (n - keep) as u64;
            }
        })
    });
    Capture { got, task }
}

impl Capture {
    /// What was read, once the stream ends or [`OUTPUT_GRACE`] has passed.
    async fn finish(mut self) -> Captured {
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(OUTPUT_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
        self.got
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

/// One log line per line of output: `info`, or `warn` when the run failed
/// (then the output is likely the why).
fn log_output(name: &str, stream: &str, c: &Captured, failed: bool) {
    let text = String::from_utf8_lossy(&c.bytes);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // Control characters (terminal escapes) are shown, not obeyed.
        let mut shown = String::with_capacity(line.len());
        for ch in line.chars() {
            if ch.is_control() && ch != '\t' {
                shown.extend(ch.escape_default());
            } else {
                shown.push(ch);
            }
        }
        let line = shown;
        if failed {
            tracing::warn!("alarm sink {name}: {stream}: {line}");
        } else {
            tracing::info!("alarm sink {name}: {stream}: {line}");
        }
    }
    if c.dropped > 0 {
        tracing::warn!(
            "alarm sink {name}: {stream}: {} more byte(s) not logged (limit {CAPTURE_LIMIT})",
            c.dropped
        );
    }
}

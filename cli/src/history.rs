//! The host's history: every decision of every watcher and drill, appended
//! to one audit log (JSON Lines, `history.jsonl` in the state directory),
//! read back by `drctl history` as `patronictl history` reads Patroni's.
//!
//! Each line is a decision record (SPEC §6: `type` and its fields) with who
//! and why: the wall-clock `time`, the session's `t`, the `agent`, the
//! `command` that ran (`watch`, `startup`, `switch`), its `pid`, the `uid`
//! and `user` it ran as, the operator's `operator_reason` (`--reason`), the
//! `drctl` version and a hash of the effective `config`.
//!
//! Several processes append to one file: each line is one `write(2)` on an
//! `O_APPEND` descriptor, under an exclusive `flock` of `history.lock`
//! beside it (which also serialises rotation). Every line is written before
//! the loop goes on, so a `SIGKILL` right after a switchover keeps it. Lines
//! of switchovers and operator plans are also fsynced, against a power cut,
//! by a thread of their own: a slow disk must delay neither the switchover's
//! commands nor the next timer (SPEC §8), and the process waits for those
//! syncs before it exits. A line cut by a crash is skipped by the
//! reader with a warning. Rotation renames the log to `.1` (`.1` to `.2`, …)
//! before it would grow past `history.max-bytes`; `history.keep` files are kept.

use crate::host::observe::Observer;
use crate::paths;
use drctl_config::HistoryConfig;
use drctl_policy::{Decision, Timestamp};
use serde::Serialize;
use sha2::Digest;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The longest history line read back (decision records are a few hundred bytes).
pub const MAX_LINE: usize = 64 * 1024;

/// The history file `cfg` names, or the default in the state directory.
pub fn path(cfg: &HistoryConfig) -> Option<PathBuf> {
    cfg.file
        .clone()
        .or_else(|| paths::state_dir().map(|d| d.join("history.jsonl")))
}

/// A short, stable hash of the effective config (secrets redacted): two
/// lines with the same hash ran with the same settings.
pub fn config_hash(recordable: &serde_json::Value) -> String {
    let digest = sha2::Sha256::digest(recordable.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Who ran what, the same on every line a process writes.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// The subcommand: `watch`, `startup`, `switch`.
    pub command: String,
    /// The process.
    pub pid: u32,
    /// The user it runs as.
    pub uid: u32,
    /// That user's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Why the operator ran it (`--reason`); not `reason`, which is the
    /// switchover's own (`telephony-timeout`, …).
    #[serde(rename = "operator_reason", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// This drctl's version.
    pub drctl: &'static str,
    /// [`config_hash`] of the effective config.
    pub config: String,
}

impl Context {
    /// The context of this process running `command` with `config_hash`.
    pub fn this_process(command: &str, config_hash: String, reason: Option<String>) -> Context {
        let uid = uzers::get_current_uid();
        Context {
            command: command.to_owned(),
            pid: std::process::id(),
            uid,
            user: uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned()),
            reason,
            drctl: env!("CARGO_PKG_VERSION"),
            config: config_hash,
        }
    }
}

/// One line of the log as written: a decision, or a [`crate::report::Note`]
/// of the watcher's (a scheduled switch, a wave plan).
#[derive(Serialize)]
struct Line<'a, D: Serialize> {
    time: String,
    t: u64,
    agent: &'a str,
    #[serde(flatten)]
    context: &'a Context,
    /// Who asked a running watcher for an operator switchover (`SO_PEERCRED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    operator_by: Option<&'a str>,
    #[serde(flatten)]
    decision: &'a D,
}

/// Appends to the history; shared by the processes of one host.
pub struct HistoryLog {
    path: PathBuf,
    lock: File,
    max_bytes: u64,
    keep: u32,
    context: Context,
    /// Agent session id -> the agent's name in the log.
    names: std::collections::HashMap<String, String>,
    /// Appends that failed (warned about once, then every 100th).
    failures: u64,
    /// Per agent session: the operator's reason and who asked, for the
    /// decisions of an operator switchover a watcher runs for a client.
    operator: std::collections::HashMap<String, (Option<String>, Option<String>)>,
    /// fsyncs what must survive a power cut, off the loop.
    syncer: Syncer,
}

/// Makes a written file durable: `File::sync_data`, or a test's stand-in.
type SyncFn = std::sync::Arc<dyn Fn(&File) -> std::io::Result<()> + Send + Sync>;

/// The most files waiting for their fsync; beyond it the loop syncs itself
/// (a disk that slow is better felt than a queue without bound).
const SYNC_QUEUE: usize = 256;

/// fsyncs history files on a thread of its own.
struct Syncer {
    tx: Option<std::sync::mpsc::SyncSender<File>>,
    thread: Option<std::thread::JoinHandle<()>>,
    sync: SyncFn,
    path: PathBuf,
}

impl Syncer {
    /// A syncer running `sync` for the log at `path` (named in warnings).
    fn start(path: &Path, sync: SyncFn) -> Syncer {
        let (tx, rx) = std::sync::mpsc::sync_channel::<File>(SYNC_QUEUE);
        let (work, shown) = (sync.clone(), path.to_owned());
        let thread = std::thread::Builder::new()
            .name("history-sync".into())
            .spawn(move || {
                let mut failures = 0u64;
                while let Ok(first) = rx.recv() {
                    // A burst (a fleet's switchovers) is one fsync per file:
                    // an fsync makes every write to its file durable,
                    // whichever descriptor made it, and every line queued
                    // here is written. Rotation may have made several files.
                    let mut files = vec![first];
                    files.extend(rx.try_iter().take(SYNC_QUEUE));
                    let mut seen = std::collections::HashSet::new();
                    for file in &files {
                        let id = file.metadata().map(|m| (m.dev(), m.ino())).ok();
                        if id.is_some() && !seen.insert(id) {
                            continue;
                        }
                        if let Err(e) = work(file) {
                            failures += 1;
                            if failures % 100 == 1 {
                                tracing::warn!("history {}: cannot fsync ({e})", shown.display());
                            }
                        }
                    }
                }
            });
        // Without a thread (none can be made), every sync is the loop's own.
        let (tx, thread) = match thread {
            Ok(thread) => (Some(tx), Some(thread)),
            Err(e) => {
                tracing::warn!("history: no fsync thread ({e}); syncing in the loop");
                (None, None)
            }
        };
        Syncer {
            tx,
            thread,
            sync,
            path: path.to_owned(),
        }
    }

    /// Has `file` synced: by the thread, or here when its queue is full.
    fn sync(&self, file: File) -> std::io::Result<()> {
        let file = match &self.tx {
            Some(tx) => match tx.try_send(file) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::TrySendError::Full(f))
                | Err(std::sync::mpsc::TrySendError::Disconnected(f)) => f,
            },
            None => file,
        };
        tracing::debug!(
            "history {}: fsync in the loop (its thread is busy or gone)",
            self.path.display()
        );
        (self.sync)(&file)
    }

    /// Waits for every queued sync.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Why the history cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("history {path}: {source}")]
pub struct HistoryError {
    path: PathBuf,
    source: std::io::Error,
}

impl HistoryLog {
    /// Opens (creates) the log at `path` and its lock file, private (0600)
    /// in a private directory when drctl makes it.
    pub fn open(
        path: &Path,
        cfg: &HistoryConfig,
        context: Context,
        names: std::collections::HashMap<String, String>,
    ) -> Result<HistoryLog, HistoryError> {
        Self::open_syncing(
            path,
            cfg,
            context,
            names,
            std::sync::Arc::new(File::sync_data),
        )
    }

    /// [`HistoryLog::open`], making lines durable with `sync`.
    fn open_syncing(
        path: &Path,
        cfg: &HistoryConfig,
        context: Context,
        names: std::collections::HashMap<String, String>,
        sync: SyncFn,
    ) -> Result<HistoryLog, HistoryError> {
        let err = |source| HistoryError {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            paths::create_private_dir(dir).map_err(err)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(lock_path(path))
            .map_err(err)?;
        // Fail now, not at the first decision, when the log cannot be opened.
        open_log(path).map_err(err)?;
        Ok(HistoryLog {
            path: path.to_owned(),
            lock,
            max_bytes: cfg.max_bytes,
            keep: cfg.keep,
            context,
            names,
            failures: 0,
            operator: std::collections::HashMap::new(),
            syncer: Syncer::start(path, sync),
        })
    }

    /// Appends one line (under the lock), rotating first if it would grow
    /// past the limit; `sync`: have it fsynced (off the loop).
    fn append(&mut self, line: &[u8], sync: bool) -> std::io::Result<()> {
        let _locked = Flock::exclusive(&self.lock)?;
        let mut file = open_log(&self.path)?;
        let len = file.metadata()?.len();
        if len > 0 && len + line.len() as u64 > self.max_bytes {
            rotate(&self.path, self.keep)?;
            file = open_log(&self.path)?;
        }
        // One write(2) per line: appends of other processes never interleave.
        file.write_all(line)?;
        if sync {
            self.syncer.sync(file)?;
        }
        Ok(())
    }
}

impl HistoryLog {
    /// Appends `line` (a [`Line`], encoded), warning when it cannot (once,
    /// then every 100th).
    fn write_line(&mut self, line: Option<Vec<u8>>, sync: bool) {
        let Some(mut bytes) = line else {
            return;
        };
        bytes.push(b'\n');
        if let Err(e) = self.append(&bytes, sync) {
            self.failures += 1;
            if self.failures % 100 == 1 {
                tracing::warn!(
                    "history {}: cannot append ({e}); {} decisions lost so far",
                    self.path.display(),
                    self.failures
                );
            }
        }
    }
}

impl Observer for HistoryLog {
    fn close(&mut self) {
        self.syncer.finish();
    }

    fn note(
        &mut self,
        t: Timestamp,
        agent: &str,
        note: &crate::report::Note,
        why: Option<&str>,
        by: Option<&str>,
    ) {
        let name = self
            .names
            .get(agent)
            .map_or(agent, String::as_str)
            .to_owned();
        let context = Context {
            reason: why.map(str::to_owned),
            ..self.context.clone()
        };
        let line = Line {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            t: t.as_nanos(),
            agent: &name,
            context: &context,
            operator_by: by,
            decision: note,
        };
        let line = serde_json::to_vec(&line).ok();
        // An operator's plan is kept like a switchover: fsynced.
        self.write_line(line, true);
    }

    fn operator(&mut self, agent: &str, why: Option<&str>, by: Option<&str>) {
        if why.is_none() && by.is_none() {
            self.operator.remove(agent);
        } else {
            let owned = (why.map(str::to_owned), by.map(str::to_owned));
            self.operator.insert(agent.to_owned(), owned);
        }
    }

    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let name = self.names.get(agent).map_or(agent, String::as_str);
        let operator = self.operator.get(agent);
        let context = match operator {
            Some((why, _)) if why.is_some() => std::borrow::Cow::Owned(Context {
                reason: why.clone(),
                ..self.context.clone()
            }),
            _ => std::borrow::Cow::Borrowed(&self.context),
        };
        let line = Line {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            t: t.as_nanos(),
            agent: name,
            context: &context,
            operator_by: operator.and_then(|(_, by)| by.as_deref()),
            decision: d,
        };
        let sync = matches!(
            d,
            Decision::SwitchoverStarted { .. }
                | Decision::SwitchoverCompleted { .. }
                | Decision::SwitchoverFailed { .. }
        );
        // The operator's switchover is over: later decisions are the watcher's own.
        let over = matches!(
            d,
            Decision::SwitchoverCompleted {
                reason: drctl_policy::Reason::Operator,
                ..
            } | Decision::GateRefused {
                reason: drctl_policy::Reason::Operator,
                ..
            } | Decision::SwitchoverSuppressed {
                reason: drctl_policy::Reason::Operator,
                ..
            }
        );
        let line = serde_json::to_vec(&line).ok();
        self.write_line(line, sync);
        if over {
            self.operator.remove(agent);
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

fn open_log(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// `path` -> `.1`, `.1` -> `.2`, …; the oldest beyond `keep` goes.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..keep).rev() {
        match std::fs::rename(rotated(path, n), rotated(path, n + 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

/// An exclusive `flock`, released when dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a File) -> std::io::Result<Flock<'a>> {
        loop {
            // SAFETY: the descriptor is open for the guard's life.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Flock(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking an fd we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// What `drctl history` keeps.
#[derive(Debug, Default)]
pub struct Filter {
    /// Only lines at or after this wall-clock time.
    pub since: Option<std::time::SystemTime>,
    /// Only this agent's.
    pub agent: Option<String>,
    /// Only decisions of this `type`.
    pub kind: Option<String>,
    /// At most this many (the newest).
    pub last: Option<usize>,
}

impl Filter {
    fn keeps(&self, v: &serde_json::Value) -> bool {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str());
        if self.agent.as_deref().is_some_and(|a| s("agent") != Some(a)) {
            return false;
        }
        if self.kind.as_deref().is_some_and(|k| s("type") != Some(k)) {
            return false;
        }
        if let Some(since) = self.since {
            let at = s("time").and_then(|t| humantime::parse_rfc3339(t).ok());
            if at.is_none_or(|at| at < since) {
                return false;
            }
        }
        true
    }
}

/// What a read of the history found.
#[derive(Debug, Default)]
pub struct Found {
    /// The lines kept, oldest first.
    pub lines: Vec<serde_json::Value>,
    /// Lines skipped as unreadable (cut by a crash, too long, not JSON).
    pub skipped: u64,
}

/// Reads the rotated files (oldest first) and the log, keeping what `filter`
/// keeps; memory is bounded by `filter.last` when given.
pub fn read(path: &Path, filter: &Filter) -> std::io::Result<Found> {
    let mut out = Found::default();
    let mut kept = VecDeque::new();
    let mut files: Vec<PathBuf> = (1..=1000)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_owned());
    for file in files {
        // Never through a symbolic link: the writer refuses them too, and
        // one here is not ours (another user pointing us at their file).
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&file);
        let f = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a symbolic link: a history file is never read through one",
                        file.display()
                    ),
                ))
            }
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if buf.last() != Some(&b'\n') {
                if n > MAX_LINE {
                    // Skip the rest of an overlong line, keeping none of it.
                    reader.skip_until(b'\n')?;
                }
                out.skipped += 1;
                continue;
            }
            match serde_json::from_slice::<serde_json::Value>(&buf) {
                Ok(v) if v.is_object() => {
                    if filter.keeps(&v) {
                        kept.push_back(v);
                        if filter.last.is_some_and(|l| kept.len() > l) {
                            kept.pop_front();
                        }
                    }
                }
                _ => out.skipped += 1,
            }
        }
    }
    out.lines = kept.into();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, max_bytes: u64, keep: u32) -> HistoryLog {
        let cfg = HistoryConfig {
            enabled: true,
            file: None,
            max_bytes,
            keep,
        };
        let ctx = Context::this_process("watch", "abcd".into(), Some("drill".into()));
        HistoryLog::open(&dir.join("h.jsonl"), &cfg, ctx, Default::default()).unwrap()
    }

    fn raised(n: u64) -> (Timestamp, Decision) {
        (
            Timestamp::from_nanos(n),
            Decision::AlarmRaised {
                alarm: drctl_policy::Alarm::TelephonyServiceDown,
                deadline: None,
            },
        )
    }

    /// A switchover's line is in the file when the loop goes on, but its
    /// fsync is not the loop's: a disk that does not answer delays nothing.
    /// A burst queued meanwhile is one fsync; closing waits for them.
    #[test]
    fn a_switchover_fsync_never_holds_the_loop_and_close_waits_for_it() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{mpsc, Arc, Mutex};
        let wait = std::time::Duration::from_secs(60);
        let dir = tempfile::tempdir().unwrap();
        let (asked_tx, asked) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let synced = Arc::new(AtomicBool::new(false));
        let seen = synced.clone();
        let syncs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = syncs.clone();
        // A disk that answers an fsync only when the test says so.
        let sync: SyncFn = Arc::new(move |f: &File| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = asked_tx.send(());
            let _ = released.lock().unwrap().recv();
            // A slow disk: a close that did not wait would look before this.
            std::thread::sleep(std::time::Duration::from_millis(50));
            seen.store(true, Ordering::SeqCst);
            f.sync_data()
        });
        let cfg = HistoryConfig {
            enabled: true,
            file: None,
            max_bytes: 1 << 20,
            keep: 1,
        };
        let ctx = Context::this_process("watch", "abcd".into(), None);
        let path = dir.path().join("h.jsonl");
        let mut log = HistoryLog::open_syncing(&path, &cfg, ctx, Default::default(), sync).unwrap();

        let (returned_tx, returned) = mpsc::channel();
        let looping = std::thread::spawn(move || {
            let started = Decision::SwitchoverStarted {
                reason: drctl_policy::Reason::TelephonyTimeout,
                from: "site1".into(),
                to: "site2".into(),
            };
            log.decision(Timestamp::from_nanos(5), "ann", &started);
            let _ = returned_tx.send(());
            log
        });
        asked
            .recv_timeout(wait)
            .expect("the switchover's line was never fsynced");
        returned
            .recv_timeout(wait)
            .expect("the loop waited for the fsync of the switchover's line");
        assert!(!synced.load(Ordering::SeqCst));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"switchover-started\""), "{text}");

        let mut log = looping.join().unwrap();
        // While the disk is busy, a burst of switchovers queues up: one
        // fsync of the file covers them all.
        for n in 0..9 {
            let failed = Decision::SwitchoverFailed {
                to: "site2".into(),
                error: format!("attempt {n}"),
            };
            log.decision(Timestamp::from_nanos(6 + n), "ann", &failed);
        }
        release.send(()).unwrap();
        release.send(()).unwrap();
        drop(release);
        log.close();
        assert!(
            synced.load(Ordering::SeqCst),
            "close returned before the fsync was done"
        );
        assert_eq!(syncs.load(Ordering::SeqCst), 2, "one fsync for the burst");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 10, "{text}");
    }

    /// A history file (the log or a rotated one) that is a symbolic link is
    /// refused by name; an overlong line is skipped without being kept.
    #[test]
    fn a_symlinked_history_is_refused_and_an_overlong_line_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut text = "x".repeat(3 * MAX_LINE);
        text.push('\n');
        text.push_str("{\"type\":\"alarm-raised\",\"agent\":\"ann\"}\n");
        std::fs::write(&path, &text).unwrap();
        let found = read(&path, &Filter::default()).unwrap();
        assert_eq!((found.skipped, found.lines.len()), (1, 1));

        let elsewhere = dir.path().join("someone-elses.jsonl");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let e = read(&path, &Filter::default()).unwrap_err().to_string();
        assert!(e.contains("h.jsonl is a symbolic link"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&elsewhere, &path).unwrap();
        std::os::unix::fs::symlink(&path, rotated(&path, 1)).unwrap();
        let e = read(&path, &Filter::default()).unwrap_err().to_string();
        assert!(e.contains("h.jsonl.1 is a symbolic link"), "{e}");
    }

    #[test]
    fn lines_carry_who_and_why_and_read_back_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = log(dir.path(), 1 << 20, 2);
        let (t, d) = raised(5);
        h.decision(t, "ann", &d);
        h.decision(t, "bob", &d);
        let all = read(&dir.path().join("h.jsonl"), &Filter::default()).unwrap();
        assert_eq!(all.lines.len(), 2);
        let first = &all.lines[0];
        assert_eq!(first["agent"], "ann");
        assert_eq!(first["type"], "alarm-raised");
        assert_eq!(first["operator_reason"], "drill");
        assert_eq!(first["config"], "abcd");
        assert_eq!(first["command"], "watch");
        assert_eq!(first["pid"], std::process::id());
        let bob = Filter {
            agent: Some("bob".into()),
            ..Filter::default()
        };
        let only = read(&dir.path().join("h.jsonl"), &bob).unwrap();
        assert_eq!(only.lines.len(), 1);
        assert_eq!(only.lines[0]["agent"], "bob");
    }

    #[test]
    fn rotation_keeps_the_newest_and_reads_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = log(dir.path(), 2000, 2);
        for n in 0..100 {
            let (t, d) = raised(n);
            h.decision(t, "ann", &d);
        }
        let p = dir.path().join("h.jsonl");
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists(), "keep = 2");
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 2000);
        }
        let r = read(&p, &Filter::default()).unwrap();
        let ts: Vec<u64> = r.lines.iter().map(|l| l["t"].as_u64().unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] + 1 == w[1]), "{ts:?}");
        assert_eq!(ts.last(), Some(&99));
        let last3 = Filter {
            last: Some(3),
            ..Filter::default()
        };
        let r = read(&p, &last3).unwrap();
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.lines[2]["t"], 99);
    }

    #[test]
    fn a_line_cut_by_a_crash_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.jsonl");
        std::fs::write(&p, "{\"type\":\"alarm-raised\"}\n{\"type\":\"switcho").unwrap();
        let r = read(&p, &Filter::default()).unwrap();
        assert_eq!((r.lines.len(), r.skipped), (1, 1));
    }
}

//! One JVM running the sidecar: started with a cleaned environment, read by
//! two threads (stdout: protocol lines to the bridge, stderr: log lines to
//! the host), stopped by closing its stdin, killed if it lingers.

use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::protocol::{clip, Hello, Line};
use drctl_plugin_api::{HostHandle, LogLevel};
use serde::Serialize;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The sidecar's main class.
pub const MAIN_CLASS: &str = "drctl.ailbridge.Sidecar";

/// What a sidecar's stdout thread reports, tagged with the sidecar's generation.
#[derive(Debug)]
pub enum Msg {
    /// One line of stdout.
    Line(Line),
    /// Stdout ended: the JVM exited or is exiting.
    Eof,
}

/// How many of the sidecar's last log lines are kept for error messages.
const TAIL_LINES: usize = 6;

/// The longest line read from the sidecar (1 MiB, the host's output limit);
/// the rest of a longer line is skipped, so a runaway JVM cannot fill memory.
const MAX_LINE_BYTES: usize = 1 << 20;

/// How much stderr a drain waits for at most (64 KiB, a full pipe): the
/// reason a JVM died is in its last lines, not megabytes of them.
const DRAIN_MAX_BYTES: u64 = 64 << 10;

/// What the stderr thread has read: the last lines, a byte count, whether it
/// reached the end of the stream.
#[derive(Debug, Default)]
struct Stderr {
    tail: VecDeque<String>,
    bytes: u64,
    done: bool,
}

/// [`Stderr`] and the condition its thread signals after each line and at the end.
type SharedStderr = Arc<(Mutex<Stderr>, Condvar)>;

/// Environment variables the JVM keeps; everything else (the agent's
/// password variable among them) is cleared.
const KEEP_ENV: [&str; 9] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "JAVA_HOME",
];

/// A running sidecar JVM.
#[derive(Debug)]
pub struct Sidecar {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    generation: u64,
    stderr: SharedStderr,
}

/// The part of the parent's environment the JVM inherits.
pub(crate) fn inherited_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| KEEP_ENV.contains(&k) || k.starts_with("LC_"))
        })
        .collect()
}

/// Reads `reader` line by line (lossy UTF-8, without the newline, at most
/// `max` bytes of each) until it ends; `f` gets each line and its length in
/// bytes as read, and returns whether to go on.
fn each_line(reader: impl Read, max: usize, mut f: impl FnMut(String, usize) -> bool) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let mut read = 0;
        // One line, keeping at most `max` bytes of it.
        let ended = loop {
            let chunk = match reader.fill_buf() {
                Ok([]) | Err(_) => break true,
                Ok(chunk) => chunk,
            };
            let (used, newline) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..used.min(room)]);
            reader.consume(used);
            read += used;
            if newline {
                break false;
            }
        };
        if read > 0 {
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() && !f(line.to_owned(), read) {
                return;
            }
        }
        if ended {
            return;
        }
    }
}

/// `LEVEL message` as the sidecar logs it; anything else (the JVM's own
/// complaints) is a warning.
fn log_level(line: &str) -> (LogLevel, &str) {
    let levels = [
        ("ERROR ", LogLevel::Error),
        ("WARN ", LogLevel::Warn),
        ("INFO ", LogLevel::Info),
        ("DEBUG ", LogLevel::Debug),
        ("TRACE ", LogLevel::Trace),
    ];
    for (prefix, level) in levels {
        if let Some(rest) = line.strip_prefix(prefix) {
            return (level, rest);
        }
    }
    (LogLevel::Warn, line)
}

/// The stderr thread: each line to the host's log and the tail, until the end.
fn read_stderr(pipe: impl Read, pid: u32, host: &HostHandle, stderr: &SharedStderr) {
    let (state, changed) = &**stderr;
    each_line(pipe, MAX_LINE_BYTES, |line, read| {
        let (level, msg) = log_level(&line);
        host.log(level, format_args!("sidecar[{pid}]: {msg}"));
        if let Ok(mut s) = state.lock() {
            if s.tail.len() == TAIL_LINES {
                s.tail.pop_front();
            }
            s.tail.push_back(clip(&line));
            s.bytes = s.bytes.saturating_add(read as u64);
        }
        changed.notify_all();
        true
    });
    finish(stderr);
}

/// Marks stderr as read to its end and wakes a drain.
fn finish(stderr: &SharedStderr) {
    let (state, changed) = &**stderr;
    if let Ok(mut s) = state.lock() {
        s.done = true;
    }
    changed.notify_all();
}

impl Sidecar {
    /// Starts a JVM on `jar` plus the configured AIL classpath and sends the
    /// plugin's hello; the sidecar's hello arrives later through `tx`.
    /// Nothing secret is on its command line or in its environment.
    pub fn spawn(
        cfg: &BridgeConfig,
        jar: &Path,
        host: &HostHandle,
        tx: &Sender<(u64, Msg)>,
        generation: u64,
    ) -> Result<Sidecar, BridgeError> {
        let java = cfg.java();
        let entries =
            std::iter::once(jar.to_path_buf()).chain(cfg.classpath.iter().map(PathBuf::from));
        let classpath = std::env::join_paths(entries)
            .map_err(|e| BridgeError::Config(format!("classpath: {e}")))?;
        let mut cmd = Command::new(&java);
        cmd.args(&cfg.jvm_args)
            .arg("-cp")
            .arg(classpath)
            .arg(MAIN_CLASS)
            .env_clear()
            .envs(inherited_env())
            .envs(&cfg.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: a Ctrl-C at drctl's terminal must not kill
        // the JVM behind the plugin's back (the plugin stops it in order).
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|source| BridgeError::Spawn { java, source })?;
        let pid = child.id();
        let stderr: SharedStderr = Arc::default();
        let stdin = child.stdin.take();
        let mut sidecar = Sidecar {
            child,
            stdin,
            pid,
            generation,
            stderr: stderr.clone(),
        };
        if let Some(stdout) = sidecar.child.stdout.take() {
            let (tx, host) = (tx.clone(), host.clone());
            std::thread::Builder::new()
                .name(format!("ail-sidecar-{pid}-out"))
                .spawn(move || {
                    each_line(stdout, MAX_LINE_BYTES, |line, _| {
                        let sent = tx.send((generation, Msg::Line(Line::parse(&line)))).is_ok();
                        host.wake();
                        sent
                    });
                    let _ = tx.send((generation, Msg::Eof));
                    host.wake();
                })
                .map_err(BridgeError::Io)?;
        }
        match sidecar.child.stderr.take() {
            Some(pipe) => {
                let host = host.clone();
                std::thread::Builder::new()
                    .name(format!("ail-sidecar-{pid}-err"))
                    .spawn(move || read_stderr(pipe, pid, &host, &stderr))
                    .map_err(BridgeError::Io)?;
            }
            None => finish(&stderr),
        }
        // A JVM that dies at once (no main class, bad option) breaks the pipe;
        // its exit and last log lines, not EPIPE, are what to report: the
        // stdout thread's end of stream brings them.
        if let Err(e) = sidecar.send(&Hello::new(cfg)) {
            host.debug(format_args!(
                "cannot send the hello to the AIL sidecar: {e}"
            ));
        }
        Ok(sidecar)
    }

    /// Writes one message as one line.
    pub fn send<T: Serialize>(&mut self, message: &T) -> std::io::Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the sidecar's stdin is closed",
            ));
        };
        let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
        line.push(b'\n');
        stdin.write_all(&line)?;
        stdin.flush()
    }

    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Which start of the sidecar this is (1 = the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Waits until the JVM's stderr has been read to its end, at most `bound`
    /// and [`DRAIN_MAX_BYTES`] more bytes: call it after the JVM exited and
    /// before [`Sidecar::tail`], else the lines saying why it died may still
    /// be in the pipe. Whether the end was reached.
    pub fn drain_stderr(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let (state, changed) = &*self.stderr;
        let Ok(mut guard) = state.lock() else {
            return false;
        };
        let start = guard.bytes;
        loop {
            if guard.done {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A grandchild holding the pipe, or a flood: give up, keep what was read.
            if left.is_zero() || guard.bytes.saturating_sub(start) > DRAIN_MAX_BYTES {
                return false;
            }
            guard = match changed.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(_) => return false,
            };
        }
    }

    /// The last log lines, as `; its last log lines: a | b`, or empty.
    pub fn tail(&self) -> String {
        let lines: Vec<String> = match self.stderr.0.lock() {
            Ok(s) => s.tail.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its last log lines: {}", lines.join(" | "))
        }
    }

    /// Whether the JVM has exited (its status, if so).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    /// Waits up to `grace` for the JVM to exit, then kills it; its exit status.
    pub fn wait_or_kill(&mut self, grace: Duration) -> (String, bool) {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited() {
                return (status, false);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self
                    .child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| format!("unknown status: {e}"));
                return (status, true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asks the JVM to stop (end of its stdin: it kills the factory and exits),
    /// waits up to `grace`, kills it after; its exit status and whether it was killed.
    pub fn stop(&mut self, grace: Duration) -> (String, bool) {
        self.stdin = None;
        self.wait_or_kill(grace)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        // Never leave a JVM or a zombie behind, whatever path got here.
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_of_sidecar_lines() {
        assert_eq!(log_level("INFO ready"), (LogLevel::Info, "ready"));
        assert_eq!(log_level("ERROR boom"), (LogLevel::Error, "boom"));
        assert_eq!(
            log_level("Exception in thread main"),
            (LogLevel::Warn, "Exception in thread main")
        );
    }

    #[test]
    fn the_jvm_environment_keeps_only_the_allowlist() {
        // std serializes its own environment reads and writes.
        std::env::set_var("DRCTL_TEST_SECRET_PASSWORD", "hunter2");
        std::env::set_var("LC_TIME", "C");
        let env = inherited_env();
        assert!(env.iter().all(|(k, _)| k != "DRCTL_TEST_SECRET_PASSWORD"));
        assert!(env.iter().any(|(k, _)| k == "LC_TIME"));
    }

    #[test]
    fn lines_are_split_and_lossy() {
        let mut got = Vec::new();
        each_line(&b"a\r\n\nb\xff\nlast"[..], 100, |l, _| {
            got.push(l);
            true
        });
        assert_eq!(got, vec!["a", "b\u{fffd}", "last"]);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let input = format!("{}\nnext\n", "x".repeat(10_000));
        let mut got = Vec::new();
        // Longer than the reader's 8 KiB buffer: the line spans reads.
        each_line(input.as_bytes(), 16, |l, read| {
            got.push((l, read));
            true
        });
        assert_eq!(got, vec![("x".repeat(16), 10_001), ("next".to_owned(), 5)]);
    }
}

//! A drctl started in the background, and the patience the tests have with it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::run::Ran;
use crate::Lines;

/// How long any awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A started drctl: its stdout lines arrive on [`Running::lines`], its
/// stderr is gathered as it comes. It runs in a process group of its own;
/// dropped while still running (a test failed before stopping it), the
/// whole group is killed, so a failed test leaves no drctl behind.
pub struct Running {
    child: Child,
    /// Its arguments, for messages.
    args: String,
    /// Its stdout, line by line.
    pub lines: Lines,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: JoinHandle<()>,
}

impl Running {
    /// Starts `cmd` with stdout and stderr piped (stdin as `cmd` says).
    pub fn spawn(mut cmd: Command) -> Running {
        let args = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn drctl");
        let lines = Lines::of(&mut child);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("a piped stderr");
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Running {
            child,
            args,
            lines,
            stderr,
            stderr_reader,
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its stdin, if it was piped (once).
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("a piped stdin")
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        crate::text(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sends it `signal` (`libc::SIGTERM`, ...).
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {signal} {pid}");
    }

    /// Waits until it handles `signal` (its handler is installed), read from
    /// `/proc/<pid>/status`: from then on the signal cannot kill it by default.
    pub fn wait_handling(&self, signal: i32) {
        let path = format!("/proc/{}/status", self.id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = std::fs::read_to_string(&path).unwrap_or_default();
            let caught = status
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & (1 << (signal - 1)) != 0);
            if caught {
                return;
            }
            assert!(Instant::now() < deadline, "signal {signal} never handled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its peak resident set (VmHWM) so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Waits for it to exit, at most `within`; `None` if it is still running then.
    pub fn wait_within(&mut self, within: Duration) -> Option<ExitStatus> {
        crate::wait_within(&mut self.child, within)
    }

    /// [`Running::finish_within`] with [`PATIENCE`].
    pub fn finish(self) -> Ran {
        self.finish_within(PATIENCE)
    }

    /// Waits for it to exit (it is killed, and the test fails, if it has not
    /// within `within`), then for its stdout and stderr to close: everything
    /// it wrote.
    pub fn finish_within(mut self, within: Duration) -> Ran {
        let Some(status) = self.wait_within(within) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "drctl {} still running after {within:?}; stderr:\n{}",
                self.args,
                self.stderr()
            );
        };
        let stdout = self.lines.rest_within(PATIENCE).join("\n");
        // The reader ends at EOF, once every process holding the pipe has
        // closed it; a leftover grandchild may hold it longer than we wait.
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr_reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ran {
            code: status.code(),
            stdout,
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.is_running() {
            let pgid = libc::pid_t::try_from(self.id()).unwrap_or(0);
            // SAFETY: SIGKILL to the process group this test started (its
            // leader, our child, has not been reaped, so the id is still ours).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

//! A real-clock `drctl watch` with a control socket of its own, and its clients.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dir::TestDir;
use crate::run::{Drctl, Ran};
use crate::running::{Running, PATIENCE};

/// A real-clock `drctl watch --output json` of a mock scenario, in a
/// [`TestDir`] of its own holding `ops.toml` (the scenario) and `drctl.toml`
/// (its control socket, `ctl.sock` there, and the test's config). Killed with
/// its process group if the test fails before stopping it.
pub struct Watcher {
    dir: TestDir,
    config: String,
    running: Running,
}

impl Watcher {
    /// Writes `scenario` and the config (`extra_config` after the control
    /// socket) into a new directory and starts the watcher there; returns
    /// once it is up.
    pub fn start(scenario: &str, extra_config: &str) -> Watcher {
        Watcher::start_with(scenario, extra_config, |_| {})
    }

    /// [`Watcher::start`], with `tweak` applied to the command first (a
    /// resource limit, ...).
    pub fn start_with(
        scenario: &str,
        extra_config: &str,
        tweak: impl FnOnce(&mut Command),
    ) -> Watcher {
        let dir = TestDir::new();
        dir.file("ops.toml", scenario);
        dir.control_config(extra_config);
        Watcher::spawn_with(dir, tweak)
    }

    /// The watcher of the `drctl.toml` and `ops.toml` already in `dir`.
    pub fn spawn(dir: TestDir) -> Watcher {
        Watcher::spawn_with(dir, |_| {})
    }

    /// [`Watcher::spawn`], with `tweak` applied to the command first (`--record`, ...).
    pub fn spawn_with(dir: TestDir, tweak: impl FnOnce(&mut Command)) -> Watcher {
        let config = dir.at("drctl.toml");
        let mut cmd = Drctl::watch(dir.at("ops.toml"))
            .config(&config)
            .json()
            .command(dir.path());
        tweak(&mut cmd);
        let running = Running::spawn(cmd);
        let w = Watcher {
            dir,
            config,
            running,
        };
        w.wait_for("the watcher to be up", |s| {
            s["phase"] == "watching" && s["listeners"]["dn"] == "on"
        });
        w
    }

    /// Its directory.
    pub fn dir(&self) -> &TestDir {
        &self.dir
    }

    /// Its control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.socket()
    }

    /// `drctl --config <its drctl.toml> ARGS`, to its end: a client of it.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.dir.run(&Drctl::new(args).config(&self.config))
    }

    /// `drctl --config <its drctl.toml> ARGS` in the background: a client
    /// of it that the test waits for, or kills, later.
    pub fn spawn_client(&self, args: &[&str]) -> Running {
        Drctl::new(args).config(&self.config).spawn(self.dir.path())
    }

    /// Its `status --output json`, or `None` while it does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.run(&["status", "--output", "json"]);
        out.success().then(|| out.json())
    }

    /// Polls its status until `cond` holds (at most [`PATIENCE`]); that status.
    pub fn wait_for(
        &self,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.status().filter(|s| cond(s)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What it has logged so far.
    pub fn stderr(&self) -> String {
        self.running.stderr()
    }

    /// Its peak resident set so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.running.peak_rss_kib()
    }

    /// SIGINT; it must be gone within 20 s. What it wrote, and its directory.
    pub fn stop(self) -> (Ran, TestDir) {
        self.stop_within(Duration::from_secs(20))
    }

    /// SIGINT; it must be gone within `bound`.
    pub fn stop_within(self, bound: Duration) -> (Ran, TestDir) {
        self.running.signal(libc::SIGINT);
        (self.running.finish_within(bound), self.dir)
    }
}

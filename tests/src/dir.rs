//! A temporary directory per test, and the config files the tests write in it.

use std::path::{Path, PathBuf};

use crate::run::{Drctl, Ran};
use crate::running::Running;

/// The two sites of every e2e config (the mock never dials their CS Proxies).
pub const TWO_SITES: &str = "\
[[sites]]\nname = \"site1\"\ncs-proxy = \"csp1:7000\"\napp-name = \"AIL_site1\"\n\
[[sites]]\nname = \"site2\"\ncs-proxy = \"csp2:7000\"\napp-name = \"AIL_site2\"\n";

/// A config for the agent `agent007`: `[agent]` with the `agent` lines (how
/// its password is found), then [`TWO_SITES`].
pub fn agent_config(agent: &str) -> String {
    format!("[agent]\nusername = \"agent007\"\n{agent}\n{TWO_SITES}")
}

/// A `[control]` section naming `socket`.
pub fn control_section(socket: &Path) -> String {
    format!("[control]\nsocket = \"{}\"\n", socket.display())
}

/// A scenario of `tests/scenarios/` (each says there what it is for), as a
/// path from the repository root, where drctl runs.
pub fn test_scenario(name: &str) -> String {
    format!("tests/scenarios/{name}")
}

/// `drctl watch` of the test scenario `name` on the virtual clock to its end
/// with `--set` for each of `sets`, recorded: the decisions (as
/// [`crate::records`]) and the recording's records. A failed run fails the
/// test, naming the scenario and the sets.
pub fn watch_test_scenario(name: &str, sets: &[&str]) -> (Vec<String>, Vec<serde_json::Value>) {
    let dir = TestDir::new();
    let rec = dir.at("run.jsonl");
    let out = Drctl::watch(test_scenario(name))
        .virtual_to_end()
        .json()
        .record(&rec)
        .sets(sets)
        .run();
    assert!(
        out.success(),
        "{name} {sets:?}: exit {:?}\n{}",
        out.code,
        out.stderr
    );
    (out.records(), crate::recorded(rec.as_ref()))
}

/// The text of the scenario `name` of `tests/scenarios/`.
pub fn read_test_scenario(name: &str) -> String {
    let path = crate::repo().join(test_scenario(name));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A temporary directory for one test, removed when dropped; drctl runs
/// started through it take it as their runtime dir.
pub struct TestDir(tempfile::TempDir);

impl Default for TestDir {
    fn default() -> TestDir {
        TestDir::new()
    }
}

impl TestDir {
    /// A new, empty directory.
    pub fn new() -> TestDir {
        TestDir(tempfile::tempdir().expect("a temp dir"))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `DIR/name`, as text for an argument (nothing is written).
    pub fn at(&self, name: &str) -> String {
        self.path().join(name).to_string_lossy().into_owned()
    }

    /// Writes `body` to `DIR/name`; its path, as text.
    pub fn file(&self, name: &str, body: &str) -> String {
        let path = self.path().join(name);
        std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_string_lossy().into_owned()
    }

    /// Makes the directory `DIR/name` with permissions `mode`; its path.
    pub fn dir(&self, name: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join(name);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Where a watcher configured by [`TestDir::control_config`] listens.
    pub fn socket(&self) -> PathBuf {
        self.path().join("ctl.sock")
    }

    /// Writes `DIR/drctl.toml`: a `[control]` section for [`TestDir::socket`],
    /// then `extra`; its path.
    pub fn control_config(&self, extra: &str) -> String {
        let control = control_section(&self.socket());
        self.file("drctl.toml", &format!("{control}{extra}"))
    }

    /// Starts `drctl watch --output json --record DIR/run.jsonl` of the test
    /// scenario `scenario` on the real clock; the recording's path.
    pub fn spawn_recorded_watch(&self, scenario: &str) -> (Running, String) {
        let rec = self.at("run.jsonl");
        let watch = Drctl::watch(test_scenario(scenario)).json().record(&rec);
        (watch.spawn(self.path()), rec)
    }

    /// Runs `drctl` to its end with this directory as its runtime dir.
    pub fn run(&self, drctl: &Drctl) -> Ran {
        drctl.run_in(self.path())
    }
}

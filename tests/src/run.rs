//! One way to run drctl: a command line built step by step ([`Drctl`]), run
//! to its end into a [`Ran`] (exit code, stdout, stderr as text).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::running::Running;

/// A drctl command line, built up step by step and then run:
/// `Drctl::watch(scenario).virtual_to_end().json().run()`.
///
/// drctl's global options (`--config`, `--set`, `-v`, `-q`, `--log-format`)
/// may stand anywhere, so each builder step appends.
#[derive(Clone, Debug, Default)]
pub struct Drctl {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Drctl {
    /// The shipped demo scenario, as a path from the repository root.
    pub const DEMO: &'static str = "plugins/mock/scenarios/demo.toml";

    /// `drctl ARGS`.
    pub fn new(args: &[&str]) -> Drctl {
        Drctl::default().args(args)
    }

    /// `drctl SUBCOMMAND --backend mock --scenario SCENARIO` (`watch`,
    /// `startup` or `switch`); a relative scenario path is from the repository root.
    pub fn mock(subcommand: &str, scenario: impl AsRef<Path>) -> Drctl {
        Drctl::new(&[subcommand, "--backend", "mock", "--scenario"]).arg(scenario)
    }

    /// `drctl watch --backend mock --scenario SCENARIO`.
    pub fn watch(scenario: impl AsRef<Path>) -> Drctl {
        Drctl::mock("watch", scenario)
    }

    /// One more argument (a path is taken as text).
    pub fn arg(mut self, arg: impl AsRef<Path>) -> Drctl {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    /// More arguments.
    pub fn args(mut self, args: &[&str]) -> Drctl {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// `--config PATH`.
    pub fn config(self, path: impl AsRef<Path>) -> Drctl {
        self.arg("--config").arg(path)
    }

    /// `--set KEY=VALUE`.
    pub fn set(self, key_value: &str) -> Drctl {
        self.args(&["--set", key_value])
    }

    /// `--set KEY=VALUE` for each of `key_values`.
    pub fn sets(self, key_values: &[&str]) -> Drctl {
        key_values.iter().fold(self, |cmd, kv| cmd.set(kv))
    }

    /// `--clock virtual`: the run takes no wall time.
    pub fn virtual_clock(self) -> Drctl {
        self.args(&["--clock", "virtual"])
    }

    /// `--clock virtual --until-end`: the whole scenario, at once.
    pub fn virtual_to_end(self) -> Drctl {
        self.virtual_clock().arg("--until-end")
    }

    /// `--output json`: one decision record a line on stdout.
    pub fn json(self) -> Drctl {
        self.args(&["--output", "json"])
    }

    /// `--record PATH`.
    pub fn record(self, path: impl AsRef<Path>) -> Drctl {
        self.arg("--record").arg(path)
    }

    /// An environment variable for drctl.
    pub fn env(mut self, key: &str, value: &str) -> Drctl {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The arguments so far (for a runner of its own, such as a pseudo-terminal).
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The command, not started: from the repository root, with no user
    /// config and `runtime` as `XDG_RUNTIME_DIR` (see [`crate::command`]).
    pub fn command(&self, runtime: &Path) -> Command {
        let mut cmd = crate::command(&self.argv(), runtime);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs drctl to its end with a runtime dir of its own.
    pub fn run(&self) -> Ran {
        let runtime = tempfile::tempdir().expect("a runtime dir");
        self.run_in(runtime.path())
    }

    /// Runs drctl to its end with `runtime` as its runtime dir.
    pub fn run_in(&self, runtime: &Path) -> Ran {
        let mut cmd = self.command(runtime);
        cmd.stdin(Stdio::null());
        Ran::from(cmd.output().expect("run drctl"))
    }

    /// Runs drctl to its end, at most `within`: a hang fails the test
    /// (naming the arguments) instead of holding it.
    pub fn run_within(&self, within: Duration) -> Ran {
        let runtime = tempfile::tempdir().expect("a runtime dir");
        self.spawn(runtime.path()).finish_within(within)
    }

    /// Starts drctl in the background, `runtime` as its runtime dir.
    pub fn spawn(&self, runtime: &Path) -> Running {
        let mut cmd = self.command(runtime);
        cmd.stdin(Stdio::null());
        Running::spawn(cmd)
    }
}

/// A finished drctl run: its exit code (`None` if a signal ended it), and
/// what it wrote, as text.
#[derive(Debug)]
pub struct Ran {
    /// The exit code.
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Ran {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The decision records on stdout, as [`crate::records`] gives them.
    pub fn records(&self) -> Vec<String> {
        crate::records(self.stdout.as_bytes())
    }

    /// Stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}: {}", self.stdout))
    }

    /// Each stdout line parsed as a JSON value (`--output json` of a
    /// command that writes one value a line).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON: {e}: {l}"))
            })
            .collect()
    }

    /// Itself, once it is checked that it exited `code` (the message shows
    /// what it wrote).
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Ran {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout then stderr (for a message, or a search of everything it said).
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: crate::text(&out.stdout),
            stderr: crate::text(&out.stderr),
        }
    }
}

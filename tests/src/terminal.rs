//! Running `drctl` the way a person does: under a pseudo-terminal (util-linux
//! `script`), with stdout and stderr each a terminal or a file.

use std::path::Path;
use std::process::Command;

/// `s` quoted for `sh -c`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a run under a pseudo-terminal gave.
pub struct PtyRun {
    /// Everything written to the terminal (stdout and stderr unless
    /// redirected), `\r\n` turned into `\n`.
    pub terminal: String,
    /// The exit code of drctl.
    pub code: Option<i32>,
}

/// Runs `drctl args` with its stdout and stderr on a pseudo-terminal, then
/// `redirect` (shell syntax, e.g. `2>/tmp/x`) applied on top, with `env` set
/// (and `TERM=xterm` unless `env` names `TERM`), from the repository root
/// with no user config and `runtime` as `XDG_RUNTIME_DIR`.
pub fn drctl_in_pty(args: &[&str], redirect: &str, env: &[(&str, &str)], runtime: &Path) -> PtyRun {
    let mut line: Vec<String> = vec![quote(&crate::drctl_bin().display().to_string())];
    line.extend(args.iter().map(|a| quote(a)));
    line.push(redirect.to_owned());
    let base = crate::command(&[], runtime);
    let mut cmd = Command::new("script");
    // -q: no "Script started" lines; -e: drctl's exit code; the log file is /dev/null.
    cmd.args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .current_dir(crate::repo())
        .stdin(std::process::Stdio::null())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run script (util-linux)");
    PtyRun {
        terminal: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        code: out.status.code(),
    }
}

/// Whether `text` holds an ANSI escape sequence.
pub fn has_ansi(text: &str) -> bool {
    text.contains('\u{1b}')
}

/// `text` without ANSI escape sequences (CSI `ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A real-clock `drctl watch` for one named agent, with its control socket
/// in the default directory under its own `XDG_RUNTIME_DIR` and no config
/// (what a client without a config finds; [`crate::Watcher`] has a
/// configured socket instead); stopped (SIGTERM, then killed) when dropped,
/// so a failed test leaves no watcher running.
pub struct AgentWatcher {
    child: std::process::Child,
    /// The agent's control socket.
    pub socket: std::path::PathBuf,
}

/// A quiet deployment: the agent starts on its preferred site1 and stays.
pub const QUIET: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
register-delay = "100ms"
site-timeout = "30s"
end = "1h"
"#;

impl AgentWatcher {
    /// Starts `drctl watch` for agent `name` on `scenario` (a file), with
    /// `runtime` as `XDG_RUNTIME_DIR` (its log in `runtime/NAME.log`), and
    /// waits until it watches a site.
    pub fn start(name: &str, scenario: &Path, runtime: &Path) -> AgentWatcher {
        let set = format!("agent.username={name}");
        let scenario = scenario.display().to_string();
        let args = [
            "--set",
            &set,
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &scenario,
        ];
        let child = crate::command(&args, runtime)
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::create(runtime.join(format!("{name}.log")))
                    .map(std::process::Stdio::from)
                    .unwrap_or_else(|_| std::process::Stdio::null()),
            )
            .spawn()
            .expect("spawn drctl watch");
        let socket = runtime.join("drctl").join(format!("{name}.sock"));
        let w = AgentWatcher { child, socket };
        crate::wait_until(
            &format!("{name}'s control socket"),
            std::time::Duration::from_secs(30),
            || std::os::unix::net::UnixStream::connect(&w.socket).is_ok(),
        );
        crate::wait_until(
            &format!("{name} watching a site"),
            std::time::Duration::from_secs(30),
            || {
                let out = crate::command(&["status", "--agent", name, "--output", "json"], runtime)
                    .output()
                    .expect("drctl status");
                serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    .is_ok_and(|s| s["phase"] == "watching")
            },
        );
        w
    }

    /// The watcher's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for AgentWatcher {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

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

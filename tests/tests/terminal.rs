//! drctl in a terminal (issue 16, "The terminal"): what a person sees under
//! a pseudo-terminal, and what lands in files and pipes.

use drctl_e2e::terminal::{drctl_in_pty, has_ansi, strip_ansi, AgentWatcher};
use drctl_e2e::{assert_contains, command, strings_at, Drctl};

/// The demo, watched in virtual time to its end.
fn demo_to_end() -> Drctl {
    Drctl::watch(Drctl::DEMO).virtual_to_end()
}

/// The decision lines of a text timeline: `   +12.746s  type  detail`.
fn decision_lines(text: &str) -> Vec<String> {
    strip_ansi(text)
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('+')
                && t.split_whitespace()
                    .next()
                    .is_some_and(|w| w.ends_with('s'))
        })
        .map(str::to_owned)
        .collect()
}

/// `+S.mmms`: whole milliseconds, never more digits.
fn is_millis(stamp: &str) -> bool {
    let Some(body) = stamp.strip_prefix('+').and_then(|s| s.strip_suffix('s')) else {
        return false;
    };
    let Some((secs, ms)) = body.split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && ms.len() == 3
        && ms.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn each_decision_is_printed_once_in_a_terminal() {
    let runtime = tempfile::tempdir().unwrap();
    let demo = demo_to_end();
    let args = demo.argv();
    let run = drctl_in_pty(&args, "", &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let lines = decision_lines(&run.terminal);
    // The README's nine, and D1's telephony-service-down raised and
    // cleared for each of the demo's two outages.
    assert_eq!(
        lines.len(),
        13,
        "the demo's 13 decisions, once each:\n{}",
        run.terminal
    );
    assert!(
        !run.terminal.contains("drctl::decision"),
        "no log line repeats a decision:\n{}",
        run.terminal
    );
    // On a terminal the decisions are coloured.
    assert!(has_ansi(&run.terminal), "{}", run.terminal);
}

#[test]
fn real_clock_decisions_show_milliseconds_like_virtual_ones() {
    let runtime = tempfile::tempdir().unwrap();
    let demo = Drctl::watch(Drctl::DEMO).args(&["--for", "1s"]);
    let run = drctl_in_pty(&demo.argv(), "2>/dev/null", &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let lines = decision_lines(&run.terminal);
    assert_eq!(lines.len(), 3, "{}", run.terminal);
    for line in &lines {
        let stamp = line.split_whitespace().next().unwrap_or_default();
        assert!(is_millis(stamp), "{stamp:?} in {line:?}");
    }
}

#[test]
fn colours_only_on_the_terminal_each_stream_asked_on_its_own() {
    let runtime = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_to_end();
    let args = demo.argv();

    // stdout a terminal, stderr a file: coloured decisions, plain logs.
    let err = dir.path().join("stderr.txt");
    let redirect = format!("2>{}", err.display());
    let run = drctl_in_pty(&args, &redirect, &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let logs = std::fs::read_to_string(&err).unwrap();
    assert_contains(&logs, "INFO");
    assert!(!has_ansi(&logs), "no colours in a log file: {logs:?}");
    assert!(has_ansi(&run.terminal), "{}", run.terminal);

    // stdout a file, stderr a terminal: plain decisions, coloured logs.
    let out = dir.path().join("stdout.txt");
    let redirect = format!(">{}", out.display());
    let run = drctl_in_pty(&args, &redirect, &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let decisions = std::fs::read_to_string(&out).unwrap();
    assert_eq!(decision_lines(&decisions).len(), 13, "{decisions}");
    assert!(!has_ansi(&decisions), "no colours in a file: {decisions:?}");
    assert!(has_ansi(&run.terminal), "{}", run.terminal);

    // NO_COLOR: none anywhere, even on a terminal.
    let run = drctl_in_pty(&args, "", &[("NO_COLOR", "1")], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    assert_contains(&run.terminal, "INFO");
    assert!(!has_ansi(&run.terminal), "NO_COLOR: {:?}", run.terminal);
}

/// A scenario file in `dir`.
fn scenario(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn status_watch_redraws_in_place_on_a_terminal_and_repeats_in_a_pipe() {
    let runtime = tempfile::tempdir().unwrap();
    let file = scenario(runtime.path(), drctl_e2e::terminal::QUIET);
    let _ann = AgentWatcher::start("ann", &file, runtime.path());
    let args = ["status", "--watch", "--interval", "100ms", "--count", "3"];

    let run = drctl_in_pty(&args, "", &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    // Each refresh homes the cursor and clears the screen: one status on view.
    assert_eq!(
        run.terminal.matches("\u{1b}[H\u{1b}[2J").count(),
        3,
        "{:?}",
        run.terminal
    );
    assert_eq!(
        run.terminal.matches("agent      ann").count(),
        3,
        "{}",
        run.terminal
    );

    // Not a terminal: the statuses one after another, nothing to redraw.
    let out = command(&args, runtime.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!has_ansi(&text), "{text:?}");
    assert_eq!(text.matches("agent      ann").count(), 3, "{text}");
    let json = command(
        &[
            "status",
            "--watch",
            "--interval",
            "100ms",
            "--count",
            "2",
            "--output",
            "json",
        ],
        runtime.path(),
    )
    .output()
    .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["agent"], "ann");
}

#[test]
fn without_a_config_clients_find_the_watchers_running_here() {
    let runtime = tempfile::tempdir().unwrap();
    let file = scenario(runtime.path(), drctl_e2e::terminal::QUIET);
    let ann = AgentWatcher::start("ann", &file, runtime.path());

    // One watcher: found without naming it.
    let status = Drctl::new(&["status", "--output", "json"])
        .run_in(runtime.path())
        .expect_code(0)
        .json();
    assert_eq!(status["agent"], "ann");
    assert_eq!(status["pid"], ann.pid());

    // Two: status lists both; pause wants a name; --agent picks one.
    let bob = AgentWatcher::start("bob", &file, runtime.path());
    let out = command(&["status"], runtime.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_contains(
        &text,
        "2 watchers run here; drctl status --agent NAME for one",
    );
    for (name, pid) in [("ann", ann.pid()), ("bob", bob.pid())] {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default();
        assert!(
            row.contains(&pid.to_string()) && row.contains("site1"),
            "{text}"
        );
    }
    let out = command(&["pause"], runtime.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2 watchers run here: ann (") && err.contains("name one with --agent NAME"),
        "{err}"
    );

    Drctl::new(&["pause", "--agent", "bob"])
        .run_in(runtime.path())
        .expect_code(0);
    let paused = |name: &str| {
        let out = command(
            &["status", "--agent", name, "--output", "json"],
            runtime.path(),
        )
        .output()
        .unwrap();
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        s["paused"].as_bool()
    };
    assert_eq!(paused("bob"), Some(true));
    assert_eq!(paused("ann"), Some(false));
    let out = command(&["resume", "--agent", "bob"], runtime.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(paused("bob"), Some(false));
}

#[test]
fn switch_after_a_startup_relocation_is_verified_from_where_the_drill_started() {
    // The demo starts on site2 and relocates to site1 first (S4).
    let out = Drctl::mock("switch", Drctl::DEMO).arg("--yes").run();
    let err = &out.stderr;
    assert_eq!(out.code, Some(0), "{err}");
    assert_contains(
        err,
        "switched site1 -> site2: telephony ON, DN back in service",
    );
    // The table times the drill, not the relocation: the DN (register-delay 2 s).
    assert_contains(err, "DN back in service         2.000s");
}

#[test]
fn switch_dry_run_checks_the_target_and_says_who_acts() {
    let runtime = tempfile::tempdir().unwrap();
    let demo = ["--backend", "mock", "--scenario", Drctl::DEMO];
    let run = |extra: &[&str]| {
        let mut args = vec!["switch"];
        args.extend_from_slice(extra);
        command(&args, runtime.path()).output().unwrap()
    };
    let out = run(&[&["--dry-run", "--to", "site9"][..], &demo].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_contains(
        &err,
        "--to site9: unknown site; expected one of: site1, site2",
    );
    let out = run(&[&["--dry-run"][..], &demo].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_contains(&text, "performed by this process (pid ");

    // A running watcher acts: the plan names it; an unknown site is refused
    // before it reaches the watcher's engine.
    let file = scenario(runtime.path(), drctl_e2e::terminal::QUIET);
    let ann = AgentWatcher::start("ann", &file, runtime.path());
    let out = run(&["--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "plan: agent ann, site1 -> site2 (reason operator), performed by the running drctl watch (pid {}",
            ann.pid()
        )),
        "{text}"
    );
    let out = run(&["--yes", "--to", "site9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_contains(
        &err,
        "--to site9: unknown site; expected one of: site1, site2",
    );
    let status = command(&["status", "--output", "json"], runtime.path())
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let types = strings_at(&status["last_decisions"], "type");
    assert_eq!(types, ["startup-connected"], "nothing suppressed: {status}");

    // The confirmation names the agent, both sites and who acts.
    let run = drctl_in_pty(
        &["switch", "--to", "site2", "--reason", "drill"],
        "",
        &[],
        runtime.path(),
    );
    assert_eq!(run.code, Some(2), "{}", run.terminal);
    assert!(
        run.terminal.contains(&format!(
            "Switch agent ann from site1 to site2, performed by the running drctl watch (pid {}",
            ann.pid()
        )),
        "{}",
        run.terminal
    );
    assert_contains(&run.terminal, "not confirmed; nothing was changed");
}

#[test]
fn version_names_the_git_commit_and_the_plugin_abi() {
    let out = drctl_e2e::drctl(&["--version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(drctl_e2e::repo())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(
        text.trim(),
        format!(
            "drctl {} (git {head}, plugin ABI 1.2)",
            env!("CARGO_PKG_VERSION")
        ),
    );
}

#[test]
fn completions_complete_in_bash_and_every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "elvish"] {
        let out = drctl_e2e::drctl(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}");
        assert!(
            script.contains("status") && script.contains("agent"),
            "{shell}: {script}"
        );
    }
    // The bash one, sourced by bash, completes subcommands and flags.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drctl.bash");
    std::fs::write(&file, drctl_e2e::drctl(&["completions", "bash"]).stdout).unwrap();
    let probe = format!(
        "source {}; COMP_WORDS=(drctl sta); COMP_CWORD=1; _drctl drctl sta drctl; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(drctl status --a); COMP_CWORD=2; _drctl drctl --a status; echo \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "startup status\n--agent\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn man_pages_render_with_man() {
    let out = drctl_e2e::drctl(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        page.starts_with(".ie") && page.contains(".TH drctl 1"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = drctl_e2e::drctl(&["man", "--dir", &d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "drctl.1",
        "drctl-switch.1",
        "drctl-status.1",
        "drctl-completions.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    // man(1) renders one: the switch page documents --dry-run.
    let rendered = std::process::Command::new("man")
        .args([
            "-l",
            &dir.path().join("drctl-switch.1").display().to_string(),
        ])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output();
    if let Ok(r) = rendered {
        let text = String::from_utf8_lossy(&r.stdout);
        assert_contains(&text, "--dry-run");
    }
}

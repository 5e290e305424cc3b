//! drctl in a terminal (issue 16, "The terminal"): what a person sees under
//! a pseudo-terminal, and what lands in files and pipes.

use drctl_e2e::terminal::{drctl_in_pty, has_ansi, strip_ansi};

const DEMO: [&str; 7] = [
    "watch",
    "--backend",
    "mock",
    "--scenario",
    "plugins/mock/scenarios/demo.toml",
    "--clock",
    "virtual",
];

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
    let mut args = DEMO.to_vec();
    args.push("--until-end");
    let run = drctl_in_pty(&args, "", &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let lines = decision_lines(&run.terminal);
    assert_eq!(
        lines.len(),
        9,
        "the README's 9 decisions, once each:\n{}",
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
    let args = [
        "watch",
        "--backend",
        "mock",
        "--scenario",
        "plugins/mock/scenarios/demo.toml",
        "--for",
        "1s",
    ];
    let run = drctl_in_pty(&args, "2>/dev/null", &[], runtime.path());
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
    let mut args = DEMO.to_vec();
    args.push("--until-end");

    // stdout a terminal, stderr a file: coloured decisions, plain logs.
    let err = dir.path().join("stderr.txt");
    let redirect = format!("2>{}", err.display());
    let run = drctl_in_pty(&args, &redirect, &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let logs = std::fs::read_to_string(&err).unwrap();
    assert!(logs.contains("INFO"), "{logs}");
    assert!(!has_ansi(&logs), "no colours in a log file: {logs:?}");
    assert!(has_ansi(&run.terminal), "{}", run.terminal);

    // stdout a file, stderr a terminal: plain decisions, coloured logs.
    let out = dir.path().join("stdout.txt");
    let redirect = format!(">{}", out.display());
    let run = drctl_in_pty(&args, &redirect, &[], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    let decisions = std::fs::read_to_string(&out).unwrap();
    assert_eq!(decision_lines(&decisions).len(), 9, "{decisions}");
    assert!(!has_ansi(&decisions), "no colours in a file: {decisions:?}");
    assert!(has_ansi(&run.terminal), "{}", run.terminal);

    // NO_COLOR: none anywhere, even on a terminal.
    let run = drctl_in_pty(&args, "", &[("NO_COLOR", "1")], runtime.path());
    assert_eq!(run.code, Some(0), "{}", run.terminal);
    assert!(run.terminal.contains("INFO"), "{}", run.terminal);
    assert!(!has_ansi(&run.terminal), "NO_COLOR: {:?}", run.terminal);
}

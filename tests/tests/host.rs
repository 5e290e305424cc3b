//! The host loop's faults end to end (issue 12, items 7, 8, 11, 12, 14, 15):
//! host-raised alarms in status and metrics, `replay --speed` bounds, control
//! characters in logged free text, SIGHUP, an interrupted `replay --check`,
//! and a `--for` end landing on a timer.

use drctl_e2e::{
    assert_contains, assert_replays_identically, flapping_scenario, free_port, scrape,
    test_scenario, Drctl, TestDir,
};
use std::path::Path;

/// A virtual-clock recording of `scenario` (a path) in `dir`, to its end.
fn recorded(dir: &TestDir, scenario: &str) -> String {
    let rec = dir.at("run.jsonl");
    let out = dir.run(
        &Drctl::watch(scenario)
            .arg("-q")
            .virtual_to_end()
            .record(&rec),
    );
    assert!(out.success(), "{}", out.stderr);
    rec
}

/// A virtual-clock recording of the scenario `toml` in `dir`, to its end.
fn recorded_text(dir: &TestDir, toml: &str) -> String {
    let scenario = dir.file("scenario.toml", toml);
    recorded(dir, &scenario)
}

#[test]
fn a_failed_recording_is_an_active_alarm_in_status_and_metrics() {
    let dir = TestDir::new();
    let port = free_port();
    let config = dir.control_config(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut watcher = Drctl::watch(test_scenario("quiet.toml"))
        .config(&config)
        .json()
        .record("/dev/full")
        .spawn(dir.path());
    // The first decision's flush fails: the alarm is raised as a decision...
    watcher.lines.wait_for("\"alarm\":\"recording-failed\"");
    // ... and it is up, for status (control socket) and metrics alike.
    let status = dir.run(&Drctl::new(&["status", "--output", "json"]).config(&config));
    assert!(status.success(), "{}", status.stderr);
    let status = status.json();
    assert_eq!(
        status["alarms"],
        serde_json::json!(["recording-failed"]),
        "{status}"
    );
    let human = dir.run(&Drctl::new(&["status"]).config(&config)).stdout;
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("alarms") && l.contains("recording-failed")),
        "{human}"
    );
    let metrics = scrape(port).expect("the metrics endpoint answers");
    assert_contains(
        &metrics,
        "drctl_alarm_active{agent=\"agent\",alarm=\"recording-failed\"} 1",
    );
    assert_contains(&metrics, "drctl_alarms_active{agent=\"agent\"} 1");
    watcher.signal(libc::SIGTERM);
    let out = watcher.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn replay_refuses_a_speed_outside_its_range_naming_the_range() {
    let dir = TestDir::new();
    let rec = recorded(&dir, &test_scenario("quiet.toml"));
    for speed in [
        "1e308", "1e-300", "nan", "inf", "-inf", "0", "-1", "1e7", "0.0001",
    ] {
        let out = Drctl::new(&["replay", &rec, "--speed", speed]).run();
        let stderr = &out.stderr;
        assert_eq!(out.code, Some(2), "--speed {speed}: {stderr}");
        assert!(
            stderr.contains("expected a speed factor from 0.001 to 1000000"),
            "--speed {speed}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--speed {speed}");
    }
    // The top bound is accepted (a minute in well under a second).
    let out = Drctl::new(&["-q", "replay", &rec, "--speed", "1000000"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn control_characters_in_a_logout_reason_forge_no_line() {
    // -v: decisions are logged at debug (stdout carries them at info).
    let out = Drctl::watch(test_scenario("forged-log-line.toml"))
        .virtual_to_end()
        .args(&["-v"])
        .run();
    assert!(out.success(), "{}", out.stderr);
    let escaped = "odd\\n2026-01-01T00:00:00.000000Z ERROR drctl: forged\\r\\tline\\u{1b}[31m";
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    for (name, all) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !all.contains(['\u{1b}', '\r', '\t']),
            "{name} carries control characters: {all:?}"
        );
        assert!(!all.contains("\nforged"), "{name}: {all}");
    }
    // stdout: every line a decision line, the reason escaped on its own.
    for line in stdout.lines() {
        assert!(
            line.trim_start().starts_with('+'),
            "not a decision line: {line:?}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("logout-classified")
                && l.contains(&format!("reason {escaped}: manual"))),
        "{stdout}"
    );
    // stderr: every line a log line (time, level, target), none forged.
    for line in stderr.lines() {
        let mut words = line.split_whitespace();
        let time = words.next().unwrap_or_default();
        let level = words.next().unwrap_or_default();
        assert!(
            time.starts_with("20") && time.ends_with('Z') && time != "2026-01-01T00:00:00.000000Z",
            "not a log line: {line:?}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "not a log line: {line:?}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("logout-classified") && l.contains(escaped)),
        "{stderr}"
    );
}

#[test]
fn sighup_stops_a_watch_cleanly_like_sigterm() {
    let dir = TestDir::new();
    let (mut watcher, rec) = dir.spawn_recorded_watch("timer-at-5s.toml");
    let first = watcher.lines.next_line();
    assert_contains(&first, "startup-connected");
    watcher.signal(libc::SIGHUP);
    let out = watcher.finish();
    // The clean stop of SIGTERM: exit 0, `shutdown` sent, the recording closed.
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_contains(&out.stderr, "SIGHUP");
    let recording = std::fs::read_to_string(&rec).unwrap();
    assert!(recording.ends_with('\n'));
    let tail: Vec<&str> = recording.lines().rev().take(3).collect();
    assert!(
        tail.iter()
            .any(|l| l.contains("\"kind\":\"operator\",\"action\":\"shutdown\"")),
        "{tail:#?}"
    );
    assert!(
        tail.iter()
            .any(|l| l.contains("\"command\":{\"type\":\"shutdown\"}")),
        "{tail:#?}"
    );
    assert_replays_identically(rec.as_ref(), &["--tolerance", "10s"]);
}

/// `replay --check` of `rec` with `extra`, stopped by `signal` once it
/// handles signals; exit 128 + signal and "interrupted", never a verdict.
fn interrupted_replay(rec: &str, extra: &[&str], signal: i32, runtime: &Path) {
    let replay = Drctl::new(&["replay", rec, "--check"])
        .args(extra)
        .spawn(runtime);
    replay.wait_handling(signal);
    replay.signal(signal);
    let out = replay.finish();
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, Some(128 + signal), "{extra:?}: {stdout}{stderr}");
    assert!(stdout.starts_with("interrupted: "), "{extra:?}: {stdout}");
    assert!(
        !stdout.contains("differs") && !stdout.contains("identical"),
        "{stdout}"
    );
    assert_contains(stderr, "interrupted");
}

#[test]
fn a_replay_check_stopped_by_a_signal_says_interrupted_with_128_plus_the_signal() {
    let dir = TestDir::new();
    // 5 minutes of flaps: at real speed, the signal always lands mid-run.
    let long = recorded_text(&dir, &flapping_scenario(300));
    interrupted_replay(&long, &["--speed", "1"], libc::SIGTERM, dir.path());
    interrupted_replay(&long, &["--speed", "1"], libc::SIGINT, dir.path());
    // JSON says it too.
    let replay = Drctl::new(&["replay", &long, "--check", "--speed", "1"])
        .json()
        .spawn(dir.path());
    replay.wait_handling(libc::SIGTERM);
    replay.signal(libc::SIGTERM);
    let out = replay.finish();
    assert_eq!(out.code, Some(143));
    let verdict = out.json();
    assert_eq!(verdict["check"], "interrupted", "{verdict}");
    assert_eq!(verdict["signal"], "SIGTERM", "{verdict}");
    // On the virtual clock, which never waits, a large recording stops too.
    let big = TestDir::new();
    let large = recorded_text(&big, &flapping_scenario(20_000));
    interrupted_replay(&large, &[], libc::SIGTERM, dir.path());
}

/// `watch --for DURATION --record` of the test scenario `scenario` with
/// `clock`; the recording.
fn watch_for(dir: &TestDir, scenario: &str, clock: &str, duration: &str) -> String {
    let rec = dir.at(&format!("for-{clock}.jsonl"));
    let out = dir.run(
        &Drctl::watch(test_scenario(scenario))
            .args(&["-q", "--clock", clock, "--for", duration])
            .record(&rec),
    );
    assert!(out.success(), "{}", out.stderr);
    rec
}

#[test]
fn a_for_end_on_a_timer_deadline_replays_identically() {
    // Virtual clock: the end and the timer at the same nanosecond.
    let dir = TestDir::new();
    let rec = watch_for(&dir, "timer-at-5s.toml", "virtual", "5s");
    let recording = std::fs::read_to_string(&rec).unwrap();
    let at = |needle: &str| {
        recording
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {recording}"))
    };
    // The timer fired at 5 s, before the end's shutdown, and the file says so.
    assert!(
        at("\"switchover-started\"") < at("\"action\":\"shutdown\""),
        "{recording}"
    );
    assert_replays_identically(rec.as_ref(), &[]);
    // Real clock: the end and the timer within microseconds, either first.
    // What is checked is the order; on a loaded machine a timer may fire
    // tens of milliseconds late, hence the wide tolerance.
    for run in 0..6 {
        let dir = TestDir::new();
        let rec = watch_for(&dir, "timer-at-500ms.toml", "real", "500ms");
        eprintln!("real-clock run {run}");
        assert_replays_identically(rec.as_ref(), &["--tolerance", "10s"]);
    }
}

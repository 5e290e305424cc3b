//! The host loop's faults end to end (issue 12, items 7, 8, 11, 12, 14, 15):
//! host-raised alarms in status and metrics, `replay --speed` bounds, control
//! characters in logged free text, SIGHUP, an interrupted `replay --check`,
//! and a `--for` end landing on a timer.

use drctl_e2e::{command, drctl, flapping_scenario, free_port, scrape};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Writes `body` to `dir/name`.
fn file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// A started drctl with its stdout lines arriving on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    /// A failed test leaves no drctl behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn spawn(args: &[&str], runtime: &Path) -> Running {
        let mut child = command(args, runtime)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running { child, lines }
    }

    /// The next stdout line (the first decision of a watch).
    fn first_line(&self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("a first line on stdout")
    }

    /// Waits until the process handles `signal` (its handler is installed),
    /// read from `/proc/<pid>/status`: from then on the signal cannot kill it
    /// by default.
    fn wait_handling(&self, signal: i32) {
        let path = format!("/proc/{}/status", self.child.id());
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

    fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit (bounded) and collects what is left of the output.
    fn finish(mut self) -> Output {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("drctl did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = Vec::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_end(&mut stderr).unwrap();
        }
        let stdout: Vec<String> = self.lines.iter().collect();
        Output {
            status,
            stdout: stdout.join("\n").into_bytes(),
            stderr,
        }
    }
}

/// A virtual-clock recording of `scenario` (TOML text) in `dir`.
fn recorded(dir: &Path, scenario: &str) -> PathBuf {
    let sc = file(dir, "scenario.toml", scenario);
    let rec = dir.join("run.jsonl");
    let out = drctl(&[
        "-q",
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &sc.to_string_lossy(),
        "--clock",
        "virtual",
        "--until-end",
        "--record",
        &rec.to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    rec
}

/// `replay --check` of `rec` (with `extra`), which must say identical.
fn assert_replays_identically(rec: &Path, extra: &[&str]) {
    let rec_arg = rec.to_string_lossy();
    let mut args = vec!["replay", &rec_arg, "--check"];
    args.extend_from_slice(extra);
    let out = drctl(&args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}\n{}",
        text(&out.stderr),
        std::fs::read_to_string(rec).unwrap_or_default()
    );
    assert!(stdout.starts_with("identical:"), "{stdout}");
}

/// Site1 up all along; a watcher on it for a minute.
const QUIET: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
register-delay = "100ms"
end = "1m"
"#;

#[test]
fn a_failed_recording_is_an_active_alarm_in_status_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = file(
        dir.path(),
        "drctl.toml",
        &format!(
            "[control]\nsocket = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
            dir.path().join("ctl.sock").display()
        ),
    );
    let config = config.to_string_lossy().into_owned();
    let sc = file(dir.path(), "quiet.toml", QUIET);
    let watcher = Running::spawn(
        &[
            "--config",
            &config,
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &sc.to_string_lossy(),
            "--output",
            "json",
            "--record",
            "/dev/full",
        ],
        dir.path(),
    );
    // The first decision's flush fails: the alarm is raised as a decision...
    let deadline = Instant::now() + PATIENCE;
    while !watcher
        .lines
        .recv_timeout(PATIENCE)
        .unwrap()
        .contains("\"alarm\":\"recording-failed\"")
    {
        assert!(Instant::now() < deadline, "no recording-failed decision");
    }
    // ... and it is up, for status (control socket) and metrics alike.
    let status = command(
        &["--config", &config, "status", "--output", "json"],
        dir.path(),
    )
    .output()
    .unwrap();
    assert!(status.status.success(), "{}", text(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["alarms"],
        serde_json::json!(["recording-failed"]),
        "{status}"
    );
    let human = command(&["--config", &config, "status"], dir.path())
        .output()
        .unwrap();
    let human = text(&human.stdout);
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("alarms") && l.contains("recording-failed")),
        "{human}"
    );
    let metrics = scrape(port).expect("the metrics endpoint answers");
    assert!(
        metrics.contains("drctl_alarm_active{agent=\"agent\",alarm=\"recording-failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drctl_alarms_active{agent=\"agent\"} 1"),
        "{metrics}"
    );
    watcher.signal(libc::SIGTERM);
    let out = watcher.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn replay_refuses_a_speed_outside_its_range_naming_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorded(dir.path(), QUIET);
    let rec = rec.to_string_lossy();
    for speed in [
        "1e308", "1e-300", "nan", "inf", "-inf", "0", "-1", "1e7", "0.0001",
    ] {
        let out = drctl(&["replay", &rec, "--speed", speed]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--speed {speed}: {stderr}");
        assert!(
            stderr.contains("expected a speed factor from 0.001 to 1000000"),
            "--speed {speed}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "--speed {speed}");
    }
    // The top bound is accepted (a minute in well under a second).
    let out = drctl(&["-q", "replay", &rec, "--speed", "1000000"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn control_characters_in_a_logout_reason_forge_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let sc = file(
        dir.path(),
        "evil.toml",
        r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
end = "5s"

[[events]]
at = "2s"
logout = "odd\n2026-01-01T00:00:00.000000Z ERROR drctl: forged\r\tline\u001b[31m"
"#,
    );
    let out = drctl(&[
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &sc.to_string_lossy(),
        "--clock",
        "virtual",
        "--until-end",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let escaped = "odd\\n2026-01-01T00:00:00.000000Z ERROR drctl: forged\\r\\tline\\u{1b}[31m";
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
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

/// Site1's telephony goes off at 4 s; with a 1 s site-timeout the switchover
/// timer is due at 5 s (on the real clock, 5 s plus the event's handling).
const TIMER_AT_5S: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
site-timeout = "1s"
register-delay = "100ms"
end = "2m"

[[events]]
at = "4s"
site = "site1"
set = { telephony = "off" }
"#;

#[test]
fn sighup_stops_a_watch_cleanly_like_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sc = file(dir.path(), "s.toml", TIMER_AT_5S);
    let rec = dir.path().join("run.jsonl");
    let watcher = Running::spawn(
        &[
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &sc.to_string_lossy(),
            "--output",
            "json",
            "--record",
            &rec.to_string_lossy(),
        ],
        dir.path(),
    );
    let first = watcher.first_line();
    assert!(first.contains("startup-connected"), "{first}");
    watcher.signal(libc::SIGHUP);
    let out = watcher.finish();
    // The clean stop of SIGTERM: exit 0, `shutdown` sent, the recording closed.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("SIGHUP"),
        "{}",
        text(&out.stderr)
    );
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
    assert_replays_identically(&rec, &["--tolerance", "10s"]);
}

/// `replay --check` of `rec` with `extra`, stopped by `signal` once it
/// handles signals; exit 128 + signal and "interrupted", never a verdict.
fn interrupted_replay(rec: &Path, extra: &[&str], signal: i32, runtime: &Path) {
    let rec = rec.to_string_lossy();
    let mut args = vec!["replay", &rec, "--check"];
    args.extend_from_slice(extra);
    let replay = Running::spawn(&args, runtime);
    replay.wait_handling(signal);
    replay.signal(signal);
    let out = replay.finish();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "{extra:?}: {stdout}{stderr}"
    );
    assert!(stdout.starts_with("interrupted: "), "{extra:?}: {stdout}");
    assert!(
        !stdout.contains("differs") && !stdout.contains("identical"),
        "{stdout}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_replay_check_stopped_by_a_signal_says_interrupted_with_128_plus_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    // 5 minutes of flaps: at real speed, the signal always lands mid-run.
    let long = recorded(dir.path(), &flapping_scenario(300));
    interrupted_replay(&long, &["--speed", "1"], libc::SIGTERM, dir.path());
    interrupted_replay(&long, &["--speed", "1"], libc::SIGINT, dir.path());
    // JSON says it too.
    let rec = long.to_string_lossy();
    let replay = Running::spawn(
        &[
            "replay", &rec, "--check", "--speed", "1", "--output", "json",
        ],
        dir.path(),
    );
    replay.wait_handling(libc::SIGTERM);
    replay.signal(libc::SIGTERM);
    let out = replay.finish();
    assert_eq!(out.status.code(), Some(143));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["check"], "interrupted", "{verdict}");
    assert_eq!(verdict["signal"], "SIGTERM", "{verdict}");
    // On the virtual clock, which never waits, a large recording stops too.
    let big = tempfile::tempdir().unwrap();
    let large = recorded(big.path(), &flapping_scenario(20_000));
    interrupted_replay(&large, &[], libc::SIGTERM, dir.path());
}

/// [`TIMER_AT_5S`] scaled down: telephony off at 300 ms, timer due at 500 ms.
const TIMER_AT_500MS: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
site-timeout = "200ms"
register-delay = "50ms"
end = "1m"

[[events]]
at = "300ms"
site = "site1"
set = { telephony = "off" }
"#;

/// `watch --for DURATION --record` of `scenario` with `clock`; the recording.
fn watch_for(dir: &Path, scenario: &str, clock: &str, duration: &str) -> PathBuf {
    let sc = file(dir, "s.toml", scenario);
    let rec = dir.join(format!("for-{clock}.jsonl"));
    let out = command(
        &[
            "-q",
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &sc.to_string_lossy(),
            "--clock",
            clock,
            "--for",
            duration,
            "--record",
            &rec.to_string_lossy(),
        ],
        dir,
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    rec
}

#[test]
fn a_for_end_on_a_timer_deadline_replays_identically() {
    // Virtual clock: the end and the timer at the same nanosecond.
    let dir = tempfile::tempdir().unwrap();
    let rec = watch_for(dir.path(), TIMER_AT_5S, "virtual", "5s");
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
    assert_replays_identically(&rec, &[]);
    // Real clock: the end and the timer within microseconds, either first.
    // What is checked is the order; on a loaded machine a timer may fire
    // tens of milliseconds late, hence the wide tolerance.
    for run in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let rec = watch_for(dir.path(), TIMER_AT_500MS, "real", "500ms");
        eprintln!("real-clock run {run}");
        assert_replays_identically(&rec, &["--tolerance", "10s"]);
    }
}

//! Process faults (issue 8): SIGTERM in the middle of a switchover, SIGKILL
//! in the middle of a recording.

use drctl_e2e::{command, drctl};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Connects take 2 s; site1's telephony goes off at 3 s, so with a 1 s
/// site-timeout the switchover starts at about 4 s and its connect to site2
/// is still in flight until about 6 s.
const SLOW_SWITCH: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
connect-latency = "2s"
register-delay = "100ms"
site-timeout = "1s"
end = "2m"

[[events]]
at = "3s"
site = "site1"
set = { telephony = "off" }
"#;

fn spawn_watch(dir: &Path, scenario: &str, record: &Path) -> (Child, mpsc::Receiver<String>) {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let mut child = command(
        &[
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &path.to_string_lossy(),
            "--output",
            "json",
            "--record",
            &record.to_string_lossy(),
        ],
        dir,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for a decision line containing `needle`; returns every line seen.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:#?}"));
        let found = line.contains(needle);
        seen.push(line);
        if found {
            return;
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn sigterm_during_a_switchover_stops_cleanly_and_closes_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("run.jsonl");
    let (mut child, rx) = spawn_watch(dir.path(), SLOW_SWITCH, &rec);
    let mut seen = Vec::new();
    wait_for(&rx, "\"switchover-started\"", &mut seen);
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    // A clean stop is exit 0 (README, Reliability).
    assert_eq!(status.code(), Some(0));
    seen.extend(rx.iter());
    assert!(
        !seen.iter().any(|l| l.contains("switchover-completed")),
        "stopped mid-switchover: {seen:#?}"
    );
    // The recording is complete: it ends with the operator's shutdown and its command.
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.ends_with('\n'));
    assert!(
        text.contains("\"kind\":\"operator\",\"action\":\"shutdown\""),
        "{text}"
    );
    let check = drctl(&["replay", &rec.to_string_lossy(), "--check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn sigkill_during_a_recording_leaves_a_file_that_replays() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("run.jsonl");
    let (mut child, rx) = spawn_watch(dir.path(), SLOW_SWITCH, &rec);
    let mut seen = Vec::new();
    wait_for(&rx, "\"switchover-started\"", &mut seen);
    signal(&child, "-KILL");
    let _ = child.wait();
    let text = std::fs::read_to_string(&rec).unwrap();
    // Flushed at every decision: the switchover's start made it to disk.
    assert!(text.contains("\"type\":\"switchover-started\""), "{text}");
    assert!(!text.contains("\"action\":\"shutdown\""));
    let check = drctl(&["replay", &rec.to_string_lossy(), "--check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("identical:"), "{stdout}");
}

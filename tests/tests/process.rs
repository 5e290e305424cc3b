//! Process faults (issue 8): SIGTERM in the middle of a switchover, SIGKILL
//! in the middle of a recording; at a stop, alarm sinks get 5 s to drain.

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
    // The recording is complete: it ends with the operator's shutdown, then
    // the shutdown command and its answer.
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.ends_with('\n'));
    let recorded = drctl_e2e::recorded(&rec);
    let last: Vec<String> = recorded
        .iter()
        .map(|r| {
            let what = [&r["action"], &r["command"]["type"], &r["result"]["type"]]
                .iter()
                .find_map(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            format!("{} {what}", r["kind"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        last[last.len() - 3..],
        ["operator shutdown", "command shutdown", "result done"],
        "{text}"
    );
    assert_eq!(
        last.iter().filter(|l| l.contains("shutdown")).count(),
        2,
        "one shutdown, at the end: {text}"
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

/// Starts on site2 and relocates to site1 at once: switchover started at
/// 0.2 s, completed at 0.4 s (two notifications for a sink).
const RELOCATE: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site2"
connect-latency = "200ms"
register-delay = "100ms"
end = "2m"
"#;

/// `drctl watch` of [`RELOCATE`] with `sinks` (TOML) in its config; stdout lines.
fn spawn_with_sinks(dir: &Path, sinks: &str) -> (Child, drctl_e2e::Lines) {
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, RELOCATE).unwrap();
    let config = dir.join("drctl.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nsocket = \"{}\"\n{sinks}",
            dir.join("ctl.sock").display()
        ),
    )
    .unwrap();
    let mut child = command(
        &[
            "--config",
            &config.to_string_lossy(),
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &scenario.to_string_lossy(),
            "--output",
            "json",
        ],
        dir,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = drctl_e2e::Lines::of(&mut child);
    (child, lines)
}

/// A notification still queued when SIGTERM comes goes out before drctl
/// exits: the webhook holds its first request until the signal has been
/// sent, so the second one can only be delivered during the stop.
#[test]
fn queued_notifications_are_delivered_at_a_stop() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
    let (signalled, wait_signal) = mpsc::channel::<()>();
    let (got, bodies) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for (n, mut req) in server.incoming_requests().enumerate() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
            let _ = got.send(body);
            if n == 0 {
                let _ = wait_signal.recv_timeout(Duration::from_secs(30));
            }
            let _ = req.respond(tiny_http::Response::empty(204));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sinks =
        format!("[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"20s\"\n");
    let (mut child, mut lines) = spawn_with_sinks(dir.path(), &sinks);
    lines.wait_for("\"switchover-completed\"");
    let first = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.contains("\"state\":\"started\""), "{first}");
    signal(&child, "-TERM");
    signalled.send(()).unwrap();
    let status = drctl_e2e::wait_within(&mut child, Duration::from_secs(7)).expect("stopped");
    assert_eq!(status.code(), Some(0));
    let second = bodies
        .try_recv()
        .expect("the queued notification, delivered at the stop");
    assert!(
        second.contains("\"event\":\"switchover\",\"state\":\"completed\""),
        "{second}"
    );
}

/// A sink that hangs (an exec sink that never ends, with a 1 h timeout) does
/// not hold the stop past the 5 s drain: its notifications are dropped with
/// a warning and drctl exits 0.
#[test]
fn a_hung_sink_does_not_hold_the_stop_past_the_drain_bound() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("called");
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"1h\"\n\
         command = [\"sh\", \"-c\", \"echo $DRCTL_STATE >> {}; exec sleep 3600\"]\n",
        marker.display()
    );
    let (mut child, mut lines) = spawn_with_sinks(dir.path(), &sinks);
    lines.wait_for("\"switchover-completed\"");
    // The sink is running (and hangs): the second notification is queued behind it.
    drctl_e2e::wait_until("the exec sink to start", Duration::from_secs(30), || {
        std::fs::read_to_string(&marker).is_ok_and(|m| m == "started\n")
    });
    let stop = Instant::now();
    signal(&child, "-TERM");
    // The documented bound (5 s), with 2 s to spare for a loaded machine.
    let Some(status) = drctl_e2e::wait_within(&mut child, Duration::from_secs(7)) else {
        let _ = child.kill();
        panic!("a hung sink held the stop past 7 s");
    };
    let took = stop.elapsed();
    assert_eq!(status.code(), Some(0));
    // It waited for the sink (the 5 s grace) before giving up on it.
    assert!(took >= Duration::from_millis(4900), "{took:?}");
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    assert!(
        stderr.contains("undelivered notifications dropped after 5s at shutdown"),
        "{stderr}"
    );
}

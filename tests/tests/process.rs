//! Process faults (issue 8): SIGTERM in the middle of a switchover, SIGKILL
//! in the middle of a recording; at a stop, alarm sinks get 5 s to drain.

use drctl_e2e::{
    assert_contains, assert_replays_identically, recorded_steps, test_scenario, Drctl, Ran,
    Running, TestDir,
};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `drctl watch --output json --record` of `slow-switch.toml` (a switchover
/// starts at about 4 s and takes 2 s), sent `signal` once the switchover has
/// started: what it wrote, and its recording (in the returned directory).
fn signal_mid_switchover(signal: i32) -> (Ran, String, TestDir) {
    let dir = TestDir::new();
    let (mut watch, rec) = dir.spawn_recorded_watch("slow-switch.toml");
    watch.lines.wait_for("\"switchover-started\"");
    watch.signal(signal);
    (watch.finish(), rec, dir)
}

#[test]
fn sigterm_during_a_switchover_stops_cleanly_and_closes_the_recording() {
    let (out, rec, _dir) = signal_mid_switchover(libc::SIGTERM);
    // A clean stop is exit 0 (README, Reliability).
    assert_eq!(out.code, Some(0));
    assert!(
        !out.stdout.contains("switchover-completed"),
        "stopped mid-switchover: {}",
        out.stdout
    );
    // The recording is complete: it ends with the operator's shutdown, then
    // the shutdown command and its answer.
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text.ends_with('\n'));
    let last = recorded_steps(rec.as_ref());
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
    assert_replays_identically(rec.as_ref(), &[]);
}

#[test]
fn sigkill_during_a_recording_leaves_a_file_that_replays() {
    let (_, rec, _dir) = signal_mid_switchover(libc::SIGKILL);
    let text = std::fs::read_to_string(&rec).unwrap();
    // Flushed at every decision: the switchover's start made it to disk.
    assert_contains(&text, "\"type\":\"switchover-started\"");
    assert!(!text.contains("\"action\":\"shutdown\""));
    assert_replays_identically(rec.as_ref(), &[]);
}

/// `drctl watch --output json` of `relocate.toml` (a switchover started at
/// 0.2 s and completed at 0.4 s: two notifications) with `sinks` (TOML) in
/// its config, once the switchover has completed.
fn watch_relocation_with_sinks(dir: &TestDir, sinks: &str) -> Running {
    let mut watch = Drctl::watch(test_scenario("relocate.toml"))
        .config(dir.control_config(sinks))
        .json()
        .spawn(dir.path());
    watch.lines.wait_for("\"switchover-completed\"");
    watch
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
    let dir = TestDir::new();
    let sinks =
        format!("[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"20s\"\n");
    let mut watch = watch_relocation_with_sinks(&dir, &sinks);
    let first = bodies.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_contains(&first, "\"state\":\"started\"");
    watch.signal(libc::SIGTERM);
    signalled.send(()).unwrap();
    let status = watch.wait_within(Duration::from_secs(7)).expect("stopped");
    assert_eq!(status.code(), Some(0));
    let second = bodies
        .try_recv()
        .expect("the queued notification, delivered at the stop");
    assert_contains(&second, "\"event\":\"switchover\",\"state\":\"completed\"");
}

/// A sink that hangs (an exec sink that never ends, with a 1 h timeout) does
/// not hold the stop past the 5 s drain: its notifications are dropped with
/// a warning and drctl exits 0.
#[test]
fn a_hung_sink_does_not_hold_the_stop_past_the_drain_bound() {
    let dir = TestDir::new();
    let marker = dir.at("called");
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"1h\"\n\
         command = [\"sh\", \"-c\", \"echo $DRCTL_STATE >> {marker}; exec sleep 3600\"]\n"
    );
    let mut watch = watch_relocation_with_sinks(&dir, &sinks);
    // The sink is running (and hangs): the second notification is queued behind it.
    drctl_e2e::wait_until("the exec sink to start", Duration::from_secs(30), || {
        std::fs::read_to_string(&marker).is_ok_and(|m| m == "started\n")
    });
    let stop = Instant::now();
    watch.signal(libc::SIGTERM);
    // The documented bound (5 s), with 2 s to spare for a loaded machine.
    let Some(status) = watch.wait_within(Duration::from_secs(7)) else {
        panic!("a hung sink held the stop past 7 s");
    };
    let took = stop.elapsed();
    assert_eq!(status.code(), Some(0));
    // It waited for the sink (the 5 s grace) before giving up on it.
    assert!(took >= Duration::from_millis(4900), "{took:?}");
    let stderr = watch.finish().stderr;
    assert_contains(
        &stderr,
        "undelivered notifications dropped after 5s at shutdown",
    );
}

//! The operator's surface of a running `drctl watch`, end to end on the real
//! clock: control socket (status, pause, resume, switch through the watcher),
//! alarm sinks (a webhook server and an exec command started by the test),
//! the Prometheus endpoint, one watcher per agent, stale sockets.

use drctl_e2e::{
    assert_contains, free_port, read_test_scenario, scrape, switch_to, wait_until, Drctl, TestDir,
    Watcher,
};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The watcher of these tests, with `extra_config`: `operator-surface.toml`,
/// on site1 until an operator switches it to site2, whose telephony goes off
/// at 6 s (site-timeout 1 s).
fn watcher(extra_config: &str) -> Watcher {
    Watcher::start(&read_test_scenario("operator-surface.toml"), extra_config)
}

fn has_decision(s: &serde_json::Value, ty: &str, key: &str, value: &str) -> bool {
    s["last_decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["type"] == ty && d[key] == value)
}

/// A webhook receiver on loopback: collects the JSON bodies it is sent.
fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let got = bodies.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            if let Ok(v) = serde_json::from_str(&body) {
                got.lock().unwrap().push(v);
            }
            let _ = req.respond(tiny_http::Response::empty(204));
        }
    });
    (url, bodies)
}

#[test]
fn status_switch_pause_trigger_resume_through_socket_webhook_exec_and_metrics() {
    let (url, bodies) = webhook();
    let port = free_port();
    let exec_log = tempfile::NamedTempFile::new().unwrap();
    let extra = format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{url}\"\n\
         [[alarms.sinks]]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"echo $DRCTL_EVENT $DRCTL_STATE $DRCTL_REASON $DRCTL_FROM $DRCTL_TO >> {}\"]\n",
        exec_log.path().display()
    );
    let w = watcher(&extra);

    // status: where the agent is.
    let out = w.run(&["status"]);
    assert!(out.success(), "{}", out.stderr);
    let shown = &out.stdout;
    assert_contains(shown, "site1 (preferred site1), epoch 1, watching");
    assert_contains(shown, "telephony on, configuration on, statistic on, DN on");

    // switch: the watcher performs it and answers with the timing table.
    let out = w.run(&switch_to("site2", &["--reason", "drill"]));
    assert!(out.success(), "{}", out.stderr);
    let stderr = &out.stderr;
    assert_contains(stderr, "a drctl watch runs for this agent");
    assert_contains(stderr, "switched site1 -> site2");
    assert_contains(stderr, "DN back in service");
    let progress = &out.stdout;
    assert!(
        progress.contains("switchover-started     operator site1 -> site2")
            && progress.contains("switchover-completed   operator site1 -> site2"),
        "{progress}"
    );

    // pause, then the trigger at 6 s is held.
    assert!(w.run(&["pause"]).success());
    let s = w.wait_for("the held trigger", |s| {
        has_decision(s, "switchover-suppressed", "why", "paused")
    });
    assert_eq!(s["paused"], true);
    assert_eq!(s["site"], "site2");
    assert_eq!(s["listeners"]["telephony"], "off");
    // D1: the pending switchover is an alarm upstream sees, not "alarms none".
    assert!(
        s["alarms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a == "telephony-service-down")),
        "{s}"
    );
    // S3: the DR options in force and where they came from.
    assert_eq!(
        s["dr_options"][0],
        serde_json::json!({"option": "site-timeout", "value": "1s", "source": "application"}),
        "{s}"
    );

    // resume: the trigger still holds, so the switchover goes ahead.
    assert!(w.run(&["resume"]).success());
    let s = w.wait_for("the switchover after resume", |s| {
        s["site"] == "site1" && s["phase"] == "watching"
    });
    assert_eq!(s["paused"], false);
    assert!(has_decision(
        &s,
        "switchover-completed",
        "reason",
        "telephony-timeout"
    ));

    // metrics: the outcomes, by reason.
    let metrics = scrape(port).expect("the metrics endpoint answers");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for line in [
        "drctl_site{agent=\"agent\",site=\"site1\"} 1",
        "drctl_site{agent=\"agent\",site=\"site2\"} 0",
        "drctl_paused{agent=\"agent\"} 0",
        "drctl_switchovers_total{agent=\"agent\",reason=\"operator\",outcome=\"completed\"} 1",
        "drctl_switchovers_total{agent=\"agent\",reason=\"telephony-timeout\",outcome=\"suppressed\"} 1",
        "drctl_switchovers_total{agent=\"agent\",reason=\"telephony-timeout\",outcome=\"completed\"} 1",
        "drctl_switchover_duration_seconds_count{agent=\"agent\"} 2",
        "drctl_phase{agent=\"agent\",phase=\"watching\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    let (out, _dir) = w.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // The webhook got every switchover start and completion, in order.
    let got: Vec<String> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["agent"], "agent");
            assert!(b["time"].as_str().unwrap().ends_with('Z'));
            match b["alarm"].as_str() {
                Some(alarm) => format!("alarm {} {alarm}", b["state"].as_str().unwrap()),
                None => format!(
                    "{} {} {} {}>{}",
                    b["event"].as_str().unwrap(),
                    b["state"].as_str().unwrap(),
                    b["reason"].as_str().unwrap_or("-"),
                    b["from"].as_str().unwrap_or("-"),
                    b["to"].as_str().unwrap_or("-")
                ),
            }
        })
        .collect();
    // D1: telephony OFF on site2 is an alarm at once, cleared by leaving it.
    assert_eq!(
        got,
        [
            "switchover started operator site1>site2",
            "switchover completed operator site1>site2",
            "alarm raised telephony-service-down",
            // Paused: the D1 switchover is due but held, and upstream hears it.
            "switchover suppressed telephony-timeout ->-",
            "switchover started telephony-timeout site2>site1",
            "alarm cleared telephony-service-down",
            "switchover completed telephony-timeout site2>site1",
        ]
    );
    let exec = std::fs::read_to_string(exec_log.path()).unwrap();
    assert_eq!(
        exec,
        "switchover started operator site1 site2\n\
         switchover completed operator site1 site2\n\
         alarm raised\n\
         switchover suppressed telephony-timeout\n\
         switchover started telephony-timeout site2 site1\n\
         alarm cleared site2\n\
         switchover completed telephony-timeout site2 site1\n"
    );
}

#[test]
fn one_watcher_per_agent_and_a_stale_socket_is_replaced() {
    let w = watcher("");
    let socket = w.socket();
    let mode = std::fs::metadata(&socket).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let second = w.run(&[
        "watch",
        "--backend",
        "mock",
        "--scenario",
        "plugins/mock/scenarios/demo.toml",
    ]);
    assert_eq!(second.code, Some(2));
    let stderr = &second.stderr;
    assert_contains(stderr, "another drctl watch is running for agent agent");
    let (out, dir) = w.stop();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!socket.exists(), "the socket is removed on a clean stop");

    // A socket left behind by a watcher that died: nobody answers on it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let w = Watcher::spawn(dir);
    let (out, _) = w.stop();
    assert_contains(&out.stderr, "replacing the stale control socket");
}

#[test]
fn clients_without_a_watcher_say_so() {
    // A config naming a socket nobody listens on.
    let dir = TestDir::new();
    let config = dir.control_config("");
    let out = Drctl::new(&["status"]).config(config).run();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no drctl watch answers on"));
}

/// A webhook server on loopback that accepts each connection, reads the
/// request and never answers; returns its URL and the bodies it got.
fn hanging_webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let got = bodies.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = std::io::BufReader::new(stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                got.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            // Never answered, never closed.
            held.push(reader);
        }
    });
    (url, bodies)
}

/// Three sinks that never deliver: a webhook that accepts and never answers
/// (1 h timeout), one nobody listens on (5 retries), an exec command that
/// runs for an hour. Each is shown to have been called, the watcher keeps
/// switching past them, and they do not hold its stop past the 5 s drain.
#[test]
fn sinks_that_hang_or_are_down_never_stall_the_watcher() {
    let (hang_url, hang_got) = hanging_webhook();
    let down_url = format!("http://127.0.0.1:{}/hook", free_port());
    let marker = tempfile::NamedTempFile::new().unwrap();
    let extra = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{hang_url}\"\ntimeout = \"1h\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{down_url}\"\nretries = 5\nretry-backoff = \"100ms\"\n\
         [[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"1h\"\n\
         command = [\"sh\", \"-c\", \"echo $DRCTL_EVENT $DRCTL_STATE $DRCTL_REASON >> {}; exec sleep 3600\"]\n",
        marker.path().display()
    );
    let w = watcher(&extra);
    let switch = |to: &str| {
        // Sinks that waited an hour inside the engine would make the drill time out.
        let out = w.run(&switch_to(to, &["--timeout", "20s", "--reason", "drill"]));
        assert!(out.success(), "{}", out.stderr);
    };
    switch("site2");
    // Each sink got the first notification and is stuck on it.
    wait_until(
        "the hanging webhook's request",
        Duration::from_secs(30),
        || !hang_got.lock().unwrap().is_empty(),
    );
    let first = hang_got.lock().unwrap()[0].clone();
    assert_contains(
        &first,
        "\"event\":\"switchover\",\"state\":\"started\",\"reason\":\"operator\"",
    );
    wait_until("the exec sink to start", Duration::from_secs(30), || {
        std::fs::read_to_string(marker.path()).is_ok_and(|m| !m.is_empty())
    });
    let down_failed = format!("alarm sink webhook {down_url}: switchover started not delivered");
    wait_until(
        "the down webhook to give up",
        Duration::from_secs(30),
        || w.stderr().contains(&down_failed),
    );
    // The watcher keeps switching while they hang.
    switch("site1");
    switch("site2");
    let s = w.status().unwrap();
    assert_eq!(s["site"], "site2");
    assert_eq!(
        s["last_decisions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] == "switchover-completed")
            .count(),
        3
    );
    // Still stuck on the first notification: one request, one command run.
    assert_eq!(hang_got.lock().unwrap().len(), 1);
    assert_eq!(
        std::fs::read_to_string(marker.path()).unwrap(),
        "switchover started operator\n"
    );
    // The documented 5 s drain, with 2 s to spare for a loaded machine.
    let (out, _) = w.stop_within(Duration::from_secs(7));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_contains(
        &out.stderr,
        "undelivered notifications dropped after 5s at shutdown",
    );
}

#[test]
fn a_socket_directory_others_can_write_is_refused() {
    let dir = TestDir::new();
    let shared = dir.dir("shared", 0o777);
    let config = dir.file(
        "drctl.toml",
        &drctl_e2e::control_section(&shared.join("ctl.sock")),
    );
    let out = Drctl::watch("plugins/mock/scenarios/demo.toml")
        .config(config)
        .run();
    assert_eq!(out.code, Some(2));
    let stderr = &out.stderr;
    assert!(
        stderr.contains("must belong to you") && stderr.contains("mode 777"),
        "{stderr}"
    );
}

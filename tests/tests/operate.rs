//! The operator's surface of a running `drctl watch`, end to end on the real
//! clock: control socket (status, pause, resume, switch through the watcher),
//! alarm sinks (a webhook server and an exec command started by the test),
//! the Prometheus endpoint, one watcher per agent, stale sockets.

use drctl_e2e::{command, drctl, free_port, scrape, wait_until};
use std::io::Read;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts on site1; site2's telephony goes off at 6 s (site-timeout 1 s).
const SCENARIO: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
register-delay = "200ms"
site-timeout = "1s"
end = "2m"

[[events]]
at = "6s"
site = "site2"
set = { telephony = "off" }
"#;

struct Watcher {
    child: Reaped,
    dir: tempfile::TempDir,
    config: String,
}

/// The watcher's process, killed if a test panics before stopping it (a failed
/// test must not leave a real-clock watcher running).
struct Reaped(Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Watcher {
    fn start(extra_config: &str) -> Watcher {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ops.toml"), SCENARIO).unwrap();
        std::fs::write(
            dir.path().join("drctl.toml"),
            format!(
                "[control]\nsocket = \"{}\"\n{extra_config}",
                dir.path().join("ctl.sock").display()
            ),
        )
        .unwrap();
        Watcher::spawn(dir)
    }

    /// `drctl watch` with `dir`'s `drctl.toml` and `ops.toml`, once it is up.
    fn spawn(dir: tempfile::TempDir) -> Watcher {
        let config = dir.path().join("drctl.toml").to_string_lossy().into_owned();
        let scenario = dir.path().join("ops.toml").to_string_lossy().into_owned();
        let child = command(
            &[
                "--config",
                &config,
                "watch",
                "--backend",
                "mock",
                "--scenario",
                &scenario,
                "--output",
                "json",
            ],
            dir.path(),
        )
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
        let w = Watcher {
            child: Reaped(child),
            dir,
            config,
        };
        w.wait_for("the watcher to be up", |s| {
            s["phase"] == "watching" && s["listeners"]["dn"] == "on"
        });
        w
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["--config", &self.config];
        full.extend_from_slice(args);
        command(&full, self.dir.path()).output().unwrap()
    }

    fn status(&self) -> Option<serde_json::Value> {
        let out = self.run(&["status", "--output", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.status() {
                if cond(&s) {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the watcher has logged so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// SIGINT; the watcher must be gone within 20 s.
    fn stop(self) -> (Output, tempfile::TempDir) {
        self.stop_within(Duration::from_secs(20))
    }

    /// SIGINT; the watcher must be gone within `bound`.
    fn stop_within(mut self, bound: Duration) -> (Output, tempfile::TempDir) {
        drctl_e2e::signal(&self.child, "-INT");
        let Some(status) = drctl_e2e::wait_within(&mut self.child, bound) else {
            let _ = self.child.kill();
            panic!("the watcher did not stop within {bound:?}");
        };
        let mut stdout = Vec::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let stderr = self.stderr().into_bytes();
        (
            Output {
                status,
                stdout,
                stderr,
            },
            self.dir,
        )
    }
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
    let w = Watcher::start(&extra);

    // status: where the agent is.
    let out = w.run(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("site1 (preferred site1), epoch 1, watching"),
        "{shown}"
    );
    assert!(
        shown.contains("telephony on, configuration on, statistic on, DN on"),
        "{shown}"
    );

    // switch: the watcher performs it and answers with the timing table.
    let out = w.run(&["switch", "--yes", "--to", "site2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("a drctl watch runs for this agent"),
        "{stderr}"
    );
    assert!(stderr.contains("switched site1 -> site2"), "{stderr}");
    assert!(stderr.contains("DN back in service"), "{stderr}");
    let progress = text(&out.stdout);
    assert!(
        progress.contains("switchover-started     operator site1 -> site2")
            && progress.contains("switchover-completed   operator site1 -> site2"),
        "{progress}"
    );

    // pause, then the trigger at 6 s is held.
    assert!(w.run(&["pause"]).status.success());
    let s = w.wait_for("the held trigger", |s| {
        has_decision(s, "switchover-suppressed", "why", "paused")
    });
    assert_eq!(s["paused"], true);
    assert_eq!(s["site"], "site2");
    assert_eq!(s["listeners"]["telephony"], "off");

    // resume: the trigger still holds, so the switchover goes ahead.
    assert!(w.run(&["resume"]).status.success());
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The webhook got every switchover start and completion, in order.
    let got: Vec<String> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["agent"], "agent");
            assert!(b["time"].as_str().unwrap().ends_with('Z'));
            format!(
                "{} {} {} {}>{}",
                b["event"].as_str().unwrap(),
                b["state"].as_str().unwrap(),
                b["reason"].as_str().unwrap_or("-"),
                b["from"].as_str().unwrap_or("-"),
                b["to"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "switchover started operator site1>site2",
            "switchover completed operator site1>site2",
            "switchover started telephony-timeout site2>site1",
            "switchover completed telephony-timeout site2>site1",
        ]
    );
    let exec = std::fs::read_to_string(exec_log.path()).unwrap();
    assert_eq!(
        exec,
        "switchover started operator site1 site2\n\
         switchover completed operator site1 site2\n\
         switchover started telephony-timeout site2 site1\n\
         switchover completed telephony-timeout site2 site1\n"
    );
}

#[test]
fn one_watcher_per_agent_and_a_stale_socket_is_replaced() {
    let w = Watcher::start("");
    let socket = w.dir.path().join("ctl.sock");
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
    assert_eq!(second.status.code(), Some(2));
    let stderr = text(&second.stderr);
    assert!(
        stderr.contains("another drctl watch is running for agent agent"),
        "{stderr}"
    );
    let (out, dir) = w.stop();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!socket.exists(), "the socket is removed on a clean stop");

    // A socket left behind by a watcher that died: nobody answers on it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let w = Watcher::spawn(dir);
    let (out, _) = w.stop();
    assert!(
        text(&out.stderr).contains("replacing the stale control socket"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn clients_without_a_watcher_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("drctl.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nsocket = \"{}\"\n",
            dir.path().join("none.sock").display()
        ),
    )
    .unwrap();
    let out = drctl(&["--config", &config.to_string_lossy(), "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no drctl watch answers on"));
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
    let w = Watcher::start(&extra);
    let switch = |to: &str| {
        // Sinks that waited an hour inside the engine would make the drill time out.
        let out = w.run(&["switch", "--yes", "--to", to, "--timeout", "20s"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    switch("site2");
    // Each sink got the first notification and is stuck on it.
    wait_until(
        "the hanging webhook's request",
        Duration::from_secs(30),
        || !hang_got.lock().unwrap().is_empty(),
    );
    let first = hang_got.lock().unwrap()[0].clone();
    assert!(
        first.contains("\"event\":\"switchover\",\"state\":\"started\",\"reason\":\"operator\""),
        "{first}"
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("undelivered notifications dropped after 5s at shutdown"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_socket_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.path().join("drctl.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nsocket = \"{}\"\n",
            shared.join("ctl.sock").display()
        ),
    )
    .unwrap();
    let out = drctl(&[
        "--config",
        &config.to_string_lossy(),
        "watch",
        "--backend",
        "mock",
        "--scenario",
        "plugins/mock/scenarios/demo.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("must belong to you") && stderr.contains("mode 777"),
        "{stderr}"
    );
}

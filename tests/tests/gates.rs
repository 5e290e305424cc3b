//! Switchover gates (`[[switch.gates]]`): a vetoing exec or HTTP gate refuses
//! a drill and names itself with its output; `--skip-gate NAME --reason TEXT`
//! passes, recorded as `gate-skipped` (decision, recording, history).

use drctl_e2e::{assert_contains, switch_to, Drctl, Ran, TestDir, Watcher};

const SC: &str = "plugins/mock/scenarios";

/// An executable `DIR/name` running `body` with /bin/sh; its path.
fn script(dir: &TestDir, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.file(name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A local drill of the operator-switch scenario on the virtual clock with
/// `DIR/drctl.toml` holding `config`.
fn drill(dir: &TestDir, config: &str, extra: &[&str]) -> Ran {
    let cfg = dir.file("drctl.toml", config);
    dir.run(
        &Drctl::mock("switch", format!("{SC}/w3-operator-switch.toml"))
            .virtual_clock()
            .json()
            .config(cfg)
            .args(&["--yes", "--to", "site2"])
            .args(extra),
    )
}

#[test]
fn a_vetoing_exec_gate_refuses_the_switch_naming_itself_and_its_output() {
    let dir = TestDir::new();
    let gate = script(
        &dir,
        "freeze.sh",
        "echo \"change freeze: $DRCTL_REASON $DRCTL_FROM->$DRCTL_TO for $DRCTL_AGENT\"\n\
         exit 1",
    );
    let config = format!("[[switch.gates]]\nname = \"freeze\"\nexec = [\"{gate}\"]\n");
    let out = drill(&dir, &config, &[]).expect_code(1);
    assert!(
        out.stderr.contains(
            "drill FAIL: steady state before: gate freeze refused the switchover: \
             exited with exit status: 1: change freeze: operator site1->site2 for agent"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.records(),
        [
            "200000000 startup-connected site1",
            "200000000 gate-refused operator freeze exited with exit status: 1: \
             change freeze: operator site1->site2 for agent"
        ]
    );
    // Without the gate's veto the same drill switches: the gate is the cause.
    let ok = drill(&dir, "", &[]);
    assert!(ok.success(), "{}", ok.all());
}

#[test]
fn a_gate_does_not_inherit_drctls_environment() {
    let dir = TestDir::new();
    let gate = script(
        &dir,
        "env.sh",
        "[ -z \"$DRCTL_TEST_SECRET\" ] || { echo \"leaked $DRCTL_TEST_SECRET\"; exit 1; }",
    );
    let cfg = dir.file(
        "drctl.toml",
        &format!("[[switch.gates]]\nname = \"env\"\nexec = [\"{gate}\"]\n"),
    );
    let out = dir.run(
        &Drctl::mock("switch", format!("{SC}/w3-operator-switch.toml"))
            .virtual_clock()
            .config(cfg)
            .args(&["--yes", "--to", "site2"])
            .env("DRCTL_TEST_SECRET", "s3cret"),
    );
    assert!(out.success(), "{}", out.all());
}

/// A loopback HTTP server answering every request with `status` and `body`;
/// its URL and the paths it was asked for.
fn http_gate(status: u16, body: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ok-to-switch?token=abc", server.server_addr());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let _ = tx.send(format!("{} {}", req.method(), req.url()));
            let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(status));
        }
    });
    (url, rx)
}

#[test]
fn a_vetoing_http_gate_refuses_and_a_2xx_passes() {
    let dir = TestDir::new();
    let (url, asked) = http_gate(503, "maintenance window until 22:00\n");
    let config = format!("[[switch.gates]]\nname = \"wfm\"\nhttp = \"{url}\"\ntimeout = \"5s\"\n");
    let out = drill(&dir, &config, &[]).expect_code(1);
    assert!(
        out.stderr.contains(
            "gate wfm refused the switchover: HTTP 503 Service Unavailable: \
             maintenance window until 22:00"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        asked
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap(),
        "GET /ok-to-switch?token=abc"
    );
    // The token is never shown.
    assert!(!out.all().contains("abc"), "{}", out.all());

    let (url, _asked) = http_gate(200, "ok");
    let config = format!("[[switch.gates]]\nname = \"wfm\"\nhttp = \"{url}\"\n");
    let out = drill(&dir, &config, &[]);
    assert!(out.success(), "{}", out.all());
    assert!(out
        .records()
        .iter()
        .any(|r| r.contains("switchover-completed")));
}

#[test]
fn skip_gate_passes_and_is_recorded_and_an_unknown_name_is_refused() {
    let dir = TestDir::new();
    let gate = script(&dir, "no.sh", "echo no; exit 1");
    let config = format!("[[switch.gates]]\nname = \"freeze\"\nexec = [\"{gate}\"]\n");
    let rec = dir.at("drill.jsonl");
    let out = drill(
        &dir,
        &config,
        &[
            "--skip-gate",
            "freeze",
            "--reason",
            "P1 INC-42",
            "--record",
            &rec,
        ],
    );
    assert!(out.success(), "{}", out.all());
    assert_eq!(
        out.records()[..3],
        [
            "200000000 startup-connected site1",
            "200000000 gate-skipped operator P1 INC-42 freeze",
            "200000000 switchover-started operator site1 site2",
        ]
    );
    // The verdict is in the recording, and the drill replays identically.
    let steps = drctl_e2e::recorded_steps(std::path::Path::new(&rec));
    assert!(steps.contains(&"operator gates".to_owned()), "{steps:?}");
    drctl_e2e::assert_replays_identically(std::path::Path::new(&rec), &[]);

    let out = drill(&dir, &config, &["--skip-gate", "frezee", "--reason", "x"]).expect_code(2);
    assert_contains(
        &out.stderr,
        "--skip-gate frezee: no such gate; the configured gates are: freeze",
    );
    // --skip-gate without --reason is a usage error.
    drill(&dir, &config, &["--skip-gate", "freeze"]).expect_code(2);
}

#[test]
fn a_watcher_runs_the_gates_and_records_a_skip_in_the_history() {
    let dir = TestDir::new();
    let gate = script(&dir, "freeze.sh", "echo \"freeze CHG-9 in force\"; exit 1");
    let history = dir.at("history.jsonl");
    let extra = format!(
        "[history]\nfile = \"{history}\"\n[[switch.gates]]\nname = \"freeze\"\nexec = [\"{gate}\"]\n"
    );
    let w = Watcher::start(
        &drctl_e2e::read_test_scenario("operator-surface.toml"),
        &extra,
    );
    let out = w.run(&switch_to("site2", &["--reason", "drill"]));
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stderr.contains(
            "gate freeze refused the switchover: exited with exit status: 1: freeze CHG-9 in force"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(w.status().unwrap()["site"], "site1");
    let out = w.run(&switch_to(
        "site2",
        &["--skip-gate", "freeze", "--reason", "INC-42 site1 burning"],
    ));
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stdout, "gate-skipped");
    let (_, _dir) = w.stop();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let skipped = lines
        .iter()
        .find(|l| l["type"] == "gate-skipped")
        .expect("a gate-skipped line");
    assert_eq!(skipped["gate"], "freeze");
    assert_eq!(skipped["operator_reason"], "INC-42 site1 burning");
    let me = unsafe { libc::geteuid() };
    assert!(
        skipped["operator_by"]
            .as_str()
            .is_some_and(|b| b.starts_with(&format!("uid {me}"))),
        "{skipped}"
    );
    let refused = lines.iter().find(|l| l["type"] == "gate-refused").unwrap();
    assert_eq!(refused["operator_reason"], "drill");
    let done = lines
        .iter()
        .find(|l| l["type"] == "switchover-completed" && l["reason"] == "operator")
        .unwrap();
    assert_eq!(done["operator_reason"], "INC-42 site1 burning");
}

//! A failover drill run by a real-clock watcher (`drctl switch --abort-after
//! --lifetime --rto --report` while `drctl watch` runs): `--abort-after`
//! switches back when the target never verifies, `--lifetime` returns on
//! time, the client writes the watcher's report and exits by its verdict,
//! and a drill whose client is killed still returns and is recorded.
//!
//! Real clock: times are checked as lower bounds only (a loaded machine is
//! late, never early).

use drctl_e2e::{
    assert_contains, read_json, read_test_scenario, strings_at, switch_to, Ran, TestDir, Watcher,
};

/// The agent on site1, both sites healthy, for ten minutes.
const CALM: &str = "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
                    site-timeout = \"30s\"\nend = \"10m\"\n";

/// A watcher of `scenario` logging its history in its directory.
fn watcher(scenario: &str) -> Watcher {
    let dir = TestDir::new();
    dir.file("ops.toml", scenario);
    let history = dir.at("history.jsonl");
    dir.control_config(&format!("[history]\nfile = \"{history}\"\n"));
    Watcher::spawn(dir)
}

/// `drctl switch --yes --to site2` with the drill's `flags`, through `w`.
fn drill(w: &Watcher, flags: &[&str]) -> Ran {
    w.run(&switch_to("site2", flags))
}

/// The history's notes of the drill (`drill-return`, `drill-ended`).
fn drill_notes(w: &Watcher) -> Vec<serde_json::Value> {
    let out = w.run(&["history", "--output", "json"]);
    assert!(out.success(), "{}", out.all());
    out.json_lines()
        .into_iter()
        .filter(|l| l["type"].as_str().is_some_and(|t| t.starts_with("drill-")))
        .collect()
}

#[test]
fn abort_after_switches_back_when_the_target_never_verifies() {
    // site2's telephony is off: the DN never comes back in service there.
    let w = watcher(&read_test_scenario("drill-target-dead.toml"));
    let report = w.dir().at("drill.json");
    let out = drill(
        &w,
        &[
            "--abort-after",
            "2s",
            "--reason",
            "CHG-9 drill",
            "--report",
            &report,
        ],
    )
    .expect_code(1);
    assert_contains(
        &out.stderr,
        "drill FAIL: switchover from site1 not verified within 2s",
    );
    assert_contains(
        &out.stderr,
        "--abort-after 2s: back on site1: telephony ON, DN in service",
    );
    // The decisions streamed: the drill's switchover and its return, each once.
    assert_eq!(
        out.stdout.matches("switchover-started").count(),
        2,
        "{}",
        out.stdout
    );
    assert_contains(
        &out.stdout,
        "drill: --abort-after 2s: switching back to site1",
    );
    let r = read_json(&report);
    assert_eq!(r["verdict"], "FAIL", "{r}");
    assert_eq!(r["reason"], "CHG-9 drill");
    assert_eq!(r["hypothesis"]["origin"], "site1");
    assert_eq!(r["hypothesis"]["target"], "site2");
    assert_eq!(r["steady_state_before"]["ok"], true, "{r}");
    assert_eq!(r["abort_conditions"][0]["triggered"], true, "{r}");
    assert_eq!(r["rollback"]["ok"], true, "{r}");
    assert!(r["rollback"]["at_s"].as_f64().unwrap() >= 2.0, "{r}");
    assert!(r["rto"]["measured_s"].is_null(), "{r}");
    assert!(r.get("steady_state_after").is_none(), "{r}");
    let phases = strings_at(&r["timeline"], "phase");
    assert!(phases.contains(&"return: connect"), "{phases:?}");

    let s = w.status().unwrap();
    assert_eq!(s["site"], "site1", "{s}");
    let notes = drill_notes(&w);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["type"], "drill-return");
    assert_eq!(notes[1]["type"], "drill-ended");
    assert_eq!(notes[1]["verdict"], "FAIL");
    w.stop();
}

#[test]
fn lifetime_returns_and_the_report_carries_the_measured_rto() {
    let w = watcher(CALM);
    let report = w.dir().at("drill.json");
    let out = drill(
        &w,
        &[
            "--lifetime",
            "3s",
            "--rto",
            "30s",
            "--reason",
            "CHG-10 drill",
            "--report",
            &report,
        ],
    );
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stderr, "RTO ");
    assert_contains(
        &out.stderr,
        "--lifetime 3s: back on site1: telephony ON, DN in service",
    );
    assert_contains(&out.stderr, "(PASS)");
    let r = read_json(&report);
    assert_eq!(r["verdict"], "PASS", "{r}");
    let rto = r["rto"]["measured_s"].as_f64().unwrap();
    assert!(rto > 0.0, "{r}");
    assert_eq!(r["rto"]["met"], true);
    assert_eq!(r["steady_state_before"]["site"], "site1", "{r}");
    assert_eq!(r["steady_state_before"]["telephony"], "on", "{r}");
    assert_eq!(r["steady_state_after"]["site"], "site2", "{r}");
    assert_eq!(r["steady_state_after"]["dn"], "on");
    assert_eq!(r["abort_conditions"][1]["triggered"], true, "{r}");
    assert!(r["rollback"]["at_s"].as_f64().unwrap() >= 3.0, "{r}");
    assert_eq!(w.status().unwrap()["site"], "site1");
    let notes = drill_notes(&w);
    assert_eq!(notes.last().unwrap()["verdict"], "PASS", "{notes:?}");

    // The verdict is the exit code: an RTO of a millisecond is missed.
    let md = w.dir().at("drill.md");
    let out = drill(&w, &["--rto", "1ms", "--reason", "CHG-11", "--report", &md]).expect_code(1);
    assert_contains(&out.stderr, "drill FAIL: RTO ");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# Drill report: FAIL"), "{text}");
    assert_contains(&text, "expected: MISSED");
    w.stop();
}

#[test]
fn a_drill_under_way_is_in_status_and_its_report_names_the_recording() {
    let dir = TestDir::new();
    dir.file("ops.toml", CALM);
    let recording = dir.at("watch.jsonl");
    dir.control_config("");
    let w = Watcher::spawn_with(dir, |c| {
        c.args(["--record", &recording]);
    });
    let report = w.dir().at("drill.json");
    let client = w.spawn_client(&switch_to(
        "site2",
        &[
            "--lifetime",
            "4s",
            "--reason",
            "CHG-20 drill",
            "--report",
            &report,
        ],
    ));
    // Verified on site2, held until its lifetime ends: status says so.
    let s = w.wait_for("the drill to hold on site2", |s| {
        s["drill"]["stage"] == "holding"
    });
    let row = &s["drill"];
    assert_eq!(row["origin"], "site1", "{s}");
    assert_eq!(row["target"], "site2", "{s}");
    assert_eq!(row["reason"], "CHG-20 drill", "{s}");
    assert!(row["by"].as_str().unwrap().starts_with("uid "), "{row}");
    assert!(
        row["stage_ends_in"].as_str().is_some_and(|l| !l.is_empty()),
        "{row}"
    );
    let text = w.run(&["status"]).stdout;
    assert_contains(&text, "agent site1 -> site2, holding (at most ");
    let out = client.finish();
    assert!(out.success(), "{}", out.all());
    // The report names the watcher's recording, which holds the drill.
    let r = read_json(&report);
    assert_eq!(r["recording"], recording.as_str(), "{r}");
    let recorded = std::fs::read_to_string(&recording).unwrap();
    assert_contains(&recorded, "\"switchover-started\"");
    let s = w.status().unwrap();
    assert!(s.get("drill").is_none(), "{s}");
    assert!(!w.run(&["status"]).stdout.contains("drill"));
    w.stop();
}

#[test]
fn a_drill_whose_client_is_killed_still_returns_and_is_recorded() {
    let w = watcher(CALM);
    let client = w.spawn_client(&switch_to(
        "site2",
        &["--lifetime", "3s", "--reason", "CHG-12 drill"],
    ));
    w.wait_for("the drill to land on site2", |s| {
        s["site"] == "site2" && s["listeners"]["dn"] == "on"
    });
    client.signal(libc::SIGKILL);
    let _ = client.finish();
    w.wait_for("the drill's return to site1", |s| {
        s["site"] == "site1" && s["listeners"]["dn"] == "on"
    });
    // The verdict is written once the return is verified, in the same pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let notes = loop {
        let notes = drill_notes(&w);
        if notes.iter().any(|n| n["type"] == "drill-ended") {
            break notes;
        }
        assert!(std::time::Instant::now() < deadline, "{notes:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(notes[0]["type"], "drill-return", "{notes:?}");
    assert_eq!(notes[0]["operator_reason"], "CHG-12 drill", "{notes:?}");
    assert_eq!(notes[1]["verdict"], "PASS", "{notes:?}");
    w.stop();
}

#[test]
fn a_vetoing_gate_fails_the_drill_before_anything_changes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    dir.file("ops.toml", CALM);
    let gate = dir.file(
        "freeze.sh",
        "#!/bin/sh\necho \"freeze CHG-9 in force\"\nexit 1\n",
    );
    std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o755)).unwrap();
    let history = dir.at("history.jsonl");
    dir.control_config(&format!(
        "[history]\nfile = \"{history}\"\n[[switch.gates]]\nname = \"freeze\"\nexec = [\"{gate}\"]\n"
    ));
    let w = Watcher::spawn(dir);
    let report = w.dir().at("drill.json");
    let out = drill(
        &w,
        &[
            "--abort-after",
            "5s",
            "--reason",
            "CHG-13",
            "--report",
            &report,
        ],
    )
    .expect_code(1);
    assert!(
        out.stderr.contains("drill FAIL: steady state before: ") && out.stderr.contains("freeze"),
        "{}",
        out.stderr
    );
    let r = read_json(&report);
    assert_eq!(r["verdict"], "FAIL", "{r}");
    let before = &r["steady_state_before"];
    assert_eq!(before["ok"], false, "{r}");
    assert_eq!(before["gates"][0]["gate"], "freeze", "{r}");
    assert_eq!(before["gates"][0]["outcome"], "vetoed", "{r}");
    assert!(
        before["gates"][0]["output"]
            .as_str()
            .unwrap()
            .contains("freeze CHG-9 in force"),
        "{r}"
    );
    assert!(r.get("rollback").is_none(), "{r}");
    assert_eq!(w.status().unwrap()["site"], "site1");
    w.stop();
}

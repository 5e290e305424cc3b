//! `drctl replay --until T [--state]`: the engine's view at a moment of a
//! recorded incident, and a check of the decisions up to it.

use drctl_e2e::drctl;
use std::path::Path;

/// The demo recorded on the virtual clock (switchover at +110 s).
fn demo_recording(dir: &Path) -> std::path::PathBuf {
    let rec = dir.join("demo.jsonl");
    let out = drctl(&[
        "watch",
        "--backend",
        "mock",
        "--scenario",
        "plugins/mock/scenarios/demo.toml",
        "--clock",
        "virtual",
        "--until-end",
        "--record",
        rec.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    rec
}

#[test]
fn the_state_at_a_moment_shows_site_listeners_pending_timer_and_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let rec = demo_recording(dir.path());
    let out = drctl(&[
        "replay",
        rec.to_str().unwrap(),
        "--until",
        "95s",
        "--state",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["site"], "site1", "{state}");
    assert_eq!(state["phase"], "watching", "{state}");
    assert_eq!(state["listeners"]["telephony"], "off", "{state}");
    assert_eq!(
        state["alarms"],
        serde_json::json!(["configuration-service-down"])
    );
    // D1's timer, armed at +80 s by telephony OFF, fires at +110 s.
    assert_eq!(state["timers"][0]["timer"], "site-timeout", "{state}");
    assert_eq!(state["timers"][0]["at"], 110_000_000_000u64, "{state}");
    let last = state["last_decisions"].as_array().unwrap();
    assert_eq!(last.last().unwrap()["type"], "alarm-raised");

    // After the switchover: on site2, no timer left.
    let out = drctl(&["replay", rec.to_str().unwrap(), "--until", "2m", "--state"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("at         +120.000s (replay of "),
        "{text}"
    );
    assert!(
        text.contains("site       site2 (preferred site1)"),
        "{text}"
    );
    assert!(text.contains("timers     none"), "{text}");
}

#[test]
fn until_compares_the_decisions_up_to_it_and_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    let rec = demo_recording(dir.path());
    let out = drctl(&["replay", rec.to_str().unwrap(), "--until", "95s", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "identical: 6 decisions, as recorded (replayed up to +95.000s; \
         3 later recorded decision(s) not compared)\n"
    );
    // Without --check: only the decisions up to +95 s.
    let out = drctl(&[
        "replay",
        rec.to_str().unwrap(),
        "--until",
        "95s",
        "--output",
        "json",
    ]);
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(lines, 6);
    // --state and --check do not go together.
    let out = drctl(&["replay", rec.to_str().unwrap(), "--state", "--check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_names_the_rule_the_cause_and_the_config_used() {
    let dir = tempfile::tempdir().unwrap();
    let rec = demo_recording(dir.path());
    let out = drctl(&[
        "replay",
        rec.to_str().unwrap(),
        "--explain",
        "--output",
        "json",
        "--set",
        "policy.site-timeout=20s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let recording = std::fs::read_to_string(&rec).unwrap();
    let line_no = |n: u64| recording.lines().nth(n as usize - 1).unwrap().to_owned();
    // S1: connected, because of the connect's result on its recorded line.
    assert_eq!(lines[0]["type"], "startup-connected");
    assert_eq!(lines[0]["rule"], "S1");
    let cause = &lines[0]["cause"];
    assert_eq!(cause["kind"], "record");
    let l = line_no(cause["line"].as_u64().unwrap());
    assert!(
        l.contains("\"kind\":\"result\"") && l.contains("connected"),
        "{l}"
    );
    // D3 alarm, caused by the recorded statistic OFF event.
    let d3 = lines
        .iter()
        .find(|d| d["alarm"] == "statistic-service-down")
        .unwrap();
    assert_eq!(d3["rule"], "D3");
    let l = line_no(d3["cause"]["line"].as_u64().unwrap());
    assert!(l.contains("\"statistic\"") && l.contains("\"off\""), "{l}");
    // D1: the site timer, armed by telephony OFF at +80 s, fires at +100 s
    // with the --set value, which the explanation names as such.
    let d1 = lines
        .iter()
        .find(|d| d["type"] == "switchover-started" && d["reason"] == "telephony-timeout")
        .unwrap();
    assert_eq!(d1["rule"], "D1");
    assert_eq!(
        d1["cause"],
        serde_json::json!({"kind": "timer", "timer": "site-timeout",
                           "armed": 80_000_000_000u64, "due": 100_000_000_000u64})
    );
    assert_eq!(
        d1["config"],
        serde_json::json!([{"key": "policy.site-timeout", "value": "20s", "origin": "--set"}])
    );
    // Text for people: the same, beside each decision.
    let out = drctl(&["replay", rec.to_str().unwrap(), "--explain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rule D1; because timer site-timeout armed at +80.000s, due +110.000s"),
        "{text}"
    );
}

#[test]
fn injected_events_are_what_ifs_that_check_reports_as_divergences() {
    let dir = tempfile::tempdir().unwrap();
    let rec = demo_recording(dir.path());
    let rec = rec.to_str().unwrap();
    // Telephony lost at site1 at +60 s: the D1 timer fires 30 s later, at +90 s.
    let out = drctl(&[
        "replay",
        rec,
        "--inject",
        "at=60s site=site1 telephony=off",
        "--check",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let verdict = String::from_utf8_lossy(&out.stdout);
    assert!(
        verdict.starts_with("differs: first divergence at +90.000s, decision 7")
            && verdict.contains(
                "now          +90.000s  switchover-started     telephony-timeout site1 -> site2"
            ),
        "{verdict}"
    );
    // The same from a fragment file in the scenario's [[events]] syntax.
    let fragment = dir.path().join("what-if.toml");
    std::fs::write(
        &fragment,
        "[[events]]\nat = \"60s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n",
    )
    .unwrap();
    let from_file = drctl(&[
        "replay",
        rec,
        "--inject-file",
        fragment.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(from_file.stdout, out.stdout);
    // At a site the agent is not on, nothing reaches the engine.
    let out = drctl(&[
        "replay",
        rec,
        "--inject",
        "at=60s site=site2 telephony=off",
        "--check",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not delivered: the agent is on site1"));
    // A bad fragment is bad input naming its file and line.
    std::fs::write(
        &fragment,
        "[[events]]\nat = \"60s\"\nsite = \"site9\"\nset = { telephony = \"off\" }\n",
    )
    .unwrap();
    let out = drctl(&["replay", rec, "--inject-file", fragment.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("what-if.toml:3") && err.contains("site9"),
        "{err}"
    );
}

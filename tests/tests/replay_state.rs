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

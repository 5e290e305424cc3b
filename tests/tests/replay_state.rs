//! `drctl replay --until T [--state]`: the engine's view at a moment of a
//! recorded incident, and a check of the decisions up to it.

use drctl_e2e::{assert_contains, Drctl, Ran, TestDir};

/// The demo recorded on the virtual clock (switchover at +110 s).
fn demo_recording(dir: &TestDir) -> String {
    let rec = dir.at("demo.jsonl");
    Drctl::watch(Drctl::DEMO)
        .virtual_to_end()
        .record(&rec)
        .run()
        .expect_code(0);
    rec
}

/// `drctl replay REC ARGS...`.
fn replay(rec: &str, args: &[&str]) -> Ran {
    Drctl::new(&["replay", rec]).args(args).run()
}

#[test]
fn the_state_at_a_moment_shows_site_listeners_pending_timer_and_alarms() {
    let dir = TestDir::new();
    let rec = demo_recording(&dir);
    let state = replay(&rec, &["--until", "95s", "--state", "--output", "json"])
        .expect_code(0)
        .json();
    assert_eq!(state["site"], "site1", "{state}");
    assert_eq!(state["phase"], "watching", "{state}");
    assert_eq!(state["listeners"]["telephony"], "off", "{state}");
    // D1: telephony OFF is an alarm while its switchover is pending.
    assert_eq!(
        state["alarms"],
        serde_json::json!(["telephony-service-down", "configuration-service-down"])
    );
    // D1's timer, armed at +80 s by telephony OFF, fires at +110 s.
    assert_eq!(state["timers"][0]["timer"], "site-timeout", "{state}");
    assert_eq!(state["timers"][0]["at"], 110_000_000_000u64, "{state}");
    let last = state["last_decisions"].as_array().unwrap();
    assert_eq!(last.last().unwrap()["type"], "alarm-raised");

    // After the switchover: on site2, no timer left.
    let text = replay(&rec, &["--until", "2m", "--state"]).stdout;
    assert!(
        text.starts_with("at         +120.000s (replay of "),
        "{text}"
    );
    assert_contains(&text, "site       site2 (preferred site1)");
    assert_contains(&text, "timers     none");
}

#[test]
fn until_compares_the_decisions_up_to_it_and_stops_there() {
    let dir = TestDir::new();
    let rec = demo_recording(&dir);
    let out = replay(&rec, &["--until", "95s", "--check"]).expect_code(0);
    assert_eq!(
        out.stdout,
        "identical: 9 decisions, as recorded (replayed up to +95.000s; \
         4 later recorded decision(s) not compared)\n"
    );
    // Without --check: only the decisions up to +95 s.
    let out = replay(&rec, &["--until", "95s", "--output", "json"]);
    assert_eq!(out.stdout.lines().count(), 9);
    // --state and --check do not go together.
    replay(&rec, &["--state", "--check"]).expect_code(2);
}

#[test]
fn explain_names_the_rule_the_cause_and_the_config_used() {
    let dir = TestDir::new();
    let rec = demo_recording(&dir);
    let explain = [
        "--explain",
        "--output",
        "json",
        "--set",
        "policy.site-timeout=20s",
    ];
    let lines = replay(&rec, &explain).expect_code(0).json_lines();
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
    let text = replay(&rec, &["--explain"]).stdout;
    assert_contains(
        &text,
        "rule D1; because timer site-timeout armed at +80.000s, due +110.000s",
    );
    // Without a local value the DR option is the Application's, not a default.
    assert!(
        text.contains(
            "policy.site-timeout = (not set)  # not set locally: the AIL Application's (S3)"
        ),
        "{text}"
    );
}

#[test]
fn injected_events_are_what_ifs_that_check_reports_as_divergences() {
    let dir = TestDir::new();
    let rec = demo_recording(&dir);
    // Telephony lost at site1 at +60 s: D1's alarm at once, naming the
    // switchover its timer starts 30 s later, at +90 s.
    let out = replay(
        &rec,
        &["--inject", "at=60s site=site1 telephony=off", "--check"],
    )
    .expect_code(1);
    let verdict = &out.stdout;
    assert!(
        verdict.starts_with("differs: first divergence at +60.000s, decision 8")
            && verdict.contains(
                "now          +60.000s  alarm-raised           telephony-service-down (switchover at +90.000s)"
            ),
        "{verdict}"
    );
    // The same from a fragment file in the scenario's [[events]] syntax.
    let what_if = |site: &str| {
        let events = format!(
            "[[events]]\nat = \"60s\"\nsite = \"{site}\"\nset = {{ telephony = \"off\" }}\n"
        );
        dir.file("what-if.toml", &events)
    };
    let fragment = what_if("site1");
    let from_file = replay(&rec, &["--inject-file", &fragment, "--check"]);
    assert_eq!(from_file.stdout, out.stdout);
    // At a site the agent is not on, nothing reaches the engine.
    let out = replay(
        &rec,
        &["--inject", "at=60s site=site2 telephony=off", "--check"],
    )
    .expect_code(0);
    assert!(out.stderr.contains("not delivered: the agent is on site1"));
    // A bad fragment is bad input naming its file and line.
    let fragment = what_if("site9");
    let err = replay(&rec, &["--inject-file", &fragment])
        .expect_code(2)
        .stderr;
    assert!(
        err.contains("what-if.toml:3") && err.contains("site9"),
        "{err}"
    );
}

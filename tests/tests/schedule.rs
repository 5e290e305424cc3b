//! A switch scheduled in a running watcher (`drctl switch --at`), end to end
//! on the real clock: scheduled, shown by `status`, cancelled, scheduled
//! again a few seconds out and fired through the watcher's own switchover
//! path; times that have passed or lie too far ahead are refused; the
//! history keeps the schedule, the cancellation and the firing.

use drctl_e2e::{assert_contains, switch_to, TestDir, Watcher};

/// The agent on site1, both sites healthy, for ten minutes.
const CALM: &str = "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
                    site-timeout = \"30s\"\nend = \"10m\"\n";

/// A watcher of [`CALM`] logging its history in its directory.
fn watcher() -> Watcher {
    let dir = TestDir::new();
    dir.file("ops.toml", CALM);
    let history = dir.at("history.jsonl");
    dir.control_config(&format!("[history]\nfile = \"{history}\"\n"));
    Watcher::spawn(dir)
}

#[test]
fn a_switch_is_scheduled_shown_cancelled_and_then_fires() {
    let w = watcher();

    // Schedule an hour out: the answer and the status say when, where, who and why.
    let out = w.run(&switch_to(
        "site2",
        &["--at", "+1h", "--reason", "CHG-1 drill"],
    ));
    assert!(out.success(), "{}", out.all());
    assert!(
        out.stdout.contains("switch of agent to site2 at ") && out.stdout.contains(": CHG-1 drill"),
        "{}",
        out.stdout
    );
    let s = w.status().unwrap();
    let row = &s["scheduled"];
    assert_eq!(row["to"], "site2", "{s}");
    assert_eq!(row["reason"], "CHG-1 drill");
    assert!(row["by"].as_str().unwrap().starts_with("uid "), "{row}");
    let left = row["in"].as_str().unwrap();
    assert!(left.starts_with("59m"), "time left from now: {left}");
    assert!(row["at"].as_str().unwrap().ends_with('Z'), "{row}");
    let text = w.run(&["status"]).stdout;
    assert_contains(&text, "scheduled  switch of agent to site2 at ");

    // A second one for the same agent is refused until the first is cancelled.
    let out = w.run(&["switch", "--yes", "--at", "+2h", "--reason", "again"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_contains(&out.stderr, "is scheduled already");

    let out = w.run(&["switch", "--cancel"]);
    assert!(out.success(), "{}", out.all());
    assert!(
        out.stdout
            .starts_with("cancelled: switch of agent to site2"),
        "{}",
        out.stdout
    );
    let s = w.status().unwrap();
    assert!(s.get("scheduled").is_none(), "{s}");
    assert!(!w.run(&["status"]).stdout.contains("scheduled"));
    let out = w.run(&["switch", "--cancel"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert_contains(
        &out.stderr,
        "no switch is scheduled for agent: nothing was cancelled",
    );

    // Past, too far ahead, unreadable, without a reason: exit 2 naming the value.
    for (at, says) in [
        (
            "2020-01-01T00:00:00Z",
            "--at 2020-01-01T00:00:00Z: that time has passed",
        ),
        ("+8days", "--at +8days: more than 7days ahead"),
        (
            "next-tuesday",
            "--at next-tuesday: expected an RFC 3339 time",
        ),
    ] {
        let out = w.run(&["switch", "--yes", "--at", at, "--reason", "x"]);
        assert_eq!(out.code, Some(2), "{at}: {}", out.all());
        assert!(out.stderr.contains(says), "{at}: {}", out.stderr);
    }
    let out = w.run(&["switch", "--yes", "--at", "+1m"]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert_contains(&out.stderr, "--reason");

    // Two seconds out: it fires through the watcher's switchover (gates and all).
    let out = w.run(&switch_to("site2", &["--at", "+2s", "--reason", "CHG-2"]));
    assert!(out.success(), "{}", out.all());
    assert_eq!(w.status().unwrap()["scheduled"]["to"], "site2");
    let s = w.wait_for("the scheduled switch to land on site2", |s| {
        s["site"] == "site2" && s["listeners"]["dn"] == "on"
    });
    assert!(s.get("scheduled").is_none(), "{s}");
    let started = s["last_decisions"].as_array().unwrap().iter().any(|d| {
        d["type"] == "switchover-started" && d["reason"] == "operator" && d["to"] == "site2"
    });
    assert!(started, "{s}");

    // The history: scheduled, cancelled, scheduled, fired, and the switchover with its reason.
    let out = w.run(&["history", "--output", "json"]);
    assert!(out.success(), "{}", out.all());
    let lines = out.json_lines();
    let kinds: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["type"].as_str())
        .filter(|t| t.starts_with("switch-"))
        .collect();
    assert_eq!(
        kinds,
        [
            "switch-scheduled",
            "switch-cancelled",
            "switch-scheduled",
            "switch-fired"
        ]
    );
    let fired = lines.iter().find(|l| l["type"] == "switch-fired").unwrap();
    assert_eq!(fired["operator_reason"], "CHG-2", "{fired}");
    assert!(
        fired["operator_by"].as_str().unwrap().starts_with("uid "),
        "{fired}"
    );
    assert!(fired.get("refused").is_none(), "{fired}");
    let switched = lines
        .iter()
        .find(|l| l["type"] == "switchover-completed" && l["operator_reason"] == "CHG-2");
    assert!(switched.is_some(), "{lines:?}");
    w.stop();
}

#[test]
fn a_switch_due_during_a_drill_waits_for_its_end_then_starts() {
    let w = watcher();
    let drill = w.spawn_client(&switch_to(
        "site2",
        &["--lifetime", "5s", "--reason", "CHG-30 drill"],
    ));
    w.wait_for("the drill to hold on site2", |s| {
        s["drill"]["stage"] == "holding"
    });
    // Due in the drill's lifetime: it waits for the drill, then moves the
    // agent to site2 again from where the drill returned it.
    let out = w.run(&switch_to("site2", &["--at", "+1s", "--reason", "CHG-31"]));
    assert!(out.success(), "{}", out.all());
    let s = w.wait_for("the due switch to wait for the drill", |s| {
        s["scheduled"]["held"]["by"] == "drill"
    });
    assert!(
        s["scheduled"]["held"]["at_most"]
            .as_str()
            .unwrap()
            .starts_with("9m"),
        "{s}"
    );
    let text = w.run(&["status"]).stdout;
    assert_contains(&text, "(due, waiting for the drill to end (at most 9m");
    let out = drill.finish();
    assert!(out.success(), "{}", out.all());
    let s = w.wait_for(
        "the scheduled switch to land on site2 after the drill",
        |s| s.get("scheduled").is_none() && s["site"] == "site2" && s["listeners"]["dn"] == "on",
    );
    let started = s["last_decisions"].as_array().unwrap().iter().any(|d| {
        d["type"] == "switchover-started" && d["reason"] == "operator" && d["to"] == "site2"
    });
    assert!(started, "{s}");
    let out = w.run(&["history", "--output", "json"]);
    let lines = out.json_lines();
    let fired = lines.iter().find(|l| l["type"] == "switch-fired").unwrap();
    assert!(fired.get("refused").is_none(), "{fired}");
    w.stop();
}

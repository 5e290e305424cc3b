//! A fleet watcher end to end: `status` (the table and one agent), the live
//! event stream through the control socket (`drctl events --follow`) and as
//! Server-Sent Events (`GET /events`), per-agent metrics checked by promtool,
//! and a client that does not read: it loses events and is told so, while
//! the watcher and the other clients lose nothing.

use drctl_e2e::running::Running;
use drctl_e2e::service::{http, promtool_check_metrics, skip, tool};
use drctl_e2e::{assert_contains, free_port, strings_at, Drctl, TestDir, PATIENCE};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Site1 loses telephony at 3 s; site-timeout 1 s: every agent switches to
/// site2 at 4 s.
const SWITCH_AT_4S: &str = "\
[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\nsite-timeout = \"1s\"\nend = \"10m\"\n\
[[events]]\nat = \"3s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n";

/// `drctl.toml` of a fleet `names`, its control socket in `dir`, metrics on `port`.
fn fleet_config(dir: &TestDir, names: &[String], port: Option<u16>) -> String {
    let mut config = drctl_e2e::control_section(&dir.socket());
    if let Some(port) = port {
        config.push_str(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    }
    for n in names {
        config.push_str(&format!("[[agents]]\nusername = \"{n}\"\n"));
    }
    dir.file("drctl.toml", &config)
}

/// A real-clock fleet watch of `scenario` (`--output json`, `extra` args).
fn fleet_watch(dir: &TestDir, config: &str, scenario: &str, extra: &[&str]) -> Running {
    let ops = dir.file("ops.toml", scenario);
    let mut cmd = Drctl::watch(&ops)
        .config(config)
        .json()
        .args(extra)
        .command(dir.path());
    cmd.stdin(Stdio::null());
    Running::spawn(cmd)
}

/// `drctl --config CONFIG ARGS` to its end.
fn client(dir: &TestDir, config: &str, args: &[&str]) -> drctl_e2e::Ran {
    dir.run(&Drctl::new(args).config(config))
}

/// Polls the fleet's `status --output json` until `cond` holds.
fn wait_status(dir: &TestDir, config: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = client(dir, config, &["status", "--output", "json"]);
        if out.success() && cond(&out.json()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "status never held: {}",
            out.all()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn a_fleet_watch_answers_status_streams_events_and_is_scraped() {
    let dir = TestDir::new();
    let port = free_port();
    let agents = vec!["ann".to_owned(), "bob".to_owned()];
    let config = fleet_config(&dir, &agents, Some(port));
    let watch = fleet_watch(&dir, &config, SWITCH_AT_4S, &["--for", "20s"]);

    // Followers from the start: one agent over the socket, one over SSE.
    drctl_e2e::wait_until("the control socket", PATIENCE, || {
        UnixStream::connect(dir.socket()).is_ok()
    });
    let mut follow = Drctl::new(&["events", "--follow", "--agent", "bob", "--output", "json"])
        .config(&config)
        .spawn(dir.path());
    let sse = tool("curl").map(|curl| {
        drctl_e2e::wait_until("the metrics endpoint", PATIENCE, || {
            http(port, "GET", "/livez", &[]).is_some()
        });
        let mut cmd = Command::new(curl);
        cmd.args(["-sSN", &format!("http://127.0.0.1:{port}/events?agent=ann")]);
        Running::spawn(cmd)
    });

    // Both agents switch; the fleet's status then shows them at site2.
    wait_status(&dir, &config, |s| {
        s["summary"]["in_service"] == 2 && s["summary"]["sites"][1]["agents"] == 2
    });
    let table = client(&dir, &config, &["status"]);
    assert!(table.success(), "{}", table.all());
    let text = &table.stdout;
    assert!(
        text.starts_with("fleet      2 agents (backend mock"),
        "{text}"
    );
    assert_contains(text, "summary    2 watching, 2 in service, 0 switching");
    assert_contains(text, "sites      site1 0, site2 2");
    assert_contains(text, "  bob              site2    watching     on ");
    let bob = client(
        &dir,
        &config,
        &["status", "--agent", "bob", "--output", "json"],
    )
    .json();
    assert_eq!(bob["agent"], "bob");
    assert_eq!(bob["site"], "site2");
    let types = strings_at(&bob["last_decisions"], "type");
    assert!(types.contains(&"switchover-completed"), "{bob}");
    let out = client(&dir, &config, &["status", "--agent", "cid"]);
    assert!(
        out.stderr
            .contains("does not run agent cid; it runs ann, bob"),
        "{}",
        out.all()
    );

    // bob's events, and only bob's, in order.
    follow.lines.wait_for("switchover-completed");
    let events: Vec<serde_json::Value> = follow
        .lines
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["agent"].as_str().unwrap(),
                e["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            "bob startup-connected",
            "bob alarm-raised",
            "bob switchover-started",
            "bob alarm-cleared",
            "bob switchover-completed"
        ]
    );
    assert_eq!(events[2]["t"], 4_000_000_000u64);

    // Without --follow: the recent ones, then the client exits.
    let recent = client(&dir, &config, &["events"]);
    assert!(recent.success(), "{}", recent.all());
    assert!(
        recent.stdout.contains(
            "+4.000s  ann        switchover-started     telephony-timeout site1 -> site2"
        ),
        "{}",
        recent.stdout
    );

    // SSE: ann's decisions reach a real HTTP client.
    if let Some(mut sse) = sse {
        sse.lines.wait_for("switchover-completed");
        let seen = sse.lines.seen.join("\n");
        assert_contains(&seen, "event: decision\ndata: {\"t\":4000000000,\"agent\":\"ann\",\"type\":\"switchover-started\"");
        assert!(!seen.contains("\"bob\""), "{seen}");
    } else {
        skip("curl is not installed: the SSE client is not run");
    }
    let unknown = http(port, "GET", "/events?agent=cid", &[]).unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // Metrics: per agent, and the fleet's counts.
    let body = http(port, "GET", "/metrics", &[("Accept", "text/plain")])
        .unwrap()
        .body;
    for series in [
        r#"drctl_phase{agent="ann",phase="watching"} 1"#,
        r#"drctl_site{agent="bob",site="site2"} 1"#,
        r#"drctl_listener_up{agent="bob",listener="dn"} 1"#,
        r#"drctl_alarm_active{agent="ann",alarm="switchover-failed"} 0"#,
        r#"drctl_switchovers_total{reason="telephony-timeout",outcome="completed"} 2"#,
        r#"drctl_fleet_agents{site="site2"} 2"#,
        "drctl_fleet_in_service 2",
        "drctl_fleet_switchovers_in_flight 0",
        "drctl_shadow_divergences_total 0",
    ] {
        assert!(body.contains(series), "no {series} in\n{body}");
    }
    let ready = http(port, "GET", "/readyz", &[]).unwrap();
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_contains(&ready.body, "2 of 2 agents watching");
    promtool_check_metrics(&body);

    watch.signal(libc::SIGINT);
    let ran = watch.finish();
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // The follower is told the watcher stopped (the last line), and exits 0.
    let ended = follow.finish();
    assert_eq!(ended.code, Some(0), "{}", ended.all());
}

/// Site1's Stat Servers flap every 100 ms from 4 s to 12 s (an alarm raised
/// or cleared per flap, per agent: 4 800 decisions, more than a client's
/// queue and its socket's buffer hold); then site1 loses telephony at 12.5 s
/// and every agent switches at 13.5 s. At 600 decisions a second a client
/// that reads may be descheduled for 1.7 s before its queue fills (at the
/// 2 400 a second this test once had, a loaded machine made the fast client
/// drop too).
fn flapping_then_switch() -> String {
    let mut s = String::from(
        "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\nsite-timeout = \"1s\"\nend = \"10m\"\n",
    );
    for i in 0..80u64 {
        let state = if i % 2 == 0 { "off" } else { "on" };
        s.push_str(&format!(
            "[[events]]\nat = \"{}ms\"\nsite = \"site1\"\nset = {{ statistic = \"{state}\" }}\n",
            4000 + 100 * i
        ));
    }
    s.push_str("[[events]]\nat = \"12500ms\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n");
    s
}

#[test]
fn a_slow_events_client_sees_the_drop_marker_and_slows_nobody() {
    let dir = TestDir::new();
    let agents = names("agent", 60);
    let config = fleet_config(&dir, &agents, None);
    let mut watch = fleet_watch(&dir, &config, &flapping_then_switch(), &[]);

    // The slow client: asks to follow, then reads nothing.
    drctl_e2e::wait_until("the control socket", PATIENCE, || {
        UnixStream::connect(dir.socket()).is_ok()
    });
    let mut slow = UnixStream::connect(dir.socket()).unwrap();
    slow.write_all(b"{\"v\":1,\"request\":\"events\",\"follow\":true}\n")
        .unwrap();
    // A fast one, through drctl.
    let mut fast = Drctl::new(&["events", "--follow", "--output", "json"])
        .config(&config)
        .spawn(dir.path());

    // Every agent switches at the end; the fast client and the watcher's
    // stdout see it while the slow client still has not read a byte: the
    // loop did not wait for it.
    // The burst is over when every agent's switchover has completed (the
    // last decision of each): nothing more comes until the operator switch.
    let burst_over = |lines: &mut drctl_e2e::Lines| {
        let mut done = std::collections::BTreeSet::new();
        while done.len() < agents.len() {
            let l = lines.next_line();
            if l.contains("switchover-completed") {
                let d: serde_json::Value = serde_json::from_str(&l).unwrap();
                done.insert(d["agent"].as_str().unwrap_or_default().to_owned());
            }
        }
    };
    burst_over(&mut fast.lines);
    burst_over(&mut watch.lines);

    // Now the slow client reads: what fitted, then the marker (nothing was
    // read while the burst went on, so the end of the burst did not fit)...
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = BufReader::new(slow);
    let mut next_event = || {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
        reply["event"].clone()
    };
    let mut slow_events = Vec::new();
    let mut dropped = Vec::new();
    while dropped.is_empty() {
        let event = next_event();
        if event["type"] == "dropped" {
            dropped.push((slow_events.len(), event["count"].as_u64().unwrap()));
        } else {
            slow_events.push(event);
        }
    }
    // ... then what comes after the gap: one more decision, an operator
    // switch to where agent0 already is (refused: switchover-suppressed).
    let refused = client(
        &dir,
        &config,
        &[
            "switch", "--agent", "agent0", "--to", "site2", "--yes", "--reason", "test",
        ],
    );
    assert!(!refused.success(), "{}", refused.all());
    loop {
        let event = next_event();
        // Another gap is possible: the first marker says where the first
        // one was, not that this reader has caught up (on a loaded machine
        // the decisions after the burst can fill the queue again). Each is
        // counted below.
        if event["type"] == "dropped" {
            dropped.push((slow_events.len(), event["count"].as_u64().unwrap()));
            continue;
        }
        let done = event["agent"] == "agent0" && event["type"] == "switchover-suppressed";
        slow_events.push(event);
        if done {
            break;
        }
    }
    let after = |l: &str| l.contains("\"agent0\"") && l.contains("switchover-suppressed");
    while !after(&fast.lines.next_line()) {}
    assert!(!dropped.is_empty(), "no drop marker");
    assert!(
        dropped
            .last()
            .is_some_and(|(before, _)| *before < slow_events.len()),
        "events follow the last marker"
    );

    watch.signal(libc::SIGINT);
    let ran = watch.finish();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let fast = fast.finish();
    assert_eq!(fast.code, Some(0), "{}", fast.all());

    // The watcher printed every decision; the fast client got each, in order, and no marker.
    let printed: Vec<serde_json::Value> = ran.json_lines();
    let fast_events: Vec<serde_json::Value> = fast.json_lines();
    assert!(
        fast_events.iter().all(|e| e["type"] != "dropped"),
        "the fast client lost events"
    );
    assert_eq!(
        fast_events, printed,
        "the fast client saw what the watcher printed"
    );
    assert!(printed.len() > 4800, "{} decisions", printed.len());
    // The slow client's events are the same stream with gaps, each gap
    // marked with its exact size.
    let lost: u64 = dropped.iter().map(|(_, n)| n).sum();
    let upto = printed
        .iter()
        .position(|e| e["agent"] == "agent0" && e["type"] == "switchover-suppressed")
        .unwrap();
    assert_eq!(
        slow_events.len() as u64 + lost,
        upto as u64 + 1,
        "events seen + dropped = events published"
    );
    let mut cursor = 0usize;
    let mut gaps = dropped.iter().peekable();
    for (i, e) in slow_events.iter().enumerate() {
        if let Some((before, n)) = gaps.peek() {
            if *before == i {
                cursor += *n as usize;
                gaps.next();
            }
        }
        assert_eq!(e, &printed[cursor], "slow event #{i}");
        cursor += 1;
    }
}

#[test]
fn shadow_divergences_are_streamed_and_counted() {
    let port = free_port();
    // Site1 loses telephony at 3 s: the live policy (site-timeout 1 s)
    // switches at 4 s, the candidate (20 s) would not have yet.
    let scenario =
        "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\nend = \"10m\"\n\
        [[events]]\nat = \"3s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n";
    let extra =
        format!("[policy]\nsite-timeout = \"1s\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n");
    let watcher = drctl_e2e::Watcher::start_with(scenario, &extra, |cmd| {
        cmd.args(["--shadow", "policy.site-timeout=20s"]);
    });
    let config = watcher.dir().at("drctl.toml");
    let mut follow = Drctl::new(&["events", "--follow", "--output", "json"])
        .config(&config)
        .spawn(watcher.dir().path());
    // D1's alarm diverges first (its deadline: +4 s live, +23 s candidate).
    let line = loop {
        follow.lines.wait_for("shadow-divergence");
        let line = follow.lines.seen.last().unwrap().clone();
        if line.contains("\"switchover-started\"") {
            break line;
        }
    };
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["by"], "live", "{line}");
    assert_eq!(event["decision"]["type"], "switchover-started", "{line}");
    assert_eq!(event["t"], 4_000_000_000u64, "{line}");
    let text = watcher.run(&["events"]).stdout;
    assert!(
        text.contains(
            "shadow-divergence      only the live policy decided +4.000s  switchover-started"
        ),
        "{text}"
    );
    let body = http(port, "GET", "/metrics", &[("Accept", "text/plain")])
        .unwrap()
        .body;
    let counted = body
        .lines()
        .find(|l| l.starts_with("drctl_shadow_divergences_total{"))
        .unwrap_or_default();
    let n: f64 = counted
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(n >= 1.0, "{counted}\n{body}");
    let (ran, _dir) = watcher.stop();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

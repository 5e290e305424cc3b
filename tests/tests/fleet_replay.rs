//! Fleet recordings end to end: a fleet watch recorded into one file,
//! replayed and checked agent by agent, one agent replayed alone, a
//! tampered decision named by agent and line, `--record-dir` naming.

use drctl_e2e::{assert_contains, recorded, Drctl, Ran, TestDir};
use std::path::Path;

/// D1: site1's telephony is off from 10 s for good; site-timeout 30 s.
const D1: &str = "plugins/mock/scenarios/d1-telephony-timeout.toml";

/// Three agents; E4 jitter spreads their switchovers, so each agent's
/// decisions differ from the others' in time.
const AGENTS: &str = "[[agents]]\nusername = \"ann\"\n\
                      [[agents]]\nusername = \"bob\"\n\
                      [[agents]]\nusername = \"cid\"\n";

/// `drctl watch --agents FILE` of [`D1`] on the virtual clock to its end, in JSON.
fn fleet_watch(agents: &str) -> Drctl {
    Drctl::watch(D1)
        .virtual_to_end()
        .json()
        .args(&["--agents", agents])
        .set("policy.switchover-jitter=10s")
}

/// `drctl replay FILE EXTRA...`.
fn replay(file: &Path, extra: &[&str]) -> Ran {
    Drctl::new(&["replay"]).arg(file).args(extra).run()
}

/// Decision lines as `"<agent> <t> <type>"`, in their order.
fn decisions(ran: &Ran) -> Vec<String> {
    ran.json_lines()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["agent"].as_str().unwrap_or("-"),
                d["t"],
                d["type"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A fleet watch of [`AGENTS`] recorded into `dir/fleet.jsonl`: the file and the watch.
fn record_fleet(dir: &TestDir) -> (String, Ran) {
    let agents = dir.file("agents.toml", AGENTS);
    let file = dir.at("fleet.jsonl");
    let watched = fleet_watch(&agents).record(&file).run();
    assert_eq!(watched.code, Some(0), "{}", watched.stderr);
    (file, watched)
}

#[test]
fn a_fleet_watch_is_recorded_in_one_file_and_replays_identically_agent_by_agent() {
    let dir = TestDir::new();
    let (file, watched) = record_fleet(&dir);
    let file = Path::new(&file);

    // The header says it is a fleet's, with each agent's session and seed;
    // every decision names its session.
    let text = std::fs::read_to_string(file).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2, "{header}");
    let agents: Vec<&str> = header["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["session"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["ann", "bob", "cid"]);
    assert!(header["agents"][1]["seed"].is_u64());
    let records = recorded(file);
    let in_file: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["kind"] == "decision").collect();
    assert!(in_file.iter().all(|d| d["session"].is_string()));
    let watched = decisions(&watched);
    assert_eq!(in_file.len(), watched.len());
    // The jitter set them apart: not every agent switched at the same time.
    let starts: std::collections::HashSet<String> = watched
        .iter()
        .filter(|d| d.ends_with("switchover-started"))
        .map(|d| d.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert!(starts.len() > 1, "{watched:?}");

    let check = replay(file, &["--check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    assert_eq!(
        check.stdout,
        format!("identical: {} decisions, as recorded\n", watched.len())
    );

    // The replayed timeline names each agent, as the watch printed it.
    let timeline = replay(file, &["--output", "json"]);
    assert_eq!(timeline.code, Some(0), "{}", timeline.stderr);
    assert_eq!(decisions(&timeline), watched);
    let text = replay(file, &[]).stdout;
    assert_contains(&text, " bob ");

    // One agent alone: only its decisions, checked against its own.
    let bob = replay(file, &["--agent", "bob", "--output", "json"]);
    assert_eq!(bob.code, Some(0), "{}", bob.stderr);
    let only_bob: Vec<String> = watched
        .iter()
        .filter(|d| d.starts_with("bob "))
        .cloned()
        .collect();
    assert!(!only_bob.is_empty());
    assert_eq!(decisions(&bob), only_bob);
    let check_bob = replay(file, &["--agent", "bob", "--check"]);
    assert_eq!(check_bob.code, Some(0), "{}", check_bob.all());
    assert_eq!(
        check_bob.stdout,
        format!("identical: {} decisions, as recorded\n", only_bob.len())
    );
}

#[test]
fn a_tampered_decision_of_one_agent_is_named_by_agent_and_line() {
    let dir = TestDir::new();
    let (file, _) = record_fleet(&dir);
    let text = std::fs::read_to_string(&file).unwrap();
    // Bob's telephony alarm clears as something else in the recording.
    let mut tampered_line = 0;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if tampered_line == 0 && v["session"] == "bob" && v["type"] == "alarm-cleared" {
                tampered_line = i + 1;
                l.replace("telephony-service-down", "statistic-service-down")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(tampered_line > 0, "bob clears no alarm:\n{text}");
    let bad = dir.file("tampered.jsonl", &(lines.join("\n") + "\n"));
    let check = replay(Path::new(&bad), &["--check"]);
    assert_eq!(check.code, Some(1), "{}", check.all());
    let first = check.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("differs: first divergence at ")
            && first.ends_with(&format!(", agent bob, decision 4 (line {tampered_line})")),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("alarm-cleared          statistic-service-down"),
        "{}",
        check.stdout
    );
    let json = replay(Path::new(&bad), &["--check", "--output", "json"]);
    let verdict = json.json();
    assert_eq!(verdict["check"], "differs");
    assert_eq!(verdict["first"]["agent"], "bob");
    assert_eq!(verdict["first"]["line"], tampered_line as u64);
    // Ann's decisions alone are untouched.
    let ann = replay(Path::new(&bad), &["--check", "--agent", "ann"]);
    assert_eq!(ann.code, Some(0), "{}", ann.all());

    // A recorded decision its agent does not make today is found once
    // another agent's decision today is past its time, named by its agent
    // and line: here of the agent that switches last (the jitter decides
    // which), at +20 s, before anyone's next decision.
    let records = recorded(Path::new(&file));
    let last = records
        .iter()
        .filter(|r| r["type"] == "switchover-started")
        .max_by_key(|r| r["t"].as_u64())
        .map(|r| r["session"].as_str().unwrap().to_owned())
        .unwrap();
    let extra = format!(
        "{{\"t\":20000000000,\"kind\":\"decision\",\"session\":\"{last}\",\
         \"type\":\"alarm-cleared\",\"alarm\":\"statistic-service-down\"}}"
    );
    let mut lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .skip(1)
        .position(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["t"].as_u64()
                > Some(20_000_000_000)
        })
        .unwrap()
        + 1;
    lines.insert(at, &extra);
    let more = dir.file("more.jsonl", &(lines.join("\n") + "\n"));
    let check = replay(Path::new(&more), &["--check"]);
    assert_eq!(check.code, Some(1), "{}", check.all());
    let expected = format!(
        "differs: first divergence at +20.000s, agent {last}, decision 3 (line {})\n\
         \x20 recorded     +20.000s  alarm-cleared          statistic-service-down\n\
         \x20 now                 -  (no decision)\n",
        at + 1
    );
    assert!(check.stdout.starts_with(&expected), "{}", check.stdout);
}

#[test]
fn what_follows_one_engine_needs_an_agent_on_a_fleet_recording() {
    let dir = TestDir::new();
    let (file, _) = record_fleet(&dir);
    let file = Path::new(&file);
    for extra in [
        &["--until", "45s", "--state"][..],
        &["--explain"],
        &["--inject", "at=45s site=site2 telephony=off"],
    ] {
        let out = replay(file, extra);
        assert_eq!(out.code, Some(2), "{extra:?}: {}", out.all());
        assert!(
            out.stderr.contains("name one with --agent NAME")
                && out.stderr.contains("its agents: ann, bob, cid"),
            "{extra:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{extra:?}: {}", out.stdout);
    }
    // With one agent named they work on its engine.
    let state = replay(
        file,
        &[
            "--agent", "cid", "--until", "45s", "--state", "--output", "json",
        ],
    );
    assert_eq!(state.code, Some(0), "{}", state.all());
    assert_eq!(state.json()["site"], "site2", "{}", state.stdout);
    let explained = replay(file, &["--agent", "ann", "--explain"]);
    assert_eq!(explained.code, Some(0), "{}", explained.all());
    assert_contains(&explained.stdout, "D1");
    // An agent the recording does not have is named, with those it has.
    let unknown = replay(file, &["--agent", "dan"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("--agent dan: not an agent of")
            && unknown.stderr.contains("ann, bob, cid"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn record_dir_names_a_fleets_recordings_after_the_fleet_and_rotates_them() {
    let dir = TestDir::new();
    let agents = dir.file("agents.toml", AGENTS);
    let recordings = dir.path().join("recordings");
    for _ in 0..3 {
        let out = fleet_watch(&agents)
            .args(&[
                "--record-dir",
                recordings.to_str().unwrap(),
                "--record-keep",
                "2",
            ])
            .run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    let mut names: Vec<String> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("drctl-fleet-") && n.ends_with(".jsonl")),
        "{names:?}"
    );
    let newest = recordings.join(names.last().unwrap());
    let check = replay(&newest, &["--check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
}

//! `--record` and `drctl replay`, end to end: every scenario recorded and
//! replayed identically, what-if divergences, damaged recordings, passwords.

use drctl_e2e::{
    assert_contains, assert_replays_identically, flapping_scenario, repo, without_times, Drctl,
    Ran, TestDir,
};
use std::path::{Path, PathBuf};

const SC: &str = "plugins/mock/scenarios";

/// `drctl watch --output json` of `scenario` on the virtual clock to its end, recorded into `record`.
fn watch_recorded(scenario: impl AsRef<Path>, record: impl AsRef<Path>) -> Drctl {
    Drctl::watch(scenario)
        .virtual_to_end()
        .json()
        .record(record)
}

/// [`watch_recorded`] into `dir/<scenario name>.jsonl`, which must succeed.
fn record(scenario: &Path, dir: &Path, extra: &[&str]) -> (PathBuf, Ran) {
    let name = scenario.file_stem().unwrap().to_string_lossy().into_owned();
    let file = dir.join(format!("{name}.jsonl"));
    let out = watch_recorded(scenario, &file).args(extra).run();
    assert!(out.success(), "{name}: exit {:?}\n{}", out.code, out.stderr);
    (file, out)
}

/// The shipped scenario `name` recorded into a new directory: the
/// directory, the recording and the watch that made it.
fn recorded(name: &str) -> (TestDir, PathBuf, Ran) {
    let dir = TestDir::new();
    let (file, watched) = record(&repo().join(SC).join(name), dir.path(), &[]);
    (dir, file, watched)
}

/// The demo, recorded into a new directory: the directory, the recording
/// (`demo.jsonl`) and its text.
fn recorded_demo() -> (TestDir, PathBuf, String) {
    let (dir, file, _) = recorded("demo.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    (dir, file, text)
}

/// `drctl replay FILE EXTRA...`.
fn replay(file: &Path, extra: &[&str]) -> Ran {
    Drctl::new(&["replay"]).arg(file).args(extra).run()
}

#[test]
fn every_scenario_recorded_replays_to_the_same_decisions() {
    let dir = TestDir::new();
    let mut failures = Vec::new();
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(repo().join(SC))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scenarios.sort();
    for scenario in &scenarios {
        let (file, watched) = record(scenario, dir.path(), &[]);
        let check = replay(&file, &["--check"]);
        if check.code != Some(0) || !check.stdout.starts_with("identical:") {
            failures.push(format!(
                "{}: --check exit {:?}\n{}{}",
                scenario.display(),
                check.code,
                check.stdout,
                check.stderr
            ));
            continue;
        }
        // The replayed timeline is the watched one, record for record.
        let timeline = replay(&file, &["--output", "json"]);
        if timeline.records() != watched.records() {
            failures.push(format!(
                "{}: replayed timeline differs:\n{}\nvs watched:\n{}",
                scenario.display(),
                timeline.stdout,
                watched.stdout
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(scenarios.len() >= 20, "only {} scenarios", scenarios.len());
}

#[test]
fn demo_replays_identically_and_a_shorter_site_timeout_diverges_readably() {
    let (_dir, file, _) = recorded_demo();
    let same = replay(&file, &["--check"]);
    assert_eq!(same.code, Some(0), "{}", same.stderr);
    assert_eq!(same.stdout, "identical: 13 decisions, as recorded\n");

    let what_if = replay(&file, &["--check", "--set", "policy.site-timeout=5s"]);
    assert_eq!(what_if.code, Some(1), "{}", what_if.stderr);
    let diff = what_if.stdout;
    // D1: the telephony alarm at +40 s names the switchover it announces,
    // so the what-if differs there already: due at +45 s, not +70 s.
    let expected = "\
differs: first divergence at +40.000s, decision 6
  recorded     +40.000s  alarm-raised           telephony-service-down (switchover at +70.000s)
  now          +40.000s  alarm-raised           telephony-service-down (switchover at +45.000s)
identical before it:
                +0.400s  switchover-completed   startup-relocate site2 -> site1
               +15.000s  alarm-raised           statistic-service-down
               +25.000s  alarm-cleared          statistic-service-down
decisions: 13 recorded, 9 now; 0 command divergence(s)
";
    assert_eq!(diff, expected);

    // The same verdict for machines.
    let json = replay(
        &file,
        &[
            "--check",
            "--output",
            "json",
            "--set",
            "policy.site-timeout=5s",
        ],
    );
    assert_eq!(json.code, Some(1));
    let v = json.json();
    assert_eq!(v["check"], "differs");
    assert_eq!(v["first"]["index"], 6);
    assert_eq!(v["first"]["now"]["t"], 40_000_000_000u64);
    assert_eq!(v["first"]["now"]["deadline"], 45_000_000_000u64);
    assert_eq!(v["first"]["recorded"]["alarm"], "telephony-service-down");
    assert_eq!(v["first"]["recorded"]["deadline"], 70_000_000_000u64);
}

/// A what-if that makes the policy send commands the recording does not have:
/// each is reported as a divergence and answered with an error, and the replay
/// goes on to the end of the recording (SPEC §6, plugins/replay docs).
#[test]
fn commands_the_recording_lacks_are_divergences_answered_with_errors() {
    let (_dir, file, _) = recorded("d1-telephony-recovers.toml");
    let out = replay(
        &file,
        &["--output", "json", "--set", "policy.site-timeout=10s"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let recs = out.records();
    assert_eq!(
        recs[..5],
        [
            "200000000 startup-connected site1",
            "10000000000 alarm-raised telephony-service-down",
            "20000000000 switchover-started telephony-timeout site1 site2",
            "20000000000 alarm-cleared telephony-service-down",
            // kill_factory and connect site2 are not in the recording: refused.
            "20000000000 switchover-failed site2 replay: diverged: the recording has shutdown next (line 22), not connect site2",
        ],
        "{recs:#?}"
    );
    let stderr = out.stderr;
    assert_contains(
        &stderr,
        "the policy sent kill_factory where the recording has shutdown",
    );
    assert_contains(&stderr, "they differ from decision 2 on");
}

#[test]
fn a_recording_cut_mid_line_replays_up_to_its_last_whole_line() {
    let (_dir, file, full) = recorded_demo();
    // Cut in the middle of the decision at +80 s, as a crash would.
    let at = full
        .find("\"alarm\":\"configuration-service-down\"")
        .unwrap();
    std::fs::write(&file, &full[..at]).unwrap();
    let cut_line = full[..at].lines().count();
    let out = replay(&file, &["--check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "identical: 8 decisions, as recorded \
         (the recording is cut at +80.000s; 1 later decision(s) not compared)\n"
    );
    let stderr = out.stderr;
    assert!(
        stderr.contains(&format!(":{cut_line}: the last line is cut")),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_line_is_refused_naming_it_before_anything_is_printed() {
    let (_dir, file, full) = recorded_demo();
    let mut lines: Vec<&str> = full.lines().collect();
    lines[6] = "{\"t\":400000000,\"kind\":\"event\",\"session\":\"agent-1\",oops}";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = replay(&file, &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let stderr = out.stderr;
    assert_contains(&stderr, "demo.jsonl:7: corrupt record:");

    // Valid JSON that is not a record of its kind is as bad.
    lines[6] = "{\"t\":400000000,\"kind\":\"event\",\"session\":\"agent-1\",\"epoch\":1,\"event\":{\"type\":\"volcano\"}}";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("demo.jsonl:7: corrupt record:"));
}

#[test]
fn another_format_or_a_newer_version_is_refused() {
    let (_dir, file, full) = recorded_demo();
    // Version 2 is a fleet's recording (read since it exists); 3 is newer.
    let newer = full.replacen("\"version\":1", "\"version\":3", 1);
    std::fs::write(&file, newer).unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(out.code, Some(2));
    let stderr = out.stderr;
    assert_contains(
        &stderr,
        "recording format version 3 is newer than this drctl reads (version 2)",
    );

    std::fs::write(&file, "hello\n").unwrap();
    let out = replay(&file, &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("demo.jsonl:1: not a drctl recording"));
}

/// A config that knows the agent's password.
const KNOWN_PASSWORD: &str = "[agent]\nusername = \"agent007\"\npassword = \"hunter2-e2e-known\"\n";

#[test]
fn a_known_password_never_reaches_the_recording() {
    let dir = TestDir::new();
    let config = dir.file("drctl.toml", KNOWN_PASSWORD);
    let (file, _) = record(
        &repo().join(SC).join("w1-w2-switchover.toml"),
        dir.path(),
        &["--config", &config],
    );
    let recording = std::fs::read_to_string(&file).unwrap();
    assert!(!recording.contains("hunter2-e2e-known"));
    // The password did travel: every connect carries it, redacted.
    let connects = recording.matches("\"type\":\"connect\"").count();
    assert!(connects >= 2, "{recording}");
    assert_eq!(
        recording.matches("\"password\":\"<redacted>\"").count(),
        connects
    );
    assert!(recording.contains("\"username\":\"agent007\""));
}

#[test]
fn startup_and_switch_sessions_replay_with_their_operator_inputs() {
    let dir = TestDir::new();
    let file = dir.at("drill.jsonl");
    let drill = Drctl::mock("switch", format!("{SC}/w3-operator-switch.toml"))
        .virtual_clock()
        .args(&["--yes", "--to", "site2"])
        .record(&file)
        .run();
    assert_eq!(drill.code, Some(0), "{}", drill.stderr);
    let recording = std::fs::read_to_string(&file).unwrap();
    assert!(recording.contains("\"kind\":\"operator\",\"action\":\"switch\",\"to\":\"site2\""));
    assert!(recording
        .lines()
        .next()
        .unwrap()
        .contains("\"command\":\"switch\""));
    assert_replays_identically(file.as_ref(), &[]);

    let startup_file = dir.at("startup.jsonl");
    let startup = Drctl::mock("startup", format!("{SC}/s4-preferred-unreachable.toml"))
        .virtual_clock()
        .record(&startup_file)
        .run();
    assert_eq!(startup.code, Some(3), "{}", startup.stderr);
    assert_replays_identically(startup_file.as_ref(), &[]);
}

#[test]
fn a_generated_long_recording_replays_identically() {
    let dir = TestDir::new();
    let scenario = dir.file("flaps.toml", &flapping_scenario(2_000));
    let (file, _) = record(scenario.as_ref(), dir.path(), &[]);
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(lines > 8_000, "{lines} lines");
    let check = replay(&file, &["--check"]);
    assert_eq!(check.code, Some(0), "{}", check.stderr);
    assert!(
        check.stdout.starts_with("identical: 400"),
        "{}",
        check.stdout
    );

    // Large enough for `--check` to scan the file on a second core while it
    // replays: a corrupt line deep inside is still exit 2, naming it, with
    // nothing on stdout; a cut last line still names its line.
    let full = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = full.lines().collect();
    let original = lines[5000];
    lines[5000] = "{\"t\":1,\"kind\":\"event\",garbage";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_contains(&out.stderr, ":5001: corrupt record");
    lines[5000] = original;
    let cut = lines.join("\n");
    let cut = &cut[..cut.len() - 10];
    std::fs::write(&file, cut).unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!(":{}: the last line is cut", lines.len())),
        "{}",
        out.stderr
    );
}

/// A long recording's `--check` checks every record in the pass that reads
/// the recorded decisions and leaves the events to the host, which parses
/// each as the replay backend hands it over: a bad line of any kind, deep
/// inside, is still exit 2 naming it with nothing on stdout, and so is one
/// the replay never plays (after `--until`).
#[test]
fn check_refuses_a_bad_line_of_any_kind_deep_in_a_long_recording() {
    let dir = TestDir::new();
    let scenario = dir.file("flaps.toml", &flapping_scenario(2_000));
    let (file, _) = record(scenario.as_ref(), dir.path(), &[]);
    let full = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    let find = |what: &str| {
        (5_000..lines.len())
            .find(|&i| lines[i].contains(what))
            .unwrap()
    };
    let refused = |at: usize, bad: &[u8], extra: &[&str]| {
        let mut bytes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            bytes.extend_from_slice(if i == at { bad } else { line.as_bytes() });
            bytes.push(b'\n');
        }
        std::fs::write(&file, bytes).unwrap();
        let out = replay(&file, &[&["--check"], extra].concat());
        let what = String::from_utf8_lossy(bad);
        assert_eq!(out.code, Some(2), "{what}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{what}: {}", out.stdout);
        let named = format!(":{}: corrupt record", at + 1);
        assert!(out.stderr.contains(&named), "{what}: {}", out.stderr);
    };
    let decision = find("\"kind\":\"decision\",\"type\":\"alarm-raised\"");
    refused(
        decision,
        lines[decision]
            .replace("alarm-raised", "alarm-razed")
            .as_bytes(),
        &[],
    );
    let event = find("\"kind\":\"event\"");
    let volcano = lines[event].replace("service_status", "volcano");
    refused(event, volcano.as_bytes(), &[]);
    refused(event, volcano.as_bytes(), &["--until", "10s"]);
    let mut not_utf8 = lines[event].as_bytes().to_vec();
    not_utf8.truncate(not_utf8.len() - 1);
    not_utf8.extend_from_slice(b",\"note\":\"\xff\"}");
    refused(event, &not_utf8, &[]);
    let t = &lines[event][..lines[event].find(",\"kind\"").unwrap()];
    refused(
        event,
        format!("{t},\"kind\":\"future\",oops}}").as_bytes(),
        &[],
    );
}

#[test]
fn speed_replays_on_the_real_clock() {
    let (_dir, file, watched) = recorded("w1-w2-switchover.toml");
    // A 2-minute scenario at 2000x: about 60 ms of wall time.
    let fast = [
        "--speed",
        "2000",
        "--output",
        "json",
        "--tolerance",
        "500ms",
    ];
    let out = replay(&file, &fast);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        without_times(&out.records()),
        without_times(&watched.records())
    );
    let bad = replay(&file, &["--speed", "0"]);
    assert_eq!(bad.code, Some(2));
}

#[test]
fn a_full_disk_stops_the_recording_with_one_error_and_one_alarm_and_the_watch_goes_on() {
    let out = watch_recorded(format!("{SC}/demo.toml"), "/dev/full").run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let recs = out.records();
    // The 13 decisions of the demo, and the alarm once the first flush failed.
    assert_eq!(recs.len(), 14, "{recs:#?}");
    assert_eq!(
        recs.iter()
            .filter(|r| r.ends_with("alarm-raised recording-failed"))
            .count(),
        1,
        "{recs:#?}"
    );
    let stderr = out.stderr;
    assert_eq!(stderr.matches("recording stopped").count(), 1, "{stderr}");
}

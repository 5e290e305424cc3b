//! `--record` and `drctl replay`, end to end: every scenario recorded and
//! replayed identically, what-if divergences, damaged recordings, passwords.

use drctl_e2e::{drctl, flapping_scenario, records, repo};
use std::path::{Path, PathBuf};
use std::process::Output;

const SC: &str = "plugins/mock/scenarios";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// `drctl watch --output json` of `scenario` on the virtual clock to its end, recorded into `record`.
fn watch_recorded(scenario: &str, record: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "watch",
        "--backend",
        "mock",
        "--scenario",
        scenario,
        "--clock",
        "virtual",
        "--until-end",
        "--output",
        "json",
        "--record",
        record,
    ];
    args.extend_from_slice(extra);
    drctl(&args)
}

/// [`watch_recorded`] into `dir/<scenario name>.jsonl`, which must succeed.
fn record(scenario: &Path, dir: &Path, extra: &[&str]) -> (PathBuf, Output) {
    let name = scenario.file_stem().unwrap().to_string_lossy().into_owned();
    let file = dir.join(format!("{name}.jsonl"));
    let out = watch_recorded(&scenario.to_string_lossy(), &file.to_string_lossy(), extra);
    assert!(
        out.status.success(),
        "{name}: exit {:?}\n{}",
        code(&out),
        text(&out.stderr)
    );
    (file, out)
}

fn replay(file: &Path, extra: &[&str]) -> Output {
    let file = file.to_string_lossy();
    let mut args = vec!["replay", &file];
    args.extend_from_slice(extra);
    drctl(&args)
}

#[test]
fn every_scenario_recorded_replays_to_the_same_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(repo().join(SC))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scenarios.sort();
    for scenario in &scenarios {
        let (file, watched) = record(scenario, dir.path(), &[]);
        let check = replay(&file, &["--check"]);
        if code(&check) != Some(0) || !text(&check.stdout).starts_with("identical:") {
            failures.push(format!(
                "{}: --check exit {:?}\n{}{}",
                scenario.display(),
                code(&check),
                text(&check.stdout),
                text(&check.stderr)
            ));
            continue;
        }
        // The replayed timeline is the watched one, record for record.
        let timeline = replay(&file, &["--output", "json"]);
        if records(&timeline.stdout) != records(&watched.stdout) {
            failures.push(format!(
                "{}: replayed timeline differs:\n{}\nvs watched:\n{}",
                scenario.display(),
                text(&timeline.stdout),
                text(&watched.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(scenarios.len() >= 20, "only {} scenarios", scenarios.len());
}

#[test]
fn demo_replays_identically_and_a_shorter_site_timeout_diverges_readably() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = record(&repo().join(SC).join("demo.toml"), dir.path(), &[]);
    let same = replay(&file, &["--check"]);
    assert_eq!(code(&same), Some(0), "{}", text(&same.stderr));
    assert_eq!(text(&same.stdout), "identical: 9 decisions, as recorded\n");

    let what_if = replay(&file, &["--check", "--set", "policy.site-timeout=5s"]);
    assert_eq!(code(&what_if), Some(1), "{}", text(&what_if.stderr));
    let diff = text(&what_if.stdout);
    let expected = "\
differs: first divergence at +45.000s, decision 6
  recorded     +80.000s  alarm-raised           configuration-service-down
  now          +45.000s  switchover-started     telephony-timeout site1 -> site2
identical before it:
                +0.400s  switchover-completed   startup-relocate site2 -> site1
               +15.000s  alarm-raised           statistic-service-down
               +25.000s  alarm-cleared          statistic-service-down
decisions: 9 recorded, 7 now; 0 command divergence(s)
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
    assert_eq!(code(&json), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["check"], "differs");
    assert_eq!(v["first"]["index"], 6);
    assert_eq!(v["first"]["now"]["t"], 45_000_000_000u64);
    assert_eq!(
        v["first"]["recorded"]["alarm"],
        "configuration-service-down"
    );
}

/// A what-if that makes the policy send commands the recording does not have:
/// each is reported as a divergence and answered with an error, and the replay
/// goes on to the end of the recording (SPEC §6, plugins/replay docs).
#[test]
fn commands_the_recording_lacks_are_divergences_answered_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = record(
        &repo().join(SC).join("d1-telephony-recovers.toml"),
        dir.path(),
        &[],
    );
    let out = replay(
        &file,
        &["--output", "json", "--set", "policy.site-timeout=10s"],
    );
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let recs = records(&out.stdout);
    assert_eq!(
        recs[..3],
        [
            "200000000 startup-connected site1",
            "20000000000 switchover-started telephony-timeout site1 site2",
            // kill_factory and connect site2 are not in the recording: refused.
            "20000000000 switchover-failed site2 replay: diverged: the recording has shutdown next (line 18), not connect site2",
        ],
        "{recs:#?}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the policy sent kill_factory where the recording has shutdown"),
        "{stderr}"
    );
    assert!(
        stderr.contains("they differ from decision 2 on"),
        "{stderr}"
    );
}

#[test]
fn a_recording_cut_mid_line_replays_up_to_its_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = record(&repo().join(SC).join("demo.toml"), dir.path(), &[]);
    let full = std::fs::read_to_string(&file).unwrap();
    // Cut in the middle of the decision at +80 s, as a crash would.
    let at = full
        .find("\"alarm\":\"configuration-service-down\"")
        .unwrap();
    std::fs::write(&file, &full[..at]).unwrap();
    let cut_line = full[..at].lines().count();
    let out = replay(&file, &["--check"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "identical: 5 decisions, as recorded \
         (the recording is cut at +80.000s; 1 later decision(s) not compared)\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(":{cut_line}: the last line is cut")),
        "{stderr}"
    );
}

#[test]
fn a_corrupt_line_is_refused_naming_it_before_anything_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = record(&repo().join(SC).join("demo.toml"), dir.path(), &[]);
    let full = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = full.lines().collect();
    lines[6] = "{\"t\":400000000,\"kind\":\"event\",\"session\":\"agent-1\",oops}";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = replay(&file, &[]);
    assert_eq!(code(&out), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("demo.jsonl:7: corrupt record:"), "{stderr}");

    // Valid JSON that is not a record of its kind is as bad.
    lines[6] = "{\"t\":400000000,\"kind\":\"event\",\"session\":\"agent-1\",\"epoch\":1,\"event\":{\"type\":\"volcano\"}}";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(code(&out), Some(2));
    assert!(text(&out.stderr).contains("demo.jsonl:7: corrupt record:"));
}

#[test]
fn another_format_or_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = record(&repo().join(SC).join("demo.toml"), dir.path(), &[]);
    let full = std::fs::read_to_string(&file).unwrap();
    let newer = full.replacen("\"version\":1", "\"version\":2", 1);
    std::fs::write(&file, newer).unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(code(&out), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("recording format version 2 is newer than this drctl reads (version 1)"),
        "{stderr}"
    );

    std::fs::write(&file, "hello\n").unwrap();
    let out = replay(&file, &[]);
    assert_eq!(code(&out), Some(2));
    assert!(text(&out.stderr).contains("demo.jsonl:1: not a drctl recording"));
}

#[test]
fn a_known_password_never_reaches_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("drctl.toml");
    std::fs::write(
        &config,
        "[agent]\nusername = \"agent007\"\npassword = \"hunter2-e2e-known\"\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
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
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!("{SC}/w3-operator-switch.toml");
    let file = dir.path().join("drill.jsonl");
    let file_arg = file.to_string_lossy().into_owned();
    let drill = drctl(&[
        "switch",
        "--backend",
        "mock",
        "--scenario",
        &scenario,
        "--clock",
        "virtual",
        "--yes",
        "--to",
        "site2",
        "--record",
        &file_arg,
    ]);
    assert_eq!(code(&drill), Some(0), "{}", text(&drill.stderr));
    let recording = std::fs::read_to_string(&file).unwrap();
    assert!(recording.contains("\"kind\":\"operator\",\"action\":\"switch\",\"to\":\"site2\""));
    assert!(recording
        .lines()
        .next()
        .unwrap()
        .contains("\"command\":\"switch\""));
    let check = replay(&file, &["--check"]);
    assert_eq!(
        code(&check),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );

    let startup_file = dir.path().join("startup.jsonl");
    let startup_arg = startup_file.to_string_lossy().into_owned();
    let scenario = format!("{SC}/s4-preferred-unreachable.toml");
    let startup = drctl(&[
        "startup",
        "--backend",
        "mock",
        "--scenario",
        &scenario,
        "--clock",
        "virtual",
        "--record",
        &startup_arg,
    ]);
    assert_eq!(code(&startup), Some(3), "{}", text(&startup.stderr));
    let check = replay(&startup_file, &["--check"]);
    assert_eq!(
        code(&check),
        Some(0),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
}

#[test]
fn a_generated_long_recording_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("flaps.toml");
    std::fs::write(&scenario, flapping_scenario(2_000)).unwrap();
    let (file, _) = record(&scenario, dir.path(), &[]);
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(lines > 8_000, "{lines} lines");
    let check = replay(&file, &["--check"]);
    assert_eq!(code(&check), Some(0), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).starts_with("identical: 400"),
        "{}",
        text(&check.stdout)
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
    assert_eq!(code(&out), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(":5001: corrupt record"),
        "{}",
        text(&out.stderr)
    );
    lines[5000] = original;
    let cut = lines.join("\n");
    let cut = &cut[..cut.len() - 10];
    std::fs::write(&file, cut).unwrap();
    let out = replay(&file, &["--check"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(":{}: the last line is cut", lines.len())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn speed_replays_on_the_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (file, watched) = record(
        &repo().join(SC).join("w1-w2-switchover.toml"),
        dir.path(),
        &[],
    );
    // A 2-minute scenario at 2000x: about 60 ms of wall time.
    let out = replay(
        &file,
        &[
            "--speed",
            "2000",
            "--output",
            "json",
            "--tolerance",
            "500ms",
        ],
    );
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let kinds = |o: &[u8]| -> Vec<String> {
        records(o)
            .iter()
            .map(|r| r.split_once(' ').unwrap().1.to_owned())
            .collect()
    };
    assert_eq!(kinds(&out.stdout), kinds(&watched.stdout));
    let bad = replay(&file, &["--speed", "0"]);
    assert_eq!(code(&bad), Some(2));
}

#[test]
fn a_full_disk_stops_the_recording_with_one_error_and_one_alarm_and_the_watch_goes_on() {
    let out = watch_recorded(&format!("{SC}/demo.toml"), "/dev/full", &[]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let recs = records(&out.stdout);
    // The nine decisions of the demo, and the alarm once the first flush failed.
    assert_eq!(recs.len(), 10, "{recs:#?}");
    assert_eq!(
        recs.iter()
            .filter(|r| r.ends_with("alarm-raised recording-failed"))
            .count(),
        1,
        "{recs:#?}"
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("recording stopped").count(), 1, "{stderr}");
}

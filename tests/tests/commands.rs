//! `drctl startup`, `drctl switch` and `watch` on the real clock, end to end.

use drctl_e2e::{drctl, records};

const SC: &str = "plugins/mock/scenarios";

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn startup(scenario: &str, extra: &[&str]) -> std::process::Output {
    let path = format!("{SC}/{scenario}");
    let mut args = vec![
        "startup",
        "--backend",
        "mock",
        "--scenario",
        &path,
        "--clock",
        "virtual",
    ];
    args.extend_from_slice(extra);
    drctl(&args)
}

#[test]
fn startup_exit_codes_say_where_the_agent_landed() {
    assert_eq!(
        code(&startup("s4-relocate-to-preferred.toml", &[])),
        Some(0)
    );
    assert_eq!(
        code(&startup("s4-preferred-unreachable.toml", &[])),
        Some(3)
    );
    let out = startup(
        "s1-both-sites-down-backoff.toml",
        &["--set", "startup.timeout=10s"],
    );
    assert_eq!(code(&out), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("startup.timeout"));
}

fn switch(extra: &[&str]) -> std::process::Output {
    let path = format!("{SC}/w3-operator-switch.toml");
    let mut args = vec![
        "switch",
        "--backend",
        "mock",
        "--scenario",
        &path,
        "--clock",
        "virtual",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    drctl(&args)
}

#[test]
fn switch_runs_the_drill_verifies_and_prints_the_timing_table() {
    let out = switch(&["--yes", "--to", "site2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), Some(0), "{stderr}");
    assert_eq!(
        records(&out.stdout),
        vec![
            "200000000 startup-connected site1",
            "200000000 switchover-started operator site1 site2",
            "400000000 switchover-completed operator site1 site2",
        ]
    );
    // connect-latency 200 ms, register-delay 1 s in the scenario.
    for row in [
        "kill factory               0.000s",
        "connect                    0.200s",
        "listeners                  0.000s",
        "DN back in service         1.000s",
        "total                      1.200s",
    ] {
        assert!(stderr.contains(row), "{row:?} not in\n{stderr}");
    }
}

#[test]
fn switch_to_the_current_site_fails_without_changing_anything() {
    let out = switch(&["--yes", "--to", "site1"]);
    assert_eq!(code(&out), Some(2));
    let recs = records(&out.stdout);
    assert!(
        recs.iter().all(|r| !r.contains("switchover-started")),
        "{recs:?}"
    );
}

#[test]
fn switch_refuses_without_yes_when_not_on_a_terminal() {
    let out = switch(&[]);
    assert_eq!(code(&out), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(out.stdout.is_empty());
}

#[test]
fn switch_dry_run_prints_the_plan_and_connects_nowhere() {
    let out = switch(&["--dry-run", "--to", "site2"]);
    assert_eq!(code(&out), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kill the AIL factory") && stdout.contains("dry run"),
        "{stdout}"
    );
    assert!(!stdout.contains("startup-connected"));
}

#[test]
fn watch_runs_on_the_real_clock() {
    // The demo's story, scaled down to about two seconds of wall time.
    let dir = std::env::temp_dir().join(format!("drctl-e2e-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short-demo.toml");
    std::fs::write(
        &path,
        r#"
[deployment]
preferred-site = "site1"
first-site = "site2"
connect-latency = "50ms"
register-delay = "100ms"
site-timeout = "1s"
end = "2500ms"

[[events]]
at = "500ms"
site = "site1"
set = { telephony = "off" }
"#,
    )
    .unwrap();
    let p = path.to_string_lossy().into_owned();
    let out = drctl(&[
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &p,
        "--until-end",
        "--output",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&out.stdout);
    let kinds: Vec<String> = recs
        .iter()
        .map(|r| r.split(' ').skip(1).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "startup-connected site2",
            "switchover-started startup-relocate site2 site1",
            "switchover-completed startup-relocate site2 site1",
            "switchover-started telephony-timeout site1 site2",
            "switchover-completed telephony-timeout site1 site2",
        ]
    );
    // Real time never runs early: the site timer fires no sooner than
    // 500 ms + site-timeout (1 s) after the start.
    let t: u64 = recs[3].split(' ').next().unwrap().parse().unwrap();
    assert!(t >= 1_500_000_000, "{t}");
}

#[test]
fn plugins_list_shows_mock_and_replay_with_their_abi_and_capabilities() {
    let out = drctl(&["plugins", "list"]);
    assert_eq!(code(&out), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["mock", "replay"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        assert!(
            line.contains("ABI 1.1") && line.contains("deterministic"),
            "{line}"
        );
        assert!(line.contains(&format!("libdrctl_plugin_{name}")), "{line}");
    }
}

/// SIGINT once the demo's relocation has completed: exit 0, the decisions so
/// far and nothing else, `shutdown` sent to the backend, the recording closed
/// (it ends with the shutdown and replays identically), and the alarm sink
/// drained: its two switchover notifications were still queued (each takes
/// the sink a second) when the signal came, and both went out.
#[test]
fn watch_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let rec = dir.path().join("run.jsonl");
    let sink_log = dir.path().join("sink.log");
    let config = dir.path().join("drctl.toml");
    std::fs::write(
        &config,
        format!(
            "[control]\nsocket = \"{}\"\n\
             [[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"10s\"\n\
             command = [\"sh\", \"-c\", \"sleep 1; echo $DRCTL_EVENT $DRCTL_STATE $DRCTL_REASON >> {}\"]\n",
            dir.path().join("ctl.sock").display(),
            sink_log.display()
        ),
    )
    .unwrap();
    let mut child = drctl_e2e::command(
        &[
            "--config",
            &config.to_string_lossy(),
            "watch",
            "--backend",
            "mock",
            "--scenario",
            "plugins/mock/scenarios/demo.toml",
            "--output",
            "json",
            "--record",
            &rec.to_string_lossy(),
        ],
        dir.path(),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn drctl");
    let mut lines = drctl_e2e::Lines::of(&mut child);
    // The third decision: the relocation to the preferred site is over.
    lines.wait_for("\"switchover-completed\"");
    drctl_e2e::signal(&child, "-INT");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("watch stopped"), "{stderr}");
    let stdout: String = lines.rest().iter().map(|l| format!("{l}\n")).collect();
    let kinds: Vec<String> = records(stdout.as_bytes())
        .iter()
        .map(|r| r.split(' ').skip(1).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        kinds,
        [
            "startup-connected site2",
            "switchover-started startup-relocate site2 site1",
            "switchover-completed startup-relocate site2 site1",
        ]
    );
    // Shutdown sent and the recording closed: it ends with the operator's
    // shutdown, the shutdown command and its answer, and replays as recorded.
    let recorded = drctl_e2e::recorded(&rec);
    let tail: Vec<String> = recorded[recorded.len() - 3..]
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap_or_default(),
                [&r["action"], &r["command"]["type"], &r["result"]["type"]]
                    .iter()
                    .find_map(|v| v.as_str())
                    .unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        tail,
        ["operator shutdown", "command shutdown", "result done"]
    );
    assert!(std::fs::read_to_string(&rec).unwrap().ends_with('\n'));
    let check = drctl(&["replay", &rec.to_string_lossy(), "--check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // Sinks drained: both notifications went out after the signal.
    assert_eq!(
        std::fs::read_to_string(&sink_log).unwrap_or_default(),
        "switchover started startup-relocate\nswitchover completed startup-relocate\n"
    );
}

/// On a terminal the spinner never shares a line with a decision: each
/// decision line is written with the spinner cleared (checked under `script`,
/// which gives drctl a pseudo-terminal; skipped where there is none).
#[test]
fn on_a_terminal_decision_lines_are_not_torn_by_the_spinner() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no `script` here: skipped");
        return;
    }
    let cmd = format!(
        "{} -q switch --backend mock --scenario {SC}/w3-operator-switch.toml --yes --to site2",
        drctl_e2e::drctl_bin().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qc", &cmd, "/dev/null"])
        .current_dir(drctl_e2e::repo())
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&out.stdout);
    let decisions: Vec<&str> = tty
        .split('\n')
        .filter(|l| l.contains("switchover-") || l.contains("startup-connected"))
        .collect();
    assert_eq!(decisions.len(), 3, "{tty:?}");
    for line in decisions {
        // What the terminal shows on that line: the text after its last clear-line.
        let shown = line.rsplit("\u{1b}[2K").next().unwrap_or(line);
        assert!(
            shown.starts_with('+')
                && !shown.contains("starting up")
                && !shown.contains("verifying"),
            "torn line: {line:?}"
        );
    }
}

//! `drctl startup`, `drctl switch` and `watch` on the real clock, end to end.

use drctl_e2e::{
    assert_contains, assert_replays_identically, recorded_steps, test_scenario, without_times,
    Drctl, Ran, TestDir,
};

const SC: &str = "plugins/mock/scenarios";

/// `drctl startup` of a shipped scenario on the virtual clock.
fn startup(scenario: &str, extra: &[&str]) -> Ran {
    Drctl::mock("startup", format!("{SC}/{scenario}"))
        .virtual_clock()
        .args(extra)
        .run()
}

#[test]
fn startup_exit_codes_say_where_the_agent_landed() {
    assert_eq!(startup("s4-relocate-to-preferred.toml", &[]).code, Some(0));
    assert_eq!(startup("s4-preferred-unreachable.toml", &[]).code, Some(3));
    let out = startup(
        "s1-both-sites-down-backoff.toml",
        &["--set", "startup.timeout=10s"],
    );
    assert_eq!(out.code, Some(4));
    assert!(out.stderr.contains("startup.timeout"));
}

/// `drctl switch --output json` of the operator-switch scenario on the virtual clock.
fn switch(extra: &[&str]) -> Ran {
    Drctl::mock("switch", format!("{SC}/w3-operator-switch.toml"))
        .virtual_clock()
        .json()
        .args(extra)
        .run()
}

#[test]
fn switch_runs_the_drill_verifies_and_prints_the_timing_table() {
    let out = switch(&["--yes", "--to", "site2"]);
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(0), "{stderr}");
    assert_eq!(
        out.records(),
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
    assert_eq!(out.code, Some(2));
    let recs = out.records();
    assert!(
        recs.iter().all(|r| !r.contains("switchover-started")),
        "{recs:?}"
    );
}

#[test]
fn switch_refuses_without_yes_when_not_on_a_terminal() {
    let out = switch(&[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--yes"));
    assert!(out.stdout.is_empty());
}

#[test]
fn switch_dry_run_prints_the_plan_and_connects_nowhere() {
    let out = switch(&["--dry-run", "--to", "site2"]);
    assert_eq!(out.code, Some(0));
    let stdout = &out.stdout;
    assert!(
        stdout.contains("kill the AIL factory") && stdout.contains("dry run"),
        "{stdout}"
    );
    assert!(!stdout.contains("startup-connected"));
}

#[test]
fn watch_runs_on_the_real_clock() {
    // The demo's story, scaled down to about two seconds of wall time.
    let out = Drctl::watch(test_scenario("short-demo.toml"))
        .arg("--until-end")
        .json()
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let recs = out.records();
    let (alarms, switches): (Vec<String>, Vec<String>) = without_times(&recs)
        .into_iter()
        .partition(|k| k.starts_with("alarm-"));
    assert_eq!(
        switches,
        vec![
            "startup-connected site2",
            "switchover-started startup-relocate site2 site1",
            "switchover-completed startup-relocate site2 site1",
            "switchover-started telephony-timeout site1 site2",
            "switchover-completed telephony-timeout site1 site2",
        ]
    );
    assert!(
        alarms
            == [
                "alarm-raised telephony-service-down",
                "alarm-cleared telephony-service-down"
            ],
        "{alarms:?}"
    );
    // Real time never runs early: the site timer fires no sooner than
    // 500 ms + site-timeout (1 s) after the start.
    let started = recs
        .iter()
        .find(|r| r.contains(" switchover-started telephony-timeout"))
        .unwrap();
    let t: u64 = started.split(' ').next().unwrap().parse().unwrap();
    assert!(t >= 1_500_000_000, "{t}");
}

#[test]
fn plugins_list_shows_mock_and_replay_with_their_abi_and_capabilities() {
    let out = Drctl::new(&["plugins", "list"]).run();
    assert_eq!(out.code, Some(0));
    let stdout = &out.stdout;
    for name in ["mock", "replay"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"));
        assert!(
            line.contains("ABI 1.2") && line.contains("deterministic"),
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
    let dir = TestDir::new();
    let rec = dir.at("run.jsonl");
    let sink_log = dir.at("sink.log");
    let config = dir.control_config(&format!(
        "[[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"10s\"\n\
         command = [\"sh\", \"-c\", \"sleep 1; echo $DRCTL_EVENT $DRCTL_STATE $DRCTL_REASON >> {sink_log}\"]\n"
    ));
    let mut watch = Drctl::watch(format!("{SC}/demo.toml"))
        .config(&config)
        .json()
        .record(&rec)
        .spawn(dir.path());
    // The third decision: the relocation to the preferred site is over.
    watch.lines.wait_for("\"switchover-completed\"");
    watch.signal(libc::SIGINT);
    let out = watch.finish();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_contains(&out.stderr, "watch stopped");
    assert_eq!(
        without_times(&out.records()),
        [
            "startup-connected site2",
            "switchover-started startup-relocate site2 site1",
            "switchover-completed startup-relocate site2 site1",
        ]
    );
    // Shutdown sent and the recording closed: it ends with the operator's
    // shutdown, the shutdown command and its answer, and replays as recorded.
    let steps = recorded_steps(rec.as_ref());
    assert_eq!(
        steps[steps.len() - 3..],
        ["operator shutdown", "command shutdown", "result done"]
    );
    assert!(std::fs::read_to_string(&rec).unwrap().ends_with('\n'));
    assert_replays_identically(rec.as_ref(), &[]);
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
            shown.trim_start().starts_with('+')
                && !shown.contains("starting up")
                && !shown.contains("verifying"),
            "torn line: {line:?}"
        );
    }
}

//! `drctl history`: the host's audit log survives a `SIGKILL` right after a
//! switchover and a restart, and says who ran what.

use drctl_e2e::{read_test_scenario, Drctl, TestDir};
use std::path::Path;
use std::time::Duration;

/// `--set history.file=LOG`.
fn history_file(log: &Path) -> String {
    format!("history.file={}", log.display())
}

/// `drctl history --output json` of the log at `log`, one value a line.
fn history(log: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    Drctl::new(&["history"])
        .json()
        .set(&history_file(log))
        .args(extra)
        .run()
        .expect_code(0)
        .json_lines()
}

/// Starts a real-clock watcher on the scenario, logging history to `log`;
/// kills it with SIGKILL once the switchover completed. Its pid.
fn watch_and_kill(dir: &TestDir, scenario: &str, log: &Path) -> u32 {
    let mut watcher = Drctl::watch(scenario)
        .sets(&[&history_file(log), "agent.username=ann"])
        .spawn(dir.path());
    watcher.lines.wait_for("switchover-completed");
    let pid = watcher.id();
    watcher.signal(libc::SIGKILL);
    assert!(watcher.wait_within(Duration::from_secs(10)).is_some());
    pid
}

#[test]
fn history_survives_sigkill_and_restarts_and_names_who_ran_it() {
    let dir = TestDir::new();
    // A switchover one second in (D4 graceful shutdown), then nothing until 1 h.
    let scenario = dir.file("s.toml", &read_test_scenario("history-one-switchover.toml"));
    let log = dir.path().join("state").join("history.jsonl");

    let first = watch_and_kill(&dir, &scenario, &log);
    let second = watch_and_kill(&dir, &scenario, &log);

    let all = history(&log, &[]);
    for pid in [first, second] {
        let mine: Vec<_> = all.iter().filter(|l| l["pid"] == pid).collect();
        let types: Vec<_> = mine.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert!(
            types.contains(&"switchover-started") && types.contains(&"switchover-completed"),
            "pid {pid}: {types:?}"
        );
        for l in &mine {
            assert_eq!(l["agent"], "ann", "{l}");
            assert_eq!(l["command"], "watch", "{l}");
            assert!(
                l["uid"].is_u64() && l["time"].is_string() && l["config"].is_string(),
                "{l}"
            );
            assert_eq!(l["drctl"], env!("CARGO_PKG_VERSION"), "{l}");
        }
    }
    // Oldest first: the first watcher's lines before the second's.
    let pos = |pid: u32| all.iter().position(|l| l["pid"] == pid).unwrap();
    assert!(pos(first) < pos(second));

    let completed = history(&log, &["--type", "switchover-completed", "--agent", "ann"]);
    assert_eq!(completed.len(), 2, "{completed:?}");
    assert!(history(&log, &["--agent", "bob"]).is_empty());
    assert_eq!(history(&log, &["--last", "1"]).len(), 1);

    // Private: the log holds who did what on this host.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");

    // Text for people names the decision, the reason and the process.
    let text = Drctl::new(&["history", "--type", "switchover-started"])
        .set(&history_file(&log))
        .run()
        .stdout;
    assert!(
        text.contains("reason=graceful-shutdown") && text.contains(&format!("watch {first}")),
        "{text}"
    );
}

#[test]
fn virtual_clock_runs_are_not_history() {
    let dir = TestDir::new();
    let log = dir.path().join("history.jsonl");
    Drctl::watch(Drctl::DEMO)
        .virtual_to_end()
        .set(&history_file(&log))
        .run()
        .expect_code(0);
    assert!(history(&log, &[]).is_empty());
}

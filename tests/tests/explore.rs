//! `drctl explore`: a property broken by a seeded fault schedule is found,
//! shrunk to a small scenario, and that scenario reproduces it.

use drctl_e2e::{drctl, records};
use std::path::Path;

/// Manual failback: any telephony outage longer than site-timeout at the
/// preferred site leaves the agent on site2 for good.
const BASE: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
connect-latency = "200ms"
register-delay = "2s"
site-timeout = "30s"
end = "15m"
"#;

fn explore(base: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "explore",
        "--scenario",
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    drctl(&args)
}

#[test]
fn a_broken_property_is_found_shrunk_and_reproduced_by_watch() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, BASE).unwrap();
    let out = dir.path().join("found");
    let args = [
        "--seeds",
        "10",
        "--faults",
        "telephony,configuration,statistic",
        "--check",
        "ends-preferred",
    ];
    let run = explore(&base, &out, &args);
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let findings: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!findings.is_empty());
    // Deterministic from the seeds: a second run finds exactly the same.
    let again = explore(&base, &dir.path().join("again"), &args);
    let strip =
        |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).replace("/again/", "/found/");
    assert_eq!(strip(&run), strip(&again));

    for f in &findings {
        assert_eq!(f["property"], "ends-preferred", "{f}");
        let file = Path::new(f["file"].as_str().unwrap());
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with(&format!(
                "# drctl explore: seed {} breaks ends-preferred",
                f["seed"]
            )),
            "{text}"
        );
        let scenario: toml::Table = toml::from_str(&text).unwrap();
        let events = scenario["events"].as_array().unwrap();
        assert!(events.len() <= 3, "shrunk to at most 3 events: {text}");
        // The shrunk scenario breaks the property under `watch` too.
        let watched = drctl(&[
            "watch",
            "--backend",
            "mock",
            "--scenario",
            file.to_str().unwrap(),
            "--clock",
            "virtual",
            "--until-end",
            "--output",
            "json",
        ]);
        assert_eq!(watched.status.code(), Some(0));
        let decisions = records(&watched.stdout);
        let last_move = decisions
            .iter()
            .rev()
            .find(|r| r.contains("switchover-completed"))
            .unwrap_or_else(|| panic!("{decisions:?}"));
        assert!(last_move.ends_with("site1 site2"), "{decisions:?}");
    }
}

#[test]
fn a_property_that_holds_exits_zero_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, BASE).unwrap();
    let out = dir.path().join("found");
    // Stat Servers going down never takes telephony or the DN away.
    let run = explore(
        &base,
        &out,
        &[
            "--seeds",
            "20",
            "--faults",
            "statistic",
            "--check",
            "rto<=1s,no-flap",
        ],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stdout.is_empty());
    assert!(!out.exists());
}

#[test]
fn bad_flags_are_bad_input_naming_what_is_expected() {
    for (flag, value, says) in [
        ("--check", "fast", "unknown property"),
        ("--faults", "power", "unknown fault \"power\""),
    ] {
        let out = drctl(&["explore", "--scenario", "x.toml", flag, value]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says));
    }
}

//! `drctl explore`: a property broken by a seeded fault schedule is found,
//! shrunk to a small scenario, and that scenario reproduces it.

use drctl_e2e::{read_test_scenario, Drctl, Ran, TestDir};
use std::path::Path;

/// `drctl explore --scenario DIR/base.toml --out DIR/OUT --output json
/// --seeds SEEDS --faults FAULTS --check CHECK`, with `tests/scenarios/explore-base.toml`
/// (manual failback: any telephony outage longer than site-timeout at the
/// preferred site leaves the agent on site2 for good) written there first.
fn explore(dir: &TestDir, out: &str, [seeds, faults, check]: [&str; 3]) -> Ran {
    let base = dir.file("base.toml", &read_test_scenario("explore-base.toml"));
    Drctl::new(&["explore", "--scenario", &base, "--out", &dir.at(out)])
        .json()
        .args(&["--seeds", seeds, "--faults", faults, "--check", check])
        .run()
}

#[test]
fn a_broken_property_is_found_shrunk_and_reproduced_by_watch() {
    let dir = TestDir::new();
    let args = ["10", "telephony,configuration,statistic", "ends-preferred"];
    let run = explore(&dir, "found", args).expect_code(1);
    let findings = run.json_lines();
    assert!(!findings.is_empty());
    // Deterministic from the seeds: a second run finds exactly the same.
    let again = explore(&dir, "again", args);
    let strip = |r: &Ran| r.stdout.replace("/again/", "/found/");
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
        let decisions = Drctl::watch(file)
            .virtual_to_end()
            .json()
            .run()
            .expect_code(0)
            .records();
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
    let dir = TestDir::new();
    // Stat Servers going down never takes telephony or the DN away.
    let run = explore(&dir, "found", ["20", "statistic", "rto<=1s,no-flap"]).expect_code(0);
    assert!(run.stdout.is_empty());
    assert!(!dir.path().join("found").exists());
}

#[test]
fn bad_flags_are_bad_input_naming_what_is_expected() {
    for (flag, value, says) in [
        ("--check", "fast", "unknown property"),
        ("--faults", "power", "unknown fault \"power\""),
    ] {
        let out = Drctl::new(&["explore", "--scenario", "x.toml", flag, value])
            .run()
            .expect_code(2);
        assert!(out.stderr.contains(says));
    }
}

//! Every shipped mock scenario, run on the virtual clock: the exact decision
//! sequence at the exact virtual times (SPEC §6). Then the rules behind some
//! of those numbers (the S1 backoff), and one run per config key that the
//! engine takes from the config, showing the key's effect (the key at two
//! values, the scenarios in `tests/scenarios/`).

use drctl_e2e::{repo, watch_test_scenario, Drctl};
use serde_json::Value;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// The decisions of the shipped mock scenario `scenario`, on the virtual
/// clock to its end (as [`drctl_e2e::records`] gives them).
fn run(scenario: &str) -> Vec<String> {
    let out = Drctl::watch(format!("plugins/mock/scenarios/{scenario}"))
        .virtual_to_end()
        .json()
        .run();
    assert!(
        out.success(),
        "{scenario}: exit {:?}\n{}",
        out.code,
        out.stderr
    );
    out.records()
}

fn at(t: u64, rest: &str) -> String {
    format!("{t} {rest}")
}

/// Where every shipped scenario's expected decisions are written down.
const EXPECTED: &str = "tests/expected/shipped-scenarios.toml";

/// (scenario, expected records) from [`EXPECTED`], the times in nanoseconds
/// as [`drctl_e2e::records`] gives them.
fn expectations() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo().join(EXPECTED)).expect(EXPECTED);
    let table: std::collections::BTreeMap<String, Vec<String>> =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{EXPECTED}: {e}"));
    table
        .into_iter()
        .map(|(scenario, want)| (scenario, want.iter().map(|d| in_ns(d)).collect()))
        .collect()
}

/// [`in_ns`] of each decision of `parts`, in order.
fn in_ns_all(parts: &[&[&str]]) -> Vec<String> {
    parts.concat().into_iter().map(in_ns).collect()
}

/// `"40.2 switchover-completed ..."` (seconds) as `"40200000000 switchover-completed ..."`.
fn in_ns(decision: &str) -> String {
    let (secs, rest) = decision
        .split_once(' ')
        .unwrap_or_else(|| panic!("{EXPECTED}: no time in {decision:?}"));
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    let parse = |n: &str| -> u64 {
        n.parse()
            .unwrap_or_else(|e| panic!("{EXPECTED}: {decision:?}: {e}"))
    };
    assert!(frac.len() <= 9, "{EXPECTED}: {decision:?}: finer than 1 ns");
    at(parse(whole) * S + parse(&format!("{frac:0<9}")), rest)
}

#[test]
fn every_shipped_scenario_decides_exactly_as_expected() {
    let expected = expectations();
    let mut failures = Vec::new();
    for (scenario, want) in &expected {
        let got = run(scenario);
        if &got != want {
            failures.push(format!("{scenario}:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shipped_scenario_has_an_expectation() {
    let expected = expectations();
    let covered: Vec<&str> = expected.iter().map(|(s, _)| s.as_str()).collect();
    for entry in std::fs::read_dir(repo().join("plugins/mock/scenarios")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(covered.contains(&name.as_str()), "{name} is not exercised");
    }
}

/// The lines of `lines` that `keep` keeps.
fn only(lines: &[String], keep: impl Fn(&str) -> bool) -> Vec<String> {
    lines.iter().filter(|l| keep(l)).cloned().collect()
}

/// The decisions that are not alarms (alarm rules are not what these tests show).
fn no_alarms(decisions: &[String]) -> Vec<String> {
    only(decisions, |d| !d.contains(" alarm-"))
}

/// The commands of a recording: `"<t ns> <type> <site>"`.
fn commands(rec: &[Value]) -> Vec<String> {
    rec.iter()
        .filter(|r| r["kind"] == "command")
        .map(|r| {
            format!(
                "{} {} {}",
                r["t"],
                r["command"]["type"].as_str().unwrap_or_default(),
                r["command"]["site"].as_str().unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

/// S1's backoff config: initial (s), factor, max (s), jitter.
struct Backoff {
    initial: f64,
    factor: f64,
    max: f64,
    jitter: f64,
}

/// The S1 rounds of a recording in which both sites refuse until one answers:
/// each round tries site1 then site2, and the delay from a round's last
/// refusal to the next round's first connect is `min(initial * factor^k, max)`
/// scaled by a factor in `[1 - jitter, 1 + jitter)`. Returns the delays.
fn check_backoff(rec: &[Value], b: &Backoff) -> Vec<u64> {
    let connects: Vec<&Value> = rec
        .iter()
        .filter(|r| r["kind"] == "command" && r["command"]["type"] == "connect")
        .collect();
    let result_t = |id: &Value| {
        rec.iter()
            .find(|r| r["kind"] == "result" && &r["id"] == id)
            .and_then(|r| r["t"].as_u64())
            .expect("every connect is answered")
    };
    let mut gaps = Vec::new();
    for (i, c) in connects.iter().enumerate() {
        let site = c["command"]["site"].as_str().unwrap_or_default();
        let want = if i % 2 == 0 { "site1" } else { "site2" };
        assert_eq!(site, want, "connect {i}: S1 alternates the sites");
        if i > 0 && i % 2 == 0 {
            let refused = result_t(&connects[i - 1]["id"]);
            let t = c["t"].as_u64().unwrap();
            // Never a tight loop: a round starts only after the last one failed.
            assert!(
                t > refused,
                "connect {i} at {t} before the refusal at {refused}"
            );
            gaps.push(t - refused);
        }
    }
    for (k, &gap) in gaps.iter().enumerate() {
        let base = (b.initial * b.factor.powi(k as i32)).min(b.max);
        let (lo, hi) = (base * (1.0 - b.jitter), base * (1.0 + b.jitter));
        let gap_s = gap as f64 / 1e9;
        // 1 µs for the float-to-nanosecond rounding.
        assert!(
            gap_s >= lo - 1e-6 && gap_s <= hi + 1e-6,
            "backoff {k}: {gap_s} s, expected {lo} s to {hi} s (all: {gaps:?})"
        );
    }
    // The scenario is long enough for the cap to be reached and kept.
    let capped = (0..gaps.len())
        .filter(|&k| b.initial * b.factor.powi(k as i32) >= b.max)
        .count();
    assert!(capped >= 3, "only {capped} capped delays in {gaps:?}");
    gaps
}

/// S1: the retry spacing follows the rule for the defaults (1 s, ×2, 60 s,
/// ±20 %), for another config (each key at another value, so a key wired to
/// the wrong field breaks the bounds), and without jitter (exact delays).
#[test]
fn s1_backoff_spacing_follows_initial_factor_max_and_jitter() {
    let scenario = "s1-backoff-to-the-cap.toml";
    let defaults = Backoff {
        initial: 1.0,
        factor: 2.0,
        max: 60.0,
        jitter: 0.2,
    };
    let (decisions, rec) = watch_test_scenario(scenario, &[]);
    let gaps = check_backoff(&rec, &defaults);
    // Jitter is applied: the delays are not exactly the base ones.
    let exact = gaps
        .iter()
        .enumerate()
        .filter(|&(k, &g)| {
            let base = (defaults.initial * defaults.factor.powi(k as i32)).min(defaults.max);
            (g as f64 / 1e9 - base).abs() < 1e-3
        })
        .count();
    assert!(exact < gaps.len() / 2, "no jitter in {gaps:?}");
    // site1 answers from 400 s on: the first round after that connects.
    let last_refusal = rec
        .iter()
        .rfind(|r| r["kind"] == "result" && r["result"]["type"] == "error")
        .and_then(|r| r["t"].as_u64())
        .unwrap();
    assert!(last_refusal < 400 * S, "{last_refusal}");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert!(decisions[0].ends_with(" startup-connected site1"));

    let other = Backoff {
        initial: 0.5,
        factor: 3.0,
        max: 10.0,
        jitter: 0.1,
    };
    let (_, rec) = watch_test_scenario(
        scenario,
        &[
            "startup.backoff.initial=500ms",
            "startup.backoff.factor=3.0",
            "startup.backoff.max=10s",
            "startup.backoff.jitter=0.1",
        ],
    );
    check_backoff(&rec, &other);

    let (_, rec) = watch_test_scenario(scenario, &["startup.backoff.jitter=0"]);
    let gaps = check_backoff(
        &rec,
        &Backoff {
            jitter: 0.0,
            ..defaults
        },
    );
    assert_eq!(
        gaps[..7],
        [1, 2, 4, 8, 16, 32, 60].map(|s| s * S),
        "{gaps:?}"
    );
}

/// E1 `policy.hold-down`: off, site2's outage switches back at 80 s; with
/// 120 s, the trigger is suppressed and acted on when the hold-down ends
/// (120 s after the switchover completed at 40.2 s).
#[test]
fn policy_hold_down_delays_the_next_automatic_switchover() {
    let scenario = "e1-hold-down.toml";
    // In seconds, as in `tests/expected/`.
    let first = [
        "0.2 startup-connected site1",
        "40 switchover-started telephony-timeout site1 site2",
        "40.2 switchover-completed telephony-timeout site1 site2",
    ];
    let (off, _) = watch_test_scenario(scenario, &[]);
    let back = [
        "80 switchover-started telephony-timeout site2 site1",
        "80.2 switchover-completed telephony-timeout site2 site1",
    ];
    assert_eq!(no_alarms(&off), in_ns_all(&[&first, &back]));
    let (on, _) = watch_test_scenario(scenario, &["policy.hold-down=120s"]);
    let held_back = [
        "80 switchover-suppressed telephony-timeout hold-down",
        "160.2 switchover-started telephony-timeout site2 site1",
        "160.4 switchover-completed telephony-timeout site2 site1",
    ];
    assert_eq!(no_alarms(&on), in_ns_all(&[&first, &held_back]));
}

/// E2 `policy.failback` and `policy.failback-after`: manual stays on site2;
/// auto returns to the preferred site1, no sooner than `failback-after` after
/// landing on site2 (40.2 s), and later for a longer `failback-after`.
#[test]
fn policy_failback_auto_returns_to_the_preferred_site_after_failback_after() {
    let scenario = "e2-failback.toml";
    let landed = 40 * S + 200 * MS;
    let failback_at = |decisions: &[String]| -> Option<u64> {
        decisions
            .iter()
            .find(|d| d.contains(" switchover-started failback site2 site1"))
            .map(|d| d.split(' ').next().unwrap().parse().unwrap())
    };
    let (manual, _) = watch_test_scenario(scenario, &[]);
    assert!(
        manual
            .iter()
            .any(|d| d.ends_with("switchover-completed telephony-timeout site1 site2")),
        "{manual:?}"
    );
    assert_eq!(failback_at(&manual), None, "{manual:?}");
    assert!(!manual.iter().any(|d| d.contains("failback")), "{manual:?}");
    let mut times = Vec::new();
    for after in [60, 180] {
        let (auto, _) = watch_test_scenario(
            scenario,
            &[
                "policy.failback=auto",
                &format!("policy.failback-after={after}s"),
            ],
        );
        let t = failback_at(&auto).unwrap_or_else(|| panic!("no failback: {auto:?}"));
        assert!(
            t >= landed + after * S,
            "failback at {t} with failback-after {after}s"
        );
        assert!(
            auto.iter()
                .any(|d| d.ends_with("switchover-completed failback site2 site1")),
            "{auto:?}"
        );
        times.push(t);
    }
    assert!(times[1] > times[0], "{times:?}");
}

/// `agent.embedded-endpoint`: after a dr-force_logout the backend is asked to
/// relaunch the endpoint only when it is set (D4); the decisions are the same
/// but for when `sip-registration-lost` clears: the relaunched endpoint
/// registers `register-delay` (2 s) after the relaunch, before the scenario's
/// own EventDNBackInService at 20 s.
#[test]
fn agent_embedded_endpoint_relaunches_the_endpoint_after_a_dr_force_logout() {
    let scenario = "d4-logouts.toml";
    let relaunches = |rec: &[Value]| only(&commands(rec), |c| c.contains("relaunch_endpoint"));
    let (off, rec_off) = watch_test_scenario(scenario, &[]);
    assert_eq!(relaunches(&rec_off), Vec::<String>::new());
    let (on, rec_on) = watch_test_scenario(scenario, &["agent.embedded-endpoint=true"]);
    assert_eq!(relaunches(&rec_on), [at(10 * S, "relaunch_endpoint")]);
    let is_cleared = |d: &str| d.ends_with("alarm-cleared sip-registration-lost");
    let cleared = |decisions: &[String]| only(decisions, is_cleared);
    assert_eq!(
        cleared(&off),
        [at(20 * S, "alarm-cleared sip-registration-lost")]
    );
    assert_eq!(
        cleared(&on),
        [at(12 * S, "alarm-cleared sip-registration-lost")]
    );
    let rest = |decisions: &[String]| only(decisions, |d| !is_cleared(d));
    assert_eq!(rest(&off), rest(&on));
}

/// `policy.supervisor-logout-reasons`: a logout reason that is listed is a
/// supervisor's (no action), one that is not is manual.
#[test]
fn policy_supervisor_logout_reasons_classify_a_listed_reason_as_supervisor() {
    let scenario = "d4-logouts.toml";
    let class = |decisions: &[String]| {
        only(decisions, |d| {
            d.contains("logout-classified team_lead_logout")
        })
    };
    let (default, _) = watch_test_scenario(scenario, &[]);
    assert_eq!(
        class(&default),
        [at(30 * S, "logout-classified team_lead_logout manual")]
    );
    let (listed, _) = watch_test_scenario(
        scenario,
        &[r#"policy.supervisor-logout-reasons=["team_lead_logout"]"#],
    );
    assert_eq!(
        class(&listed),
        [at(30 * S, "logout-classified team_lead_logout supervisor")]
    );
    // Neither class acts.
    assert!(
        !listed.iter().any(|d| d.contains("switchover")),
        "{listed:?}"
    );
}

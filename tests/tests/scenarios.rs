//! Every shipped mock scenario, run on the virtual clock: the exact decision
//! sequence at the exact virtual times (SPEC §6).

use drctl_e2e::{drctl, records, repo};

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn run(scenario: &str) -> Vec<String> {
    let path = format!("plugins/mock/scenarios/{scenario}");
    let out = drctl(&[
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &path,
        "--clock",
        "virtual",
        "--until-end",
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{scenario}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    records(&out.stdout)
}

fn at(t: u64, rest: &str) -> String {
    format!("{t} {rest}")
}

/// (scenario, expected records)
fn expectations() -> Vec<(&'static str, Vec<String>)> {
    let connected1 = at(200 * MS, "startup-connected site1");
    vec![
        (
            "s1-first-site-unreachable.toml",
            vec![at(400 * MS, "startup-connected site2")],
        ),
        (
            "s1-both-sites-down-backoff.toml",
            vec![at(33_493_853_057, "startup-connected site1")],
        ),
        (
            "s2-s3-preferred-site.toml",
            vec![
                connected1.clone(),
                at(25 * S, "switchover-started telephony-timeout site1 site2"),
                at(
                    25 * S + 200 * MS,
                    "switchover-completed telephony-timeout site1 site2",
                ),
            ],
        ),
        (
            "s4-relocate-to-preferred.toml",
            vec![
                at(200 * MS, "startup-connected site2"),
                at(200 * MS, "switchover-started startup-relocate site2 site1"),
                at(
                    400 * MS,
                    "switchover-completed startup-relocate site2 site1",
                ),
            ],
        ),
        (
            "s4-preferred-unreachable.toml",
            vec![
                at(200 * MS, "startup-connected site2"),
                at(200 * MS, "switchover-started startup-relocate site2 site1"),
                at(
                    400 * MS,
                    "switchover-failed site1 CS Proxy site1 refused the connection",
                ),
                at(400 * MS, "alarm-raised preferred-site-unreachable"),
                at(
                    600 * MS,
                    "switchover-completed startup-relocate site2 site2",
                ),
            ],
        ),
        (
            "d1-telephony-timeout.toml",
            vec![
                connected1.clone(),
                at(40 * S, "switchover-started telephony-timeout site1 site2"),
                at(
                    40 * S + 200 * MS,
                    "switchover-completed telephony-timeout site1 site2",
                ),
            ],
        ),
        ("d1-telephony-recovers.toml", vec![connected1.clone()]),
        (
            "d1-site-timeout-disabled.toml",
            vec![
                connected1.clone(),
                at(10 * S, "alarm-raised telephony-service-down"),
                at(300 * S, "alarm-cleared telephony-service-down"),
            ],
        ),
        (
            "d2-configuration-down.toml",
            vec![
                connected1.clone(),
                at(10 * S, "alarm-raised configuration-service-down"),
                at(180 * S, "alarm-cleared configuration-service-down"),
            ],
        ),
        (
            "d3-statistic-down.toml",
            vec![
                connected1.clone(),
                at(10 * S, "alarm-raised statistic-service-down"),
                at(180 * S, "alarm-cleared statistic-service-down"),
            ],
        ),
        (
            "d4-manual-logout.toml",
            vec![connected1.clone(), at(10 * S, "logout-classified  manual")],
        ),
        (
            "d4-supervisor-logout.toml",
            vec![
                connected1.clone(),
                at(
                    10 * S,
                    "logout-classified supervisor_forced_logout supervisor",
                ),
            ],
        ),
        (
            "d4-dr-force-logout-reregisters.toml",
            vec![
                connected1.clone(),
                at(10 * S, "logout-classified dr-force_logout dr-force"),
            ],
        ),
        (
            "d4-dr-force-logout-timeout.toml",
            vec![
                connected1.clone(),
                at(10 * S, "logout-classified dr-force_logout dr-force"),
                at(
                    70 * S,
                    "switchover-started sip-register-timeout site1 site2",
                ),
                at(
                    70 * S + 200 * MS,
                    "switchover-completed sip-register-timeout site1 site2",
                ),
            ],
        ),
        (
            "d4-graceful-shutdown.toml",
            vec![
                connected1.clone(),
                at(
                    10 * S,
                    "logout-classified graceful_shutdown_logout graceful-shutdown",
                ),
                at(10 * S, "switchover-started graceful-shutdown site1 site2"),
                at(
                    10 * S + 200 * MS,
                    "switchover-completed graceful-shutdown site1 site2",
                ),
            ],
        ),
        (
            // The late graceful-shutdown on the old epoch at 20 s is dropped.
            "d5-stale-epoch.toml",
            vec![
                connected1.clone(),
                at(
                    10 * S,
                    "logout-classified graceful_shutdown_logout graceful-shutdown",
                ),
                at(10 * S, "switchover-started graceful-shutdown site1 site2"),
                at(
                    10 * S + 200 * MS,
                    "switchover-completed graceful-shutdown site1 site2",
                ),
            ],
        ),
        (
            "d6-simultaneous-triggers.toml",
            vec![
                at(2 * S, "startup-connected site1"),
                at(40 * S, "switchover-started telephony-timeout site1 site2"),
                at(42 * S, "switchover-completed telephony-timeout site1 site2"),
            ],
        ),
        (
            "w1-w2-switchover.toml",
            vec![
                connected1.clone(),
                at(
                    5 * S,
                    "logout-classified graceful_shutdown_logout graceful-shutdown",
                ),
                at(5 * S, "switchover-started graceful-shutdown site1 site2"),
                at(
                    5 * S + 200 * MS,
                    "switchover-completed graceful-shutdown site1 site2",
                ),
                at(90 * S, "switchover-started telephony-timeout site2 site1"),
                at(
                    90 * S + 200 * MS,
                    "switchover-completed telephony-timeout site2 site1",
                ),
            ],
        ),
        ("w3-operator-switch.toml", vec![connected1.clone()]),
        (
            "w4-target-unreachable.toml",
            vec![
                connected1.clone(),
                at(40 * S, "switchover-started telephony-timeout site1 site2"),
                at(
                    40 * S + 200 * MS,
                    "switchover-failed site2 CS Proxy site2 refused the connection",
                ),
                at(40 * S + 200 * MS, "alarm-raised switchover-failed"),
                at(
                    40 * S + 400 * MS,
                    "switchover-completed telephony-timeout site1 site1",
                ),
                at(
                    70 * S + 400 * MS,
                    "switchover-started telephony-timeout site1 site2",
                ),
                at(
                    70 * S + 600 * MS,
                    "switchover-completed telephony-timeout site1 site2",
                ),
                at(70 * S + 600 * MS, "alarm-cleared switchover-failed"),
            ],
        ),
        (
            // One agent of the fleet drill: site1's Configuration and Stat
            // Servers go with it at 60 s (alarms at once, D2/D3), telephony
            // times out at +30 s and leaving site1 clears both alarms.
            "fleet-site-outage.toml",
            vec![
                connected1.clone(),
                at(120 * S, "alarm-raised configuration-service-down"),
                at(120 * S, "alarm-raised statistic-service-down"),
                at(150 * S, "switchover-started telephony-timeout site1 site2"),
                at(150 * S, "alarm-cleared configuration-service-down"),
                at(150 * S, "alarm-cleared statistic-service-down"),
                at(
                    150 * S + 200 * MS,
                    "switchover-completed telephony-timeout site1 site2",
                ),
            ],
        ),
        (
            "demo.toml",
            vec![
                at(200 * MS, "startup-connected site2"),
                at(200 * MS, "switchover-started startup-relocate site2 site1"),
                at(
                    400 * MS,
                    "switchover-completed startup-relocate site2 site1",
                ),
                at(15 * S, "alarm-raised statistic-service-down"),
                at(25 * S, "alarm-cleared statistic-service-down"),
                at(80 * S, "alarm-raised configuration-service-down"),
                at(110 * S, "switchover-started telephony-timeout site1 site2"),
                at(110 * S, "alarm-cleared configuration-service-down"),
                at(
                    110 * S + 200 * MS,
                    "switchover-completed telephony-timeout site1 site2",
                ),
            ],
        ),
    ]
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
    let covered: Vec<&str> = expectations().iter().map(|(s, _)| *s).collect();
    for entry in std::fs::read_dir(repo().join("plugins/mock/scenarios")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(covered.contains(&name.as_str()), "{name} is not exercised");
    }
}

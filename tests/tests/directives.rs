//! E5 end to end on the mock: a Configuration Server directive moves a
//! fleet off a site with E4 jitter and keeps it away until it is cleared;
//! `simulate` shows what the evacuation costs the target's CS Proxy.

use drctl_e2e::{test_scenario, Drctl, TestDir};

const EVACUATE: &str = "e5-evacuate-site1.toml";

/// Each agent's switchovers as `(t in s, type reason from to)`; `who` empty:
/// a single agent's (its lines name no agent).
fn switchovers(stdout: &str, who: &str) -> Vec<(f64, String)> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["agent"].as_str().unwrap_or("") == who && d["type"] == "switchover-started")
        .map(|d| {
            (
                d["t"].as_u64().unwrap() as f64 / 1e9,
                format!("{} {} {}", d["reason"], d["from"], d["to"]).replace('"', ""),
            )
        })
        .collect()
}

#[test]
fn an_evacuation_moves_each_agent_after_its_jitter_and_keeps_it_away_until_cleared() {
    let dir = TestDir::new();
    let agents = dir.file(
        "agents.toml",
        "[[agents]]\nusername = \"ann\"\n[[agents]]\nusername = \"bob\"\n",
    );
    let run = |sets: &[&str]| {
        Drctl::watch(test_scenario(EVACUATE))
            .virtual_to_end()
            .args(&["--agents", &agents])
            .sets(sets)
            .json()
            .run()
    };
    let on = [
        "policy.directives=true",
        "policy.switchover-jitter=30s",
        "policy.failback=auto",
        "policy.failback-after=60s",
    ];
    let out = run(&on);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut left = Vec::new();
    for who in ["ann", "bob"] {
        let moves = switchovers(&out.stdout, who);
        assert_eq!(moves.len(), 2, "{who}: {moves:?}");
        // Away within the jitter bound of the directive...
        assert_eq!(moves[0].1, "directive site1 site2", "{who}");
        assert!((60.0..90.0).contains(&moves[0].0), "{who}: {moves:?}");
        // ...and back only once it is cleared (site1 was healthy all along:
        // without the directive E2 would have failed back at +60 s).
        assert_eq!(moves[1].1, "failback site2 site1", "{who}");
        assert!(moves[1].0 >= 300.0, "{who}: {moves:?}");
        left.push(moves[0].0);
    }
    assert_ne!(left[0], left[1], "each agent its own jitter: {left:?}");

    // Off by default: the same scenario moves nobody.
    let out = run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(switchovers(&out.stdout, "ann").is_empty());
}

#[test]
fn simulate_shows_the_login_rate_an_evacuation_puts_on_the_target() {
    let out = Drctl::new(&[
        "simulate",
        "--scenario",
        "plugins/mock/scenarios/fleet-evacuate-site1.toml",
        "--agents",
        "400",
        "--set",
        "policy.directives=true",
        "--compare",
        "policy.switchover-jitter=0s,60s",
    ])
    .json()
    .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let site2 = |i: usize| rows[i]["report"]["sites"][1].clone();
    assert_eq!(site2(0)["site"], "site2");
    // Without jitter the 400 desktops hit site2's CS Proxy in the same
    // second, which serves its capacity (200/s) and queues the rest.
    assert_eq!(site2(0)["peak_attempts_per_s"], 400);
    assert_eq!(site2(0)["peak_logins_per_s"], 200);
    let spread = site2(1)["peak_attempts_per_s"].as_u64().unwrap();
    assert!(spread < 40, "60 s of jitter spreads them: {spread}/s");
    for row in &rows {
        assert_eq!(row["report"]["sites"][1]["in_service_at_end"], 400, "{row}");
    }
}

/// An evacuation set while drctl was down (`application-options` in the
/// scenario: what site1's Application says when drctl starts) is read at
/// startup: the agent leaves site1 once watching and fails back only after
/// the option is cleared. A bad option key is refused by file and line.
#[test]
fn an_evacuation_set_before_startup_is_known_at_startup() {
    let dir = TestDir::new();
    let scenario = |options: &str| {
        format!(
            "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
             connect-latency = \"200ms\"\nregister-delay = \"2s\"\nend = \"10m\"\n\
             [sites.site1]\napplication-options = {options}\n\
             [[events]]\nat = \"120s\"\n\
             config = {{ object = \"application\", name = \"AIL_site1\", section = \"dr\", option = \"evacuate\" }}\n"
        )
    };
    let path = dir.file(
        "evacuated.toml",
        &scenario("{ \"dr/evacuate\" = \"true\" }"),
    );
    let out = Drctl::watch(path.clone())
        .virtual_to_end()
        .sets(&[
            "policy.directives=true",
            "policy.failback=auto",
            "policy.failback-after=60s",
        ])
        .json()
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let moves = switchovers(&out.stdout, "");
    assert_eq!(moves.len(), 2, "{moves:?}\n{}", out.stdout);
    assert_eq!(moves[0].1, "directive site1 site2");
    assert!(moves[0].0 < 5.0, "{moves:?}");
    assert_eq!(moves[1].1, "failback site2 site1");
    assert!(moves[1].0 >= 120.0, "{moves:?}");

    let bad = dir.file("bad.toml", &scenario("{ evacuate = \"true\" }"));
    let out = Drctl::watch(bad.clone()).virtual_to_end().run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("bad.toml:8:") && out.stderr.contains("expected \"section/option\""),
        "{}",
        out.stderr
    );
}

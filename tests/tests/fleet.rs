//! Fleet mode end to end: many agents in one watcher, and `drctl simulate`.

use drctl_e2e::{test_scenario, Drctl, TestDir};

/// Site1 is lost at 60 s; site-timeout 30 s.
const OUTAGE: &str = "site1-lost-at-60s.toml";

/// `drctl simulate` of [`OUTAGE`] with `extra`.
fn simulate(extra: &[&str]) -> Drctl {
    Drctl::new(&["simulate", "--scenario", &test_scenario(OUTAGE)]).args(extra)
}

/// An agents file: ann and bob.
const ANN_AND_BOB: &str = "[[agents]]\nusername = \"ann\"\n[[agents]]\nusername = \"bob\"\n";

#[test]
fn a_fleet_watch_names_the_agent_of_every_decision() {
    let dir = TestDir::new();
    let agents = dir.file("agents.toml", ANN_AND_BOB);
    let watch = |agents: &str| {
        Drctl::watch("plugins/mock/scenarios/d1-telephony-timeout.toml")
            .virtual_to_end()
            .args(&["--agents", agents])
    };
    let out = watch(&agents).json().run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for who in ["ann", "bob"] {
        let mine: Vec<String> = lines
            .iter()
            .filter(|d| d["agent"] == who)
            .map(|d| format!("{} {}", d["t"], d["type"].as_str().unwrap()))
            .collect();
        assert_eq!(
            mine,
            [
                "200000000 startup-connected",
                "10000000000 alarm-raised",
                "40000000000 switchover-started",
                "40000000000 alarm-cleared",
                "40200000000 switchover-completed"
            ],
            "{who}"
        );
    }
    assert!(lines.iter().all(|d| d["agent"].is_string()));

    let shown = watch(&agents).run().stdout;
    assert!(
        shown.contains(
            "+40.000s  bob        switchover-started     telephony-timeout site1 -> site2"
        ),
        "{shown}"
    );

    // A bad agents file names itself and the key.
    let bad = dir.file("bad.toml", "[[agents]]\nusrname = \"x\"\n");
    let out = watch(&bad).run();
    assert_eq!(out.code, Some(2));
    let stderr = &out.stderr;
    assert!(
        stderr.contains("bad.toml") && stderr.contains("usrname"),
        "{stderr}"
    );
}

#[test]
fn simulate_reports_recovery_and_login_rates() {
    let dir = TestDir::new();
    let svg = dir.at("fleet.svg");
    let out = simulate(&["--agents", "200", "--output", "json", "--plot", &svg]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["agents"], 200);
    assert_eq!(r["recovered"], 200);
    assert_eq!(r["still_down"], 0);
    // 30 s site-timeout + 200 ms connect + 2 s register, for every agent.
    assert_eq!(r["ttr_p50_s"], 32.2);
    assert_eq!(r["ttr_max_s"], 32.2);
    assert_eq!(r["sites"][1]["site"], "site2");
    assert_eq!(r["sites"][1]["peak_logins_per_s"], 200);
    assert_eq!(r["sites"][1]["in_service_at_end"], 200);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("\nsite1\n") && chart.contains("\nsite2\n")
    );

    let shown = simulate(&["--agents", "50"]).run().stdout;
    assert!(
        shown.contains(
            "50 agents, 300s simulated: 50 recovered at another site, 0 not in service at the end"
        ),
        "{shown}"
    );
}

#[test]
fn more_switchover_jitter_lowers_the_peak_login_rate() {
    let out = simulate(&["--agents", "400"])
        .args(&["--compare", "policy.switchover-jitter=0s,30s,120s"])
        .json()
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let peaks: Vec<u64> = rows
        .iter()
        .map(|r| {
            r["report"]["sites"][1]["peak_logins_per_s"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(peaks[0], 400, "without jitter every agent logs in at once");
    assert!(peaks[0] > peaks[1] && peaks[1] > peaks[2], "{peaks:?}");
    // Everyone still recovers, later on average.
    let p50: Vec<f64> = rows
        .iter()
        .map(|r| r["report"]["ttr_p50_s"].as_f64().unwrap())
        .collect();
    assert!(p50[0] < p50[1] && p50[1] < p50[2], "{p50:?}");
    assert!(rows.iter().all(|r| r["report"]["recovered"] == 400));

    let table = simulate(&["--agents", "20"])
        .args(&["--compare", "policy.switchover-jitter=0s,30s"])
        .run()
        .stdout;
    assert!(table.starts_with("policy.switchover-jitter"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn simulate_refuses_bad_input() {
    let dir = TestDir::new();
    let no_end = dir.file("no-end.toml", "[deployment]\npreferred-site = \"site1\"\n");
    let out = Drctl::new(&["simulate", "--scenario", &no_end, "--agents", "3"]).run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("deployment.end"));
    let out = simulate(&["--compare", "policy.seed"]).run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("KEY=V1,V2"));
}

#[test]
fn the_shipped_fleet_outage_queues_logins_at_the_proxy_capacity() {
    let out = Drctl::new(&["simulate", "--agents", "1000"])
        .args(&[
            "--scenario",
            "plugins/mock/scenarios/fleet-site-outage.toml",
        ])
        .json()
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["recovered"], 1000);
    let site2 = &r["sites"][1];
    // All 1000 try at once (no jitter); the proxy lets 200 a second in.
    assert_eq!(site2["peak_attempts_per_s"], 1000);
    assert_eq!(site2["peak_logins_per_s"], 200);
    assert_eq!(site2["failed_logins"], 0);
    // 30 s site-timeout + up to 5 s in the queue + 200 ms + 2 s register.
    let max = r["ttr_max_s"].as_f64().unwrap();
    assert!((36.0..38.0).contains(&max), "{max}");
}

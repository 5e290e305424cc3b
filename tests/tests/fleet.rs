//! Fleet mode end to end: many agents in one watcher, and `drctl simulate`.

use drctl_e2e::drctl;

/// Site1 is lost at 60 s; site-timeout 30 s.
const OUTAGE: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
site-timeout = "30s"
register-delay = "2s"
end = "5m"

[[events]]
at = "60s"
site = "site1"
set = { telephony = "off", reachable = false }
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn a_fleet_watch_names_the_agent_of_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let agents = write(
        &dir,
        "agents.toml",
        "[[agents]]\nusername = \"ann\"\n[[agents]]\nusername = \"bob\"\n",
    );
    let scenario = "plugins/mock/scenarios/d1-telephony-timeout.toml";
    let base = [
        "watch",
        "--backend",
        "mock",
        "--scenario",
        scenario,
        "--clock",
        "virtual",
        "--until-end",
        "--agents",
        &agents,
    ];
    let mut json_args = base.to_vec();
    json_args.extend(["--output", "json"]);
    let out = drctl(&json_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
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
                "40000000000 switchover-started",
                "40200000000 switchover-completed"
            ],
            "{who}"
        );
    }
    assert!(lines.iter().all(|d| d["agent"].is_string()));

    let out = drctl(&base);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(
            "+40.000s  bob        switchover-started     telephony-timeout site1 -> site2"
        ),
        "{shown}"
    );

    // A bad agents file names itself and the key.
    let bad = write(&dir, "bad.toml", "[[agents]]\nusrname = \"x\"\n");
    let mut args = base.to_vec();
    args[9] = &bad;
    let out = drctl(&args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("usrname"),
        "{stderr}"
    );
}

#[test]
fn simulate_reports_recovery_and_login_rates() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(&dir, "outage.toml", OUTAGE);
    let svg = dir.path().join("fleet.svg");
    let svg_arg = svg.to_string_lossy().into_owned();
    let out = drctl(&[
        "simulate",
        "--scenario",
        &scenario,
        "--agents",
        "200",
        "--output",
        "json",
        "--plot",
        &svg_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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

    let out = drctl(&["simulate", "--scenario", &scenario, "--agents", "50"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains(
            "50 agents, 300s simulated: 50 recovered at another site, 0 not in service at the end"
        ),
        "{shown}"
    );
}

#[test]
fn more_switchover_jitter_lowers_the_peak_login_rate() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(&dir, "outage.toml", OUTAGE);
    let out = drctl(&[
        "simulate",
        "--scenario",
        &scenario,
        "--agents",
        "400",
        "--compare",
        "policy.switchover-jitter=0s,30s,120s",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
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

    let text_out = drctl(&[
        "simulate",
        "--scenario",
        &scenario,
        "--agents",
        "20",
        "--compare",
        "policy.switchover-jitter=0s,30s",
    ]);
    let table = text(&text_out.stdout);
    assert!(table.starts_with("policy.switchover-jitter"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn simulate_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let no_end = write(
        &dir,
        "no-end.toml",
        "[deployment]\npreferred-site = \"site1\"\n",
    );
    let out = drctl(&["simulate", "--scenario", &no_end, "--agents", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("deployment.end"));
    let scenario = write(&dir, "outage.toml", OUTAGE);
    let out = drctl(&[
        "simulate",
        "--scenario",
        &scenario,
        "--compare",
        "policy.seed",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("KEY=V1,V2"));
}

#[test]
fn the_shipped_fleet_outage_queues_logins_at_the_proxy_capacity() {
    let out = drctl(&[
        "simulate",
        "--scenario",
        "plugins/mock/scenarios/fleet-site-outage.toml",
        "--agents",
        "1000",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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

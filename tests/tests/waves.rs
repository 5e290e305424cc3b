//! Fleet waves end to end on the real clock (issue 18 item 1): a fleet
//! watcher moves a share of its agents (`switch --agents 10%`), then the rest
//! in waves (`--wave 50% --wave-interval 2s`), each wave once the previous
//! one is verified; `status` shows the plan in progress; a wave that does
//! not verify stops the plan (exit 1), the later waves never started.

use drctl_e2e::{assert_contains, switch_to, Drctl, Ran, Running, TestDir, PATIENCE};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Both sites healthy for ten minutes; the agents start on site1.
const CALM: &str = "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
                    site-timeout = \"30s\"\nend = \"10m\"\n";

/// As [`CALM`], but site2's telephony is off: nothing verifies there.
const DEAD_TARGET: &str = "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
                           site-timeout = \"10m\"\nend = \"10m\"\n\
                           [sites.site2]\ntelephony = \"off\"\n";

/// A fleet of `n` agents (`a00`, `a01`, ...) watching `scenario` in `dir`;
/// the watcher and its config's path.
fn fleet(dir: &TestDir, n: usize, scenario: &str) -> (Running, String) {
    let mut config = drctl_e2e::control_section(&dir.socket());
    // Listed in reverse: the waves go by name, not by the file's order.
    for k in (0..n).rev() {
        config.push_str(&format!("[[agents]]\nusername = \"a{k:02}\"\n"));
    }
    let config = dir.file("drctl.toml", &config);
    let ops = dir.file("ops.toml", scenario);
    let mut cmd = Drctl::watch(&ops)
        .config(&config)
        .json()
        .command(dir.path());
    cmd.stdin(Stdio::null());
    let watch = Running::spawn(cmd);
    wait_status(dir, &config, |s| s["summary"]["in_service"] == n);
    (watch, config)
}

fn client(dir: &TestDir, config: &str, args: &[&str]) -> Ran {
    dir.run(&Drctl::new(args).config(config))
}

/// Polls the fleet's status until `cond` holds; that status.
fn wait_status(
    dir: &TestDir,
    config: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = client(dir, config, &["status", "--output", "json"]);
        if out.success() && cond(&out.json()) {
            return out.json();
        }
        assert!(
            Instant::now() < deadline,
            "status never held: {}",
            out.all()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The agents on `site` in a fleet status.
fn on(status: &serde_json::Value, site: &str) -> Vec<String> {
    status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["site"] == site)
        .map(|a| a["agent"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_wave_switch_moves_ten_percent_then_the_rest_wave_after_wave() {
    let dir = TestDir::new();
    let (watch, config) = fleet(&dir, 10, CALM);

    // 10 % of 10 agents: one, the first by name.
    let out = client(
        &dir,
        &config,
        &switch_to("site2", &["--agents", "10%", "--reason", "CHG-7 readiness"]),
    );
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stdout, "wave 1/1 switching: a00\n");
    assert_contains(
        &out.stdout,
        "a00        switchover-started     operator site1 -> site2",
    );
    assert_contains(&out.stderr, "moved 1 agents");
    let s = wait_status(&dir, &config, |s| s["summary"]["in_service"] == 10);
    assert_eq!(on(&s, "site2"), ["a00"]);

    // The rest, in waves of half of them, two seconds apart.
    let mut cmd = Drctl::new(&switch_to(
        "site2",
        &[
            "--wave",
            "50%",
            "--wave-interval",
            "2s",
            "--reason",
            "CHG-7 readiness",
        ],
    ))
    .config(&config)
    .command(dir.path());
    cmd.stdin(Stdio::null());
    let waves = Running::spawn(cmd);
    // Between the waves, status shows the plan: the first verified, the next due.
    let s = wait_status(&dir, &config, |s| {
        s["wave"]["waves"][0]["state"] == "verified" && s["wave"]["next_in"].is_string()
    });
    let plan = &s["wave"];
    assert_eq!(plan["state"], "running", "{plan}");
    assert_eq!(plan["selected"], 9, "{plan}");
    assert_eq!(
        plan["waves"][0]["agents"],
        serde_json::json!(["a01", "a02", "a03", "a04", "a05"])
    );
    assert_eq!(
        plan["waves"][1]["agents"],
        serde_json::json!(["a06", "a07", "a08", "a09"])
    );
    assert_eq!(plan["waves"][1]["state"], "pending", "{plan}");
    assert_eq!(plan["reason"], "CHG-7 readiness");
    assert_eq!(on(&s, "site2").len(), 6, "{s}");
    let text = client(&dir, &config, &["status"]).stdout;
    assert_contains(&text, "waves      running: 9 agents to site2 in 2 waves");

    let out = waves.finish_within(PATIENCE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{}", out.stdout))
    };
    // Wave 2 starts only after wave 1 is verified.
    assert!(at("wave 1/2 switching: a01, a02, a03, a04, a05") < at("wave 1/2 verified"));
    assert!(at("wave 1/2 verified") < at("wave 2/2 switching: a06, a07, a08, a09"));
    assert!(at("wave 2/2 switching") < at("a06        switchover-started"));
    assert!(at("a05        switchover-completed") < at("wave 1/2 verified"));
    assert!(at("wave 2/2 switching") < at("wave 2/2 verified"));
    assert_contains(&out.stderr, "moved 9 agents");
    let s = wait_status(&dir, &config, |s| s["summary"]["in_service"] == 10);
    assert_eq!(on(&s, "site2").len(), 10, "{s}");
    assert!(s.get("wave").is_none(), "the plan is over: {s}");
    watch.signal(libc::SIGINT);
    watch.finish_within(Duration::from_secs(20));
}

#[test]
fn a_wave_that_does_not_verify_stops_the_plan() {
    let dir = TestDir::new();
    let (watch, config) = fleet(&dir, 4, DEAD_TARGET);
    let out = client(
        &dir,
        &config,
        &switch_to(
            "site2",
            &[
                "--wave",
                "50%",
                "--wave-interval",
                "1s",
                "--timeout",
                "2s",
                "--reason",
                "CHG-8",
            ],
        ),
    );
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(
        out.stderr.contains(
            "wave 1/2 failed: a00: not verified within 2s (telephony ON, DN in service at the target); \
             the 1 later wave(s) were not started"
        ),
        "{}",
        out.stderr
    );
    assert_contains(&out.stderr, "wave 2: skipped (a02, a03)");
    assert!(!out.stdout.contains("wave 2/2 switching"), "{}", out.stdout);
    let s = wait_status(&dir, &config, |s| s["summary"]["watching"] == 4);
    assert_eq!(
        on(&s, "site1"),
        ["a03", "a02"],
        "the second wave never moved: {s}"
    );
    watch.signal(libc::SIGINT);
    watch.finish_within(Duration::from_secs(20));
}

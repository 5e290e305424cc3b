//! Soak (issue 8): days of random faults on both sites through the mock on
//! the virtual clock, checking the engine's invariants on every decision and
//! that memory stays flat as the run gets longer.
//!
//! `SOAK_DAYS` (default 7) and `SOAK_SEEDS` (default 3) make it longer.

use drctl_e2e::{command, soak_scenario};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a run showed.
struct Run {
    decisions: u64,
    switchovers: u64,
    max_rss_kb: i64,
}

/// Runs `days` of the soak scenario (the whole of it, or only its first
/// `stop_after_days`), checks every decision as it streams, returns the run's figures.
fn run(days: u64, seed: u64, stop_after_days: Option<u64>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("soak.toml");
    std::fs::write(&path, soak_scenario(days, seed)).unwrap();
    let path = path.to_string_lossy().into_owned();
    let stop = match stop_after_days {
        Some(d) => vec!["--for".to_owned(), format!("{}s", d * 86_400)],
        None => vec!["--until-end".to_owned()],
    };
    let mut args = vec![
        "-q",
        "watch",
        "--backend",
        "mock",
        "--scenario",
        &path,
        "--clock",
        "virtual",
        "--output",
        "json",
    ];
    args.extend(stop.iter().map(String::as_str));
    // Reaped below with wait4, which also gives this child's own peak RSS.
    #[allow(clippy::zombie_processes)]
    let mut child = command(&args, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut invariants = Invariants::default();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let d: serde_json::Value = serde_json::from_str(&line).unwrap();
        invariants
            .check(&d)
            .unwrap_or_else(|e| panic!("{days} days, seed {seed}: {e}: {line}"));
    }
    // wait4 for this child's own peak RSS.
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child, not yet reaped.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "exit {status}"
    );
    // Run to its end (an hour of calm at the end of every soak scenario), every switchover ends.
    if stop_after_days.is_none() {
        assert!(invariants.in_flight.is_none(), "a switchover never ended");
    }
    Run {
        decisions: invariants.decisions,
        switchovers: invariants.switchovers,
        max_rss_kb: usage.ru_maxrss,
    }
}

/// The engine invariants of `policy/tests/properties.rs`, on the decision stream.
#[derive(Default)]
struct Invariants {
    last_t: u64,
    in_flight: Option<String>,
    alarms: HashMap<String, bool>,
    decisions: u64,
    switchovers: u64,
}

impl Invariants {
    fn check(&mut self, d: &serde_json::Value) -> Result<(), String> {
        self.decisions += 1;
        let t = d["t"].as_u64().ok_or("no t")?;
        if t < self.last_t {
            return Err(format!("time went back from {}", self.last_t));
        }
        self.last_t = t;
        let ty = d["type"].as_str().ok_or("no type")?;
        match ty {
            "switchover-started" => {
                if let Some(other) = &self.in_flight {
                    return Err(format!("a second switchover while {other} is in flight"));
                }
                let reason = d["reason"].as_str().unwrap_or_default();
                // D2/D3: configuration and statistic never switch.
                if !matches!(
                    reason,
                    "startup-relocate"
                        | "telephony-timeout"
                        | "sip-register-timeout"
                        | "graceful-shutdown"
                        | "operator"
                        | "failback"
                ) {
                    return Err(format!("unknown switchover reason {reason}"));
                }
                self.in_flight = Some(reason.to_owned());
                self.switchovers += 1;
            }
            "switchover-completed" if self.in_flight.take().is_none() => {
                return Err("completed without a start".into());
            }
            "alarm-raised" | "alarm-cleared" => {
                let alarm = d["alarm"].as_str().unwrap_or_default().to_owned();
                let up = ty == "alarm-raised";
                let was = self.alarms.insert(alarm.clone(), up).unwrap_or(false);
                if was == up {
                    return Err(format!("{alarm} {ty} twice in a row"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[test]
fn days_of_random_faults_keep_the_invariants_and_memory_flat() {
    let days = env("SOAK_DAYS", 7);
    for seed in 1..=env("SOAK_SEEDS", 3) {
        // The same scenario (the same input in memory), stopped after a day or run to its end.
        let short = run(days, seed, Some(1));
        let long = run(days, seed, None);
        assert!(
            long.switchovers > 20 * days.min(7),
            "too few switchovers: {}",
            long.switchovers
        );
        assert!(long.decisions > short.decisions);
        // Flat: the whole run costs no more memory than its first day, give or take 1 MB.
        assert!(
            long.max_rss_kb <= short.max_rss_kb + 1024,
            "seed {seed}: peak RSS {} KB for {days} days vs {} KB for 1 day",
            long.max_rss_kb,
            short.max_rss_kb
        );
        eprintln!(
            "seed {seed}: {days} days, {} decisions, {} switchovers, peak RSS {} KB (1 day: {} KB)",
            long.decisions, long.switchovers, long.max_rss_kb, short.max_rss_kb
        );
    }
}

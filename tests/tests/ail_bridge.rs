//! The real backend, `ail-bridge`, end to end: drctl drives the JVM sidecar,
//! which drives the AIL stand-in, which talks to a stand-in deployment over
//! real loopback TCP. Shipped mock scenarios, scaled to seconds, must decide
//! exactly as the mock does; a killed JVM is restarted; `switch` prints its
//! timing table; the self-test names a missing AIL method.

use drctl_e2e::ail::{
    ail_bridge_tool, build_ail_bridge, compile_standin, decisions, finish, interrupt, rig,
    scale_scenario, standin_classes, watch_bridge, watch_mock, Deployment, PASSWORD,
};
use drctl_e2e::repo;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A shipped scenario, how to scale it, how long to run it, and what it decides.
struct Case {
    file: &'static str,
    /// Time scale num/den: DR options must stay whole seconds.
    scale: (u32, u32),
    /// Where the scaled run ends.
    end: Duration,
    expected: &'static [&'static str],
}

const CONNECTED1: &str = "startup-connected site1";

fn cases() -> Vec<Case> {
    let ms = Duration::from_millis;
    vec![
        Case {
            file: "s1-first-site-unreachable.toml",
            scale: (1, 30),
            end: ms(2000),
            expected: &["startup-connected site2"],
        },
        Case {
            // site1 is back at 1.33 s; the second round (after 1 s) still
            // fails, the third (after 2 s more) connects.
            file: "s1-both-sites-down-backoff.toml",
            scale: (1, 15),
            end: ms(5000),
            expected: &[CONNECTED1],
        },
        Case {
            file: "s4-relocate-to-preferred.toml",
            scale: (1, 30),
            end: ms(2000),
            expected: &[
                "startup-connected site2",
                "switchover-started startup-relocate site2 site1",
                "switchover-completed startup-relocate site2 site1",
            ],
        },
        Case {
            file: "s4-preferred-unreachable.toml",
            scale: (1, 30),
            end: ms(2000),
            expected: &[
                "startup-connected site2",
                "switchover-started startup-relocate site2 site1",
                "switchover-failed site1",
                "alarm-raised preferred-site-unreachable",
                "switchover-completed startup-relocate site2 site2",
            ],
        },
        Case {
            // Telephony OFF at 0.67 s, site-timeout 2 s: switch at 2.67 s.
            file: "d1-telephony-timeout.toml",
            scale: (1, 15),
            end: ms(4000),
            expected: &[
                CONNECTED1,
                "switchover-started telephony-timeout site1 site2",
                "switchover-completed telephony-timeout site1 site2",
            ],
        },
        Case {
            // OFF at 0.67 s, ON at 1.67 s, site-timeout 2 s: no switch.
            file: "d1-telephony-recovers.toml",
            scale: (1, 15),
            end: ms(3500),
            expected: &[CONNECTED1],
        },
        Case {
            file: "d2-configuration-down.toml",
            scale: (1, 30),
            end: ms(7000),
            expected: &[
                CONNECTED1,
                "alarm-raised configuration-service-down",
                "alarm-cleared configuration-service-down",
            ],
        },
        Case {
            file: "d4-manual-logout.toml",
            scale: (1, 15),
            end: ms(1500),
            expected: &[CONNECTED1, "logout-classified  manual"],
        },
        Case {
            file: "d4-supervisor-logout.toml",
            scale: (1, 15),
            end: ms(1500),
            expected: &[
                CONNECTED1,
                "logout-classified supervisor_forced_logout supervisor",
            ],
        },
        Case {
            // dr-force_logout at 0.67 s, site-sip-register-timeout 4 s.
            file: "d4-dr-force-logout-timeout.toml",
            scale: (1, 15),
            end: ms(5500),
            expected: &[
                CONNECTED1,
                "logout-classified dr-force_logout dr-force",
                "switchover-started sip-register-timeout site1 site2",
                "switchover-completed sip-register-timeout site1 site2",
            ],
        },
        Case {
            // Back in service at 2 s, well before the timeout at 4.67 s.
            file: "d4-dr-force-logout-reregisters.toml",
            scale: (1, 15),
            end: ms(5500),
            expected: &[CONNECTED1, "logout-classified dr-force_logout dr-force"],
        },
        Case {
            file: "d4-graceful-shutdown.toml",
            scale: (1, 15),
            end: ms(1500),
            expected: &[
                CONNECTED1,
                "logout-classified graceful_shutdown_logout graceful-shutdown",
                "switchover-started graceful-shutdown site1 site2",
                "switchover-completed graceful-shutdown site1 site2",
            ],
        },
        Case {
            // Graceful shutdown at 0.5 s; site2's telephony OFF at 6 s,
            // site-timeout 3 s: back to site1 at 9 s.
            file: "w1-w2-switchover.toml",
            scale: (1, 10),
            end: ms(10_000),
            expected: &[
                CONNECTED1,
                "logout-classified graceful_shutdown_logout graceful-shutdown",
                "switchover-started graceful-shutdown site1 site2",
                "switchover-completed graceful-shutdown site1 site2",
                "switchover-started telephony-timeout site2 site1",
                "switchover-completed telephony-timeout site2 site1",
            ],
        },
    ]
}

/// What one parity run found wrong, if anything.
fn run_case(case: &Case, scratch: &std::path::Path) -> Result<(), String> {
    let shipped = repo().join("plugins/mock/scenarios").join(case.file);
    let text = std::fs::read_to_string(&shipped).map_err(|e| e.to_string())?;
    let scaled = scratch.join(case.file);
    std::fs::write(
        &scaled,
        scale_scenario(&text, case.scale.0, case.scale.1, Some(case.end)),
    )
    .map_err(|e| e.to_string())?;
    let first_site = text
        .lines()
        .find_map(|l| l.strip_prefix("first-site = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "site1".into());
    let deployment = Deployment::start(&scaled);
    let rig = rig(&deployment, &first_site, &standin_classes(), "");
    let mock = watch_mock(&rig, &scaled);
    if mock.code != Some(0) {
        return Err(format!("mock run failed: {mock:#?}"));
    }
    let bridge = watch_bridge(&rig, &deployment, case.end);
    let (want, from_mock, from_bridge) = (
        case.expected.to_vec(),
        decisions(&mock.records),
        decisions(&bridge.records),
    );
    let mut problems = Vec::new();
    if bridge.code != Some(0) {
        problems.push(format!("bridge exit {:?}", bridge.code));
    }
    if from_mock != want {
        problems.push(format!("mock decided {from_mock:#?}"));
    }
    if from_bridge != from_mock {
        problems.push(format!(
            "bridge decided {from_bridge:#?}\nmock decided {from_mock:#?}"
        ));
    }
    // A failed switchover names the real refusal.
    if let Some(r) = bridge
        .records
        .iter()
        .find(|r| r.contains("switchover-failed"))
    {
        if !r.contains("refused") {
            problems.push(format!(
                "the failure does not say the connection was refused: {r}"
            ));
        }
    }
    // W1 (a switchover): kill the factory, then a new AilLoader with
    // loading/on-demand = true, in the same JVM.
    if want.iter().any(|d| d.starts_with("switchover-completed")) {
        let log = deployment.control_log();
        let kill = log.iter().position(|l| l == "KILL");
        let reload = log
            .iter()
            .rposition(|l| l.starts_with("LOADER ") && l.ends_with("on-demand=true"));
        let jvms = log.iter().filter(|l| l.starts_with("HELLO ")).count();
        if !(kill.is_some() && reload > kill && jvms == 1) {
            problems.push(format!(
                "no killFactory + on-demand reload in one JVM: {log:#?}"
            ));
        }
    }
    // The JVM exited with drctl (its control channel closed).
    if !deployment.wait(Duration::from_secs(5), |s| {
        s.control.iter().any(|l| l.starts_with("EOF "))
    }) {
        problems.push("the JVM outlived drctl".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}\nbridge stderr:\n{}",
            case.file,
            problems.join("\n"),
            bridge.stderr
        ))
    }
}

#[test]
fn shipped_scenarios_decide_as_on_the_mock() {
    build_ail_bridge();
    standin_classes();
    let scratch = tempfile::tempdir().unwrap();
    let mut cases = cases();
    // Longest first, five at a time, the first five started a little apart:
    // JVM starts are the heavy part on two cores, and each run's timeline
    // starts at its own first connect.
    cases.sort_by_key(|c| std::cmp::Reverse(c.end));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for worker in 0..5u32 {
            let (cases, next, failures, scratch) = (&cases, &next, &failures, scratch.path());
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(300) * worker);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { return };
                    let result = std::panic::catch_unwind(|| run_case(case, scratch))
                        .unwrap_or_else(|_| Err(format!("{}: the run panicked", case.file)));
                    if let Err(e) = result {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A quiet deployment for the drills below.
fn quiet(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("quiet.toml");
    std::fs::write(
        &path,
        "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
         connect-latency = \"20ms\"\nregister-delay = \"100ms\"\nsite-timeout = \"2s\"\nend = \"1m\"\n",
    )
    .unwrap();
    path
}

fn proc_file(pid: u32, name: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{name}")).unwrap_or_default()
}

#[test]
fn a_killed_jvm_is_restarted_and_the_host_keeps_running() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(&deployment, "site1", &standin_classes(), "");
    let mut child = rig
        .drctl(&["watch", "--backend", "ail-bridge", "--output", "json"])
        .spawn()
        .unwrap();
    // Watching: the DN is back in service (register-delay after the DN
    // listener), so the subscribe's answer is long written; kill then.
    let back = |n: usize| {
        move |s: &drctl_e2e::ail::Seen| {
            s.sent.iter().filter(|m| m.ends_with("IN_SERVICE")).count() >= n
        }
    };
    assert!(
        deployment.wait(Duration::from_secs(60), back(1)),
        "never watching: {:?}",
        deployment.seen()
    );
    std::thread::sleep(Duration::from_millis(200));
    let pid = deployment.pids()[0];
    // The password reached the CS Proxy, over the sidecar's stdin only.
    assert_eq!(
        deployment.logins(),
        vec!["site1 agent007 password-ok".to_owned()]
    );
    let (cmdline, environ) = (proc_file(pid, "cmdline"), proc_file(pid, "environ"));
    assert!(!cmdline.is_empty(), "no /proc/{pid}/cmdline");
    for (what, bytes) in [("command line", &cmdline), ("environment", &environ)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(PASSWORD),
            "the password is in the JVM's {what}"
        );
    }

    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // A new JVM (restart-delay 300 ms), logged in and listening again.
    assert!(
        deployment.wait(Duration::from_secs(60), |s| {
            s.control.iter().filter(|l| l.starts_with("HELLO ")).count() >= 2 && back(2)(s)
        }),
        "no restart: {:?}",
        deployment.seen()
    );
    let restarted = killed.elapsed();
    let pids = deployment.pids();
    assert_ne!(pids[1], pid);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "drctl died with its JVM"
    );
    interrupt(&child);
    let run = finish(child, Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        decisions(&run.records),
        vec![
            CONNECTED1,
            "alarm-raised backend-disconnected",
            CONNECTED1,
            "alarm-cleared backend-disconnected",
        ],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("the AIL sidecar (pid {pid}) died"))
            && run.stderr.contains("restarting it in 300ms"),
        "{}",
        run.stderr
    );
    assert!(restarted < Duration::from_secs(60));
    assert!(
        deployment.wait(Duration::from_secs(5), |s| {
            s.control.contains(&format!("EOF {}", pids[1]))
        }),
        "the restarted JVM outlived drctl"
    );
}

#[test]
fn switch_against_the_standin_prints_the_timing_table() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(&deployment, "site1", &standin_classes(), "");
    let child = rig
        .drctl(&[
            "switch",
            "--backend",
            "ail-bridge",
            "--yes",
            "--to",
            "site2",
            "--timeout",
            "30s",
            "--output",
            "json",
        ])
        .spawn()
        .unwrap();
    let run = finish(child, Duration::from_secs(90));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        decisions(&run.records),
        vec![
            CONNECTED1,
            "switchover-started operator site1 site2",
            "switchover-completed operator site1 site2",
        ]
    );
    for phase in [
        "kill factory",
        "connect",
        "listeners",
        "DN back in service",
        "total",
    ] {
        let row = run
            .stderr
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("no {phase:?} row in\n{}", run.stderr));
        assert!(row.trim_end().ends_with('s'), "{row}");
    }
    assert!(
        run.stderr.contains("switched site1 -> site2"),
        "{}",
        run.stderr
    );
    let log = deployment.control_log();
    let loaders: Vec<&String> = log.iter().filter(|l| l.starts_with("LOADER ")).collect();
    assert_eq!(loaders.len(), 2, "{log:?}");
    assert!(loaders[0].ends_with("AIL_site1 on-demand=false"), "{log:?}");
    assert!(loaders[1].ends_with("AIL_site2 on-demand=true"), "{log:?}");
}

#[test]
fn self_test_names_a_renamed_method_and_create_refuses_it() {
    let tool = ail_bridge_tool();
    let scratch = tempfile::tempdir().unwrap();
    compile_standin(
        scratch.path(),
        Some((
            "AilLoader.java",
            "public static void killFactory()",
            "public static void killFactoryNow()",
        )),
    );
    let classes = scratch.path().join("classes");
    let out = std::process::Command::new(&tool)
        .args(["self-test", "--classpath"])
        .arg(&classes)
        .env("XDG_CACHE_HOME", scratch.path().join("cache"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "MISSING  com.genesyslab.ail.AilLoader.killFactory() [static]: no such method"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "1 of 42 AIL names missing: com.genesyslab.ail.AilLoader.killFactory() [static]"
        ),
        "{stdout}"
    );
    // The stand-in as shipped has every name.
    let out = std::process::Command::new(&tool)
        .args(["self-test", "--classpath"])
        .arg(standin_classes())
        .env("XDG_CACHE_HOME", scratch.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The plugin refuses to start on it, naming the method; nothing connects.
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(&deployment, "site1", &classes, "");
    let child = rig
        .drctl(&["watch", "--backend", "ail-bridge"])
        .spawn()
        .unwrap();
    let run = finish(child, Duration::from_secs(60));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("AIL is not usable from backend.ail-bridge.classpath")
            && run
                .stderr
                .contains("com.genesyslab.ail.AilLoader.killFactory()"),
        "{}",
        run.stderr
    );
    assert!(deployment.logins().is_empty());
}

#[test]
fn a_missing_java_is_a_clear_error() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(
        &deployment,
        "site1",
        &standin_classes(),
        "java = \"/nonexistent/bin/java\"",
    );
    let run = finish(
        rig.drctl(&["watch", "--backend", "ail-bridge"])
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot start the JVM \"/nonexistent/bin/java\"")
            && run.stderr.contains("backend.ail-bridge.java"),
        "{}",
        run.stderr
    );
}

//! The real backend, `ail-bridge`, end to end: drctl drives the JVM sidecar,
//! which drives an AIL stand-in, which talks to a stand-in deployment over
//! real loopback TCP. Shipped mock scenarios, scaled to seconds, must decide
//! exactly as the mock does, on both stand-ins (A, and B with the other
//! plausible shapes of AIL: weak listeners, instance killFactory, reason code
//! in the extensions, extra statuses); a killed JVM is restarted; `switch`
//! prints its timing table; the self-test names a missing AIL method and the
//! names file remaps it; the fidelity settings change what the bridge reports.

use drctl_e2e::ail::{
    ail_bridge_tool, build_ail_bridge, compile_standin, decisions, finish, interrupt, rig,
    scale_scenario, standin_classes, watch_bridge, watch_bridge_with, watch_mock, watch_mock_with,
    Deployment, Rig, Run, Variant, PASSWORD,
};
use drctl_e2e::{assert_contains, repo};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
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
                "alarm-raised telephony-service-down",
                "switchover-started telephony-timeout site1 site2",
                "alarm-cleared telephony-service-down",
                "switchover-completed telephony-timeout site1 site2",
            ],
        },
        Case {
            // OFF at 0.67 s, ON at 1.67 s, site-timeout 2 s: no switch.
            file: "d1-telephony-recovers.toml",
            scale: (1, 15),
            end: ms(3500),
            expected: &[
                CONNECTED1,
                "alarm-raised telephony-service-down",
                "alarm-cleared telephony-service-down",
            ],
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
            // dr-force_logout at 0.67 s, site-sip-register-timeout 4 s: the
            // switchover starts at 4.67 s; the run leaves a JVM under load
            // (kill, a new AilLoader, connect, subscribe) 2.3 s to complete it.
            file: "d4-dr-force-logout-timeout.toml",
            scale: (1, 15),
            end: ms(7000),
            expected: &[
                CONNECTED1,
                "logout-classified dr-force_logout dr-force",
                "alarm-raised sip-registration-lost",
                "switchover-started sip-register-timeout site1 site2",
                "switchover-completed sip-register-timeout site1 site2",
                "alarm-cleared sip-registration-lost",
            ],
        },
        Case {
            // Back in service at 2 s, well before the timeout at 4.67 s.
            file: "d4-dr-force-logout-reregisters.toml",
            scale: (1, 15),
            end: ms(5500),
            expected: &[
                CONNECTED1,
                "logout-classified dr-force_logout dr-force",
                "alarm-raised sip-registration-lost",
                "alarm-cleared sip-registration-lost",
            ],
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
                "alarm-raised telephony-service-down",
                "switchover-started telephony-timeout site2 site1",
                "alarm-cleared telephony-service-down",
                "switchover-completed telephony-timeout site2 site1",
            ],
        },
    ]
}

/// A shipped scenario scaled into `scratch` (under `name`), and its first site.
fn scaled_scenario(
    file: &str,
    scale: (u32, u32),
    end: Duration,
    scratch: &std::path::Path,
    name: &str,
) -> Result<(PathBuf, String), String> {
    let shipped = repo().join("plugins/mock/scenarios").join(file);
    scaled_file(&shipped, scale, end, scratch, name)
}

/// As [`scaled_scenario`], for any scenario file.
fn scaled_file(
    shipped: &std::path::Path,
    scale: (u32, u32),
    end: Duration,
    scratch: &std::path::Path,
    name: &str,
) -> Result<(PathBuf, String), String> {
    let text = std::fs::read_to_string(shipped).map_err(|e| e.to_string())?;
    let scaled = scratch.join(name);
    std::fs::write(&scaled, scale_scenario(&text, scale.0, scale.1, Some(end)))
        .map_err(|e| e.to_string())?;
    let first_site = text
        .lines()
        .find_map(|l| l.strip_prefix("first-site = "))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "site1".into());
    Ok((scaled, first_site))
}

/// What one parity run found wrong, if anything.
fn run_case(case: &Case, scratch: &std::path::Path, variant: Variant) -> Result<(), String> {
    let (scaled, first_site) = scaled_scenario(
        case.file,
        case.scale,
        case.end,
        scratch,
        &format!("{variant:?}-{}", case.file),
    )?;
    let deployment = Deployment::start(&scaled);
    let rig = rig(
        &deployment,
        &first_site,
        &standin_classes(variant),
        variant.bridge_config(),
    );
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
    // Every AIL event reached a listener: none was collected under the
    // bridge (stand-in B holds listeners and DN objects weakly, forcing GCs).
    let lost: Vec<String> = deployment
        .control_log()
        .into_iter()
        .filter(|l| l.starts_with("LOST "))
        .collect();
    if !lost.is_empty() {
        problems.push(format!("AIL events reached no listener: {lost:#?}"));
    }
    // The bridge found the stand-in's killFactory: A's is static, B's an instance method.
    let kill_factory = match variant {
        Variant::A => "killFactory: static",
        Variant::B => "killFactory: instance",
    };
    if !bridge.stderr.contains(kill_factory) {
        problems.push(format!("the bridge did not log {kill_factory:?}"));
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
            "{} on stand-in {variant:?}\n{}\nbridge stderr:\n{}",
            case.file,
            problems.join("\n"),
            bridge.stderr
        ))
    }
}

/// At most this many bridge runs at once in this test binary (both parity
/// suites share them): JVM starts are the heavy part on two cores.
static RUNS: (Mutex<usize>, Condvar) = (Mutex::new(5), Condvar::new());

/// Holds one of [`RUNS`] until dropped.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let (free, changed) = &RUNS;
        let mut n = free.lock().unwrap_or_else(|e| e.into_inner());
        while *n == 0 {
            n = changed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n -= 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (free, changed) = &RUNS;
        *free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        changed.notify_one();
    }
}

/// The 13 shipped scenarios on one stand-in, each deciding as on the mock.
fn parity(variant: Variant) {
    build_ail_bridge();
    standin_classes(variant);
    let scratch = tempfile::tempdir().unwrap();
    let mut cases = cases();
    // Longest first, the first runs started a little apart.
    cases.sort_by_key(|c| std::cmp::Reverse(c.end));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for worker in 0..5u32 {
            let (cases, next, failures, scratch) = (&cases, &next, &failures, scratch.path());
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(300) * worker);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { return };
                    let _slot = Slot::take();
                    let result = std::panic::catch_unwind(|| run_case(case, scratch, variant))
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

#[test]
fn shipped_scenarios_decide_as_on_the_mock() {
    parity(Variant::A);
}

#[test]
fn shipped_scenarios_decide_as_on_the_mock_on_standin_b() {
    parity(Variant::B);
}

/// Stand-in B as shipped decides D4's graceful shutdown as the mock; the
/// bridge's settings change that, each by its own effect: RESTORING counted
/// as OFF raises the configuration alarm at login (B's services come up
/// through RESTORING), an alias turns the graceful shutdown into a
/// dr-force logout, and a reason-code key B does not use makes it manual,
/// with the keys it has logged at debug.
#[test]
fn fidelity_settings_change_what_the_bridge_reports() {
    build_ail_bridge();
    let classes = standin_classes(Variant::B);
    let scratch = tempfile::tempdir().unwrap();
    let ms = Duration::from_millis;
    let run = |name: &str, settings: &str| {
        let (scaled, first_site) = scaled_scenario(
            "d4-graceful-shutdown.toml",
            (1, 15),
            ms(1500),
            scratch.path(),
            name,
        )
        .unwrap();
        let _slot = Slot::take();
        let deployment = Deployment::start(&scaled);
        let config = format!("{}{settings}", Variant::B.bridge_config());
        let rig = rig(&deployment, &first_site, &classes, &config);
        let run = watch_bridge_with(&rig, &deployment, ms(1500), &["-v"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        (decisions(&run.records), run.stderr)
    };
    let (aliased, keyed) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            run(
                "restoring.toml",
                "off-statuses = [\"OFF\", \"RESTORING\"]\n\
                 reason-code-aliases = { graceful_shutdown_logout = \"dr-force_logout\" }\n",
            )
        });
        let b = s.spawn(|| run("keys.toml", "reason-code-keys = [\"DRReason\"]\n"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        aliased
            .0
            .contains(&"alarm-raised configuration-service-down".to_owned()),
        "{:#?}\n{}",
        aliased.0,
        aliased.1
    );
    assert!(
        aliased
            .0
            .contains(&"logout-classified dr-force_logout dr-force".to_owned())
            && !aliased.0.iter().any(|d| d.contains("graceful-shutdown")),
        "{:#?}\n{}",
        aliased.0,
        aliased.1
    );
    assert!(
        keyed.0.contains(&"logout-classified  manual".to_owned())
            && !keyed.0.iter().any(|d| d.starts_with("switchover")),
        "{:#?}\n{}",
        keyed.0,
        keyed.1
    );
    assert!(
        keyed.1.contains("has no reason code under [DRReason]")
            && keyed.1.contains("extensions keys: [ReasonCode]"),
        "{}",
        keyed.1
    );
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
    let rig = rig(&deployment, "site1", &standin_classes(Variant::A), "");
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

/// `drctl switch --yes --to site2` on the adapter in `rig`, decisions as JSON.
fn switch_to_site2(rig: &Rig) -> Run {
    rig.run(
        &[
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
        ],
        Duration::from_secs(90),
    )
}

#[test]
fn switch_against_the_standin_prints_the_timing_table() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(&deployment, "site1", &standin_classes(Variant::A), "");
    let run = switch_to_site2(&rig);
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
    assert_contains(&run.stderr, "switched site1 -> site2");
    let log = deployment.control_log();
    let loaders: Vec<&String> = log.iter().filter(|l| l.starts_with("LOADER ")).collect();
    assert_eq!(loaders.len(), 2, "{log:?}");
    assert!(loaders[0].ends_with("AIL_site1 on-demand=false"), "{log:?}");
    assert!(loaders[1].ends_with("AIL_site2 on-demand=true"), "{log:?}");
}

/// Runs `drctl-ail-bridge self-test` with `args`; its exit code and stdout.
fn self_test(args: &[std::ffi::OsString], cache: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(ail_bridge_tool())
        .arg("self-test")
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn self_test_names_a_renamed_method_and_create_refuses_it() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    compile_standin(
        scratch.path(),
        Variant::A,
        Some((
            "AilLoader.java",
            "public static void killFactory()",
            "public static void killFactoryNow()",
        )),
    );
    let classes = scratch.path().join("classes");
    let cp = |dir: &std::path::Path| vec![std::ffi::OsString::from("--classpath"), dir.into()];
    let (code, stdout) = self_test(&cp(&classes), &cache);
    assert_eq!(code, Some(1), "{stdout}");
    assert_contains(
        &stdout,
        "MISSING  com.genesyslab.ail.AilLoader.killFactory(): no such method",
    );
    assert!(
        stdout.contains("1 of 48 AIL names missing: com.genesyslab.ail.AilLoader.killFactory()")
            && stdout.contains("killFactory: MISSING"),
        "{stdout}"
    );
    // The stand-ins as shipped have every name; the self-test says which
    // killFactory each has and prints the effective mapping.
    for (variant, kind) in [
        (Variant::A, "killFactory: static method"),
        (Variant::B, "killFactory: instance method"),
    ] {
        let (code, stdout) = self_test(&cp(&standin_classes(variant)), &cache);
        assert_eq!(code, Some(0), "{variant:?}: {stdout}");
        assert!(
            stdout.contains(kind)
                && stdout.contains("names: built-in")
                && stdout.contains("method.kill-factory")
                && stdout.contains("= killFactory  (guide)")
                && stdout.contains("= LOGGED_OUT  (ASSUMED)")
                && stdout.contains("all 48 AIL names found"),
            "{variant:?}: {stdout}"
        );
    }
    // A names file (Java properties here) remaps the renamed method, no rebuild.
    let names = scratch.path().join("names.properties");
    std::fs::write(
        &names,
        "# killFactory is killFactoryNow in this AIL\nmethod.kill-factory = killFactoryNow\n",
    )
    .unwrap();
    let mut args = cp(&classes);
    args.extend(["--names".into(), names.clone().into()]);
    let (code, stdout) = self_test(&args, &cache);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("names: {} (1 overridden)", names.display()))
            && stdout.contains("= killFactoryNow  (names file; default killFactory, guide)")
            && stdout.contains("ok       com.genesyslab.ail.AilLoader.killFactoryNow() [static]")
            && stdout.contains("killFactory: static method"),
        "{stdout}"
    );
    // A key that is no AIL name is refused by name (exit 2).
    let typo = scratch.path().join("typo.toml");
    std::fs::write(&typo, "[method]\nkill-factroy = \"killFactoryNow\"\n").unwrap();
    let mut args = cp(&classes);
    args.extend(["--names".into(), typo.clone().into()]);
    let (code, stdout) = self_test(&args, &cache);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains("unknown key method.kill-factroy") && stdout.contains("typo.toml"),
        "{stdout}"
    );

    // The plugin refuses to start on the renamed method, naming it; nothing connects.
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(&deployment, "site1", &classes, "");
    let run = rig.run(
        &["watch", "--backend", "ail-bridge"],
        Duration::from_secs(60),
    );
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
    // With a names file (TOML here) the same AIL runs: the switchover kills
    // the factory through killFactoryNow.
    let names = scratch.path().join("names.toml");
    std::fs::write(&names, "[method]\nkill-factory = \"killFactoryNow\"\n").unwrap();
    let rig_named = drctl_e2e::ail::rig(
        &deployment,
        "site1",
        &classes,
        &format!("names = {:?}", names.display().to_string()),
    );
    let run = switch_to_site2(&rig_named);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        deployment.control_log().iter().any(|l| l == "KILL"),
        "{:?}",
        deployment.control_log()
    );
}

#[test]
fn a_missing_java_is_a_clear_error() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let deployment = Deployment::start(&quiet(scratch.path()));
    let rig = rig(
        &deployment,
        "site1",
        &standin_classes(Variant::A),
        "java = \"/nonexistent/bin/java\"",
    );
    let run = rig.run(
        &["watch", "--backend", "ail-bridge"],
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

/// Decisions with the alarms apart: the switchovers in order, the alarms as
/// a sorted list. Back at a site, its statuses come from AIL's listeners
/// while the login's answer comes from the request; which one the host sees
/// first is AIL's thread timing (stand-in B's statuses pass through
/// RESTORING first), and either order is right.
fn canonical(decisions: &[String]) -> (Vec<&String>, Vec<&String>) {
    let (mut alarms, switchovers): (Vec<&String>, Vec<&String>) =
        decisions.iter().partition(|d| d.starts_with("alarm-"));
    alarms.sort();
    (switchovers, alarms)
}

/// W5 and E2 through the adapter, on both stand-ins, deciding as the mock
/// does. W5 (`w5-login-refused.toml`, 1/10): the agent is logged in on its
/// DN after every connect; site2 refuses logins until 6 s, so the switchover
/// at 4 s fails at the login (W4) and a later one gets there. E2
/// (`e2-preferred-down-200s.toml`, 1/30): site1's telephony is off from
/// 0.33 s to 7 s; the bridge probes it (a TCP connect to its CS Proxy, then
/// the operator's probe command, every second) and fails back once, 3 s
/// after it is healthy. E5 (`e5-evacuate-site1.toml`, 1/30): site1's
/// Application says `evacuate` from 2 s to 10 s; the bridge follows
/// Configuration Server (`addConfigListener`), the agent leaves and comes
/// back by E2 once it is cleared.
#[test]
fn w5_login_and_e2_probe_go_through_the_adapter_as_on_the_mock() {
    build_ail_bridge();
    let scratch = tempfile::tempdir().unwrap();
    let w5: &[&str] = &["--set", "agent.login=true"];
    let e2: &[&str] = &[
        "--set",
        "policy.failback=auto",
        "--set",
        "policy.failback-after=3s",
        "--set",
        // A probe unanswered by the next one has failed (E2): a loaded
        // machine may take a while to spawn the probe command.
        "policy.failback-probe-interval=1s",
    ];
    // E5: evacuated at 2 s, cleared at 10 s; back by E2 (site1 is healthy).
    let e5: &[&str] = &[
        "--set",
        "policy.directives=true",
        "--set",
        "policy.failback=auto",
        "--set",
        "policy.failback-after=2s",
        "--set",
        "policy.failback-probe-interval=1s",
    ];
    type AdapterCase<'a> = (&'a str, (u32, u32), Duration, &'a [&'a str]);
    let cases: [AdapterCase; 4] = [
        (
            "w5-login-refused.toml",
            (1, 10),
            Duration::from_secs(12),
            w5,
        ),
        (
            "e2-preferred-down-200s.toml",
            (1, 30),
            Duration::from_secs(15),
            e2,
        ),
        (
            "e5-evacuate-site1.toml",
            (1, 30),
            Duration::from_secs(16),
            e5,
        ),
        // E5 at startup: the evacuation is read with the Application (S3).
        (
            "e5-evacuated-at-startup.toml",
            (1, 10),
            Duration::from_secs(14),
            e5,
        ),
    ];
    let mut problems = Vec::new();
    for variant in [Variant::A, Variant::B] {
        for (file, scale, end, sets) in cases {
            let name = format!("{variant:?}-{file}");
            let scenario = repo().join("tests/scenarios").join(file);
            let (scaled, first_site) = scaled_file(&scenario, scale, end, scratch.path(), &name)
                .expect("scale the scenario");
            let deployment = Deployment::start(&scaled);
            let extra = format!(
                "{}probe-command = {}\n",
                variant.bridge_config(),
                deployment.probe_command()
            );
            let rig = rig(&deployment, &first_site, &standin_classes(variant), &extra);
            let mock = watch_mock_with(&rig, &scaled, sets);
            assert_eq!(mock.code, Some(0), "{name}: {mock:#?}");
            let bridge = watch_bridge_with(&rig, &deployment, end, sets);
            let (from_mock, from_bridge) = (decisions(&mock.records), decisions(&bridge.records));
            if bridge.code != Some(0) || canonical(&from_bridge) != canonical(&from_mock) {
                problems.push(format!(
                    "{name}: bridge exit {:?} decided {from_bridge:#?}\nmock decided {from_mock:#?}\n{}",
                    bridge.code, bridge.stderr
                ));
                continue;
            }
            let logins = deployment.seen().agent_logins;
            if file.starts_with("w5") {
                // Refused at site2 first, then logged in there, on the agent's DN.
                let at_site2: Vec<&str> = logins
                    .iter()
                    .filter(|l| l.starts_with("site2 "))
                    .map(|l| l.rsplit(' ').next().unwrap_or(""))
                    .collect();
                if at_site2.first() != Some(&"refused") || at_site2.last() != Some(&"ok") {
                    problems.push(format!("{name}: logins at the deployment {logins:#?}"));
                }
                let failed = from_bridge.iter().any(|d| d == "switchover-failed site2");
                if !failed {
                    problems.push(format!("{name}: no failed switchover: {from_bridge:#?}"));
                }
            } else if file.starts_with("e5") {
                let away = from_bridge
                    .iter()
                    .any(|d| d == "switchover-started directive site1 site2");
                let back = from_bridge
                    .iter()
                    .any(|d| d == "switchover-started failback site2 site1");
                if !away || !back {
                    problems.push(format!("{name}: {from_bridge:#?}"));
                }
            } else {
                if !logins.is_empty() {
                    problems.push(format!("{name}: logins with agent.login off: {logins:?}"));
                }
                let failbacks = from_bridge
                    .iter()
                    .filter(|d| d.starts_with("switchover-started failback"))
                    .count();
                if failbacks != 1 {
                    problems.push(format!("{name}: {failbacks} failbacks: {from_bridge:#?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

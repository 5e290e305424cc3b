//! The service as shipped (issue 16, "The service"): the systemd unit, its
//! sysusers snippet and the example config, checked with the real tools
//! where they are installed (`.ci/run` installs them) and run as the unit
//! runs drctl; readiness and watchdog notifications; recordings that are
//! never destroyed; the metrics endpoint's health checks and conventions.

use drctl_e2e::service::{
    http, promtool_check_metrics, tool_or_skip, NotifySocket, Unit, UnitDirs,
};
use drctl_e2e::{
    agent_config, command, drctl, drctl_bin, free_port, repo, signal, wait_until, wait_within,
    Drctl, TestDir,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The agent's password in the tests' credential.
const PASSWORD: &str = "hunter2-unit-known";

const DEMO: &str = "plugins/mock/scenarios/demo.toml";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The shipped example config, which README installs as the unit's
/// `/etc/drctl/drctl.toml`.
fn example_config() -> String {
    repo()
        .join("config/examples/drctl.toml")
        .display()
        .to_string()
}

/// `drctl` as the shipped unit runs it: its `ExecStart=` arguments (the
/// example config for `/etc/drctl/drctl.toml`) after the global flags
/// `first`, in the unit's environment (directories, credential).
fn as_the_unit_runs_it(unit: &Unit, dirs: &UnitDirs, first: &[&str]) -> Command {
    let mut args: Vec<String> = first.iter().map(|s| (*s).to_owned()).collect();
    let mut exec = dirs.exec_args(unit).into_iter();
    while let Some(arg) = exec.next() {
        if arg == "--config" {
            let file = exec.next().expect("--config FILE");
            assert_eq!(
                file, "/etc/drctl/drctl.toml",
                "the README installs it there"
            );
            args.extend(["--config".to_owned(), example_config()]);
        } else {
            args.push(arg);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = command(&args, dirs.root.path());
    cmd.envs(dirs.environment(unit));
    cmd
}

/// A drctl client (`status`, …) with the example config, as the unit's user
/// runs one (it finds the socket in the runtime directory).
fn client(unit: &Unit, dirs: &UnitDirs, args: &[&str]) -> Output {
    let config = example_config();
    let mut all = vec!["--config", config.as_str()];
    all.extend(args);
    command(&all, dirs.root.path())
        .env("RUNTIME_DIRECTORY", dirs.of(unit, "RuntimeDirectory"))
        .output()
        .expect("run drctl")
}

#[test]
fn the_example_config_passes_config_check_in_the_units_environment() {
    let unit = Unit::shipped();
    let dirs = UnitDirs::for_unit(&unit, PASSWORD);
    let config = example_config();
    let out = command(&["--config", &config, "config", "check"], dirs.root.path())
        .envs(dirs.environment(&unit))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );
    // One password source, and the credential read (no "needed at run time").
    assert!(!stderr.contains("warning"), "{stderr}");

    // Outside systemd the credential is missing, and the message says how to provide it.
    let out = Drctl::new(&["--config", &config, "config", "check"]).run_in(dirs.root.path());
    let stderr = &out.stderr;
    assert!(
        stderr.contains("$CREDENTIALS_DIRECTORY is not set")
            && stderr.contains("LoadCredential=password:/etc/drctl/password"),
        "{stderr}"
    );
}

#[test]
fn the_unit_as_shipped_notifies_ready_and_watchdog_answers_status_and_records() {
    let unit = Unit::shipped();
    assert_eq!(unit.one("Type"), "notify");
    assert!(unit.one("WatchdogSec").ends_with('s'));
    assert_eq!(unit.one("RestartPreventExitStatus"), "2");
    let dirs = UnitDirs::for_unit(&unit, PASSWORD);
    let mut notify = NotifySocket::bind();
    let port = free_port();
    let listen = format!("metrics.listen=127.0.0.1:{port}");
    let stderr_file = dirs.root.path().join("stderr");
    let mut child = as_the_unit_runs_it(&unit, &dirs, &["--set", &listen])
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();

    // READY once startup is done (the demo relocates site2 -> site1 first).
    let ready = notify.wait_for("READY=1");
    assert!(
        ready.lines().any(|l| l == "STATUS=watching on site1"),
        "{ready}"
    );
    notify.wait_for("WATCHDOG=1");

    // The socket is in the runtime directory, where status finds it.
    let socket = dirs.of(&unit, "RuntimeDirectory").join("agent007.sock");
    assert!(socket.exists(), "no {}", socket.display());
    let out = client(&unit, &dirs, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("site1 (preferred site1), epoch 2, watching"),
        "{}",
        text(&out.stdout)
    );
    let ready = http(port, "GET", "/readyz", &[]).expect("the metrics endpoint answers");
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.body, "ready: watching on site1\n");

    signal(&child, "-TERM");
    let status = wait_within(&mut child, Duration::from_secs(30)).expect("a clean stop");
    let logs = std::fs::read_to_string(&stderr_file).unwrap();
    assert_eq!(status.code(), Some(0), "{logs}");
    notify.wait_for("STOPPING=1");
    assert!(!logs.contains(PASSWORD), "the password is in the logs");

    // A new recording under the state directory, whole (it replays).
    let recordings = dirs.of(&unit, "StateDirectory").join("recordings");
    let files: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .unwrap_or_else(|e| panic!("{}: {e}", recordings.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("drctl-agent007-") && name.ends_with("Z.jsonl"),
        "{name}"
    );
    let out = drctl(&["replay", &files[0].to_string_lossy(), "--check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_wedged_loop_stops_the_watchdog_pings() {
    // The chaos backend blocks the loop's thread inside a plugin call at 1 s:
    // the pings must stop, so that systemd kills and restarts the watcher.
    // (Pings from a timer thread of their own would go on: this fails then.)
    let dir = TestDir::new();
    let agent = agent_config("password-env = \"DRCTL_TEST_PASSWORD\"");
    let config = dir.file(
        "drctl.toml",
        &format!(
            "{agent}[backend]\nname = \"chaos\"\n\
             [backend.chaos]\nfault = {{ mode = \"wedge\", at = \"1s\", hold = \"1h\" }}\n"
        ),
    );
    let mut notify = NotifySocket::bind();
    let mut child = command(&["--config", &config, "watch"], dir.path())
        .env("DRCTL_TEST_PASSWORD", PASSWORD)
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wedged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stderr = child.stderr.take().unwrap();
    let flag = wedged.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("chaos: wedged") {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    notify.wait_for("READY=1");
    notify.wait_for("WATCHDOG=1");
    // Read the pings as they come (the socket keeps what is not read), until
    // the loop is wedged.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !wedged.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the loop never wedged"
        );
        notify.drain(Duration::from_millis(20));
    }
    // A healthy loop pings every 100 ms: 15 in 1.5 s. One may have been on
    // its way when the loop wedged.
    let after = notify.drain(Duration::from_millis(1500));
    let pings = after
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    let _ = child.kill();
    let _ = child.wait();
    assert!(pings <= 1, "{pings} pings from a wedged loop: {after:?}");
}

/// A root for `systemd-analyze --root`: the system's units, the shipped unit
/// installed in `/etc/systemd/system`, drctl where `ExecStart=` runs it.
fn installed_root(unit: &Unit) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .expect("the system's unit directory");
    let target = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(units)
        .arg(&target)
        .status()
        .is_ok_and(|s| s.success());
    assert!(copied, "copying {}", units.display());
    let etc = root.path().join("etc/systemd/system");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(
        repo().join("config/examples/drctl.service"),
        etc.join("drctl.service"),
    )
    .unwrap();
    let binary = unit
        .one("ExecStart")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let installed = root.path().join(binary.trim_start_matches('/'));
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(drctl_bin(), &installed).unwrap();
    root
}

#[test]
fn systemd_analyze_verifies_the_installed_unit_and_rates_its_exposure_at_most_2() {
    let Some(analyze) = tool_or_skip("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let unit = Unit::shipped();
    let root = installed_root(&unit);
    let root_arg = format!("--root={}", root.path().display());
    let out = Command::new(&analyze)
        .args(["verify", &root_arg, "/etc/systemd/system/drctl.service"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = Command::new(&analyze)
        .args([
            "security",
            "--offline=true",
            &root_arg,
            "--threshold=20",
            "drctl.service",
        ])
        .output()
        .unwrap();
    let report = text(&out.stdout) + &text(&out.stderr);
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for drctl.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in\n{report}"));
    assert!(
        out.status.success() && exposure <= 2.0,
        "exposure {exposure} > 2.0:\n{report}"
    );
}

#[test]
fn the_sysusers_snippet_creates_the_units_user_and_group() {
    let Some(sysusers) = tool_or_skip("systemd-sysusers", "apt-get install systemd") else {
        return;
    };
    let unit = Unit::shipped();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let out = Command::new(sysusers)
        .arg(format!("--root={}", root.path().display()))
        .arg(repo().join("config/examples/drctl.sysusers"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let user = unit.one("User");
    let entry = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .unwrap_or_else(|| panic!("no user {user} in\n{passwd}"));
    assert!(entry.ends_with(":/usr/sbin/nologin"), "{entry}");
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    let name = unit.one("Group");
    assert!(
        group.lines().any(|l| l.starts_with(&format!("{name}:"))),
        "no group {name} in\n{group}"
    );
}

/// `drctl watch` of the demo on the virtual clock with `record` flags.
fn recorded(record: &[&str]) -> Output {
    let mut args = vec![
        "watch",
        "--backend",
        "mock",
        "--scenario",
        DEMO,
        "--clock",
        "virtual",
        "--until-end",
    ];
    args.extend(record);
    drctl(&args)
}

#[test]
fn record_refuses_an_existing_file_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incident.jsonl");
    std::fs::write(&file, "the recording of last night\n").unwrap();
    let path = file.to_string_lossy();
    let out = recorded(&["--record", &path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("--record {path}: the file exists")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing ran");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "the recording of last night\n"
    );

    let out = recorded(&["--record", &path, "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replaced = std::fs::read_to_string(&file).unwrap();
    assert!(replaced.starts_with("{\"format\""), "{replaced:.80}");

    // A device holds no recording to lose.
    let out = recorded(&["--record", "/dev/null"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn record_dir_writes_a_new_file_each_run_and_deletes_only_its_own_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keep = [
        "drctl-other-20200101T000000Z.jsonl",
        "notes.txt",
        "drctl-agent-20200101T000000Z.jsonl.bak",
        "drctl-agent-latest.jsonl",
    ];
    for name in keep {
        std::fs::write(d.join(name), "not drctl's to delete").unwrap();
    }
    std::os::unix::fs::symlink(
        d.join("notes.txt"),
        d.join("drctl-agent-20190101T000000Z.jsonl"),
    )
    .unwrap();
    for old in [
        "drctl-agent-20200101T000000Z.jsonl",
        "drctl-agent-20200102T000000Z.jsonl",
    ] {
        std::fs::write(d.join(old), "an old recording").unwrap();
    }
    let dir_arg = d.to_string_lossy();
    let own = |d: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("drctl-agent-2") && n.ends_with(".jsonl"))
            .collect();
        names.sort();
        names
    };

    let out = recorded(&["--record-dir", &dir_arg, "--record-keep", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_one = own(d);
    assert_eq!(after_one.len(), 3, "{after_one:?}");
    assert_eq!(
        after_one[0], "drctl-agent-20190101T000000Z.jsonl",
        "the symlink stays"
    );
    assert_eq!(after_one[1], "drctl-agent-20200102T000000Z.jsonl");

    let out = recorded(&["--record-dir", &dir_arg, "--record-keep", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_two = own(d);
    assert_eq!(after_two.len(), 3, "{after_two:?}");
    assert_eq!(after_two[0], "drctl-agent-20190101T000000Z.jsonl");
    // The newest two are this test's runs, each a whole recording.
    for name in &after_two[1..] {
        let stamp = name
            .trim_start_matches("drctl-agent-")
            .trim_end_matches(".jsonl");
        let (time, n) = stamp.split_once('-').unwrap_or((stamp, "0"));
        assert!(
            time.len() == 16 && time.ends_with('Z') && n.parse::<u32>().is_ok(),
            "{name}"
        );
        let out = drctl(&["replay", &d.join(name).to_string_lossy(), "--check"]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    }
    assert!(
        after_two.contains(&after_one[2]),
        "the first run's file is kept"
    );
    for name in keep {
        assert_eq!(
            std::fs::read_to_string(d.join(name)).unwrap(),
            "not drctl's to delete",
            "{name}"
        );
    }
}

/// A mock scenario whose sites answer only from 3 s on.
const LATE_SITES: &str = "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
    connect-latency = \"100ms\"\nend = \"10m\"\n\
    [sites.site1]\nreachable = false\n[sites.site2]\nreachable = false\n\
    [[events]]\nat = \"3s\"\nsite = \"site1\"\nset = { reachable = true }\n";

/// A real-clock watcher of [`LATE_SITES`] with metrics on `port`.
fn late_watcher(dir: &Path, port: u16) -> std::process::Child {
    let scenario = dir.join("late.toml");
    std::fs::write(&scenario, LATE_SITES).unwrap();
    let listen = format!("metrics.listen=127.0.0.1:{port}");
    command(
        &[
            "--set",
            &listen,
            "watch",
            "--backend",
            "mock",
            "--scenario",
            &scenario.to_string_lossy(),
        ],
        dir,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

#[test]
fn the_metrics_endpoint_answers_health_checks_methods_and_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = late_watcher(dir.path(), port);
    let mut first = None;
    wait_until("the metrics endpoint", Duration::from_secs(30), || {
        first = http(port, "GET", "/readyz", &[]);
        first.is_some()
    });
    // Not ready while no site answers.
    let first = first.unwrap();
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.body.starts_with("not ready: "), "{first:?}");
    let live = http(port, "GET", "/livez", &[]).unwrap();
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));

    // Every labelled series is there before anything happened.
    let om = http(port, "GET", "/metrics", &[]).unwrap();
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    for line in [
        "drctl_site{agent=\"agent\",site=\"site1\"} 0",
        "drctl_site{agent=\"agent\",site=\"site2\"} 0",
        "drctl_listener_up{agent=\"agent\",listener=\"dn\"} 0",
        "drctl_alarm_active{agent=\"agent\",alarm=\"recording-failed\"} 0",
        "drctl_switchovers_total{agent=\"agent\",reason=\"failback\",outcome=\"failed\"} 0",
        "drctl_phase{agent=\"agent\",phase=\"killing-factory\"} 0",
        "drctl_phase_seconds_total{agent=\"agent\",phase=\"watching\"} 0",
    ] {
        assert!(om.body.contains(line), "{line} not in\n{}", om.body);
    }

    // The text format 0.0.4 when asked for, with HELP and TYPE on every family.
    let t = http(
        port,
        "GET",
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .unwrap();
    assert_eq!(
        t.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!t.body.contains("# EOF"), "{}", t.body);
    for family in [
        "drctl_switchovers_total",
        "drctl_phase_seconds_total",
        "drctl_backend_faults_total",
    ] {
        for kind in ["HELP", "TYPE"] {
            let line = format!("# {kind} {family} ");
            assert!(t.body.contains(&line), "{line} not in\n{}", t.body);
        }
    }

    // HEAD: the headers of a GET, no body; other methods: 405 naming the allowed ones.
    let head = http(port, "HEAD", "/metrics", &[]).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{head:?}");
    assert!(head.header("content-length").is_some(), "{head:?}");
    for method in ["POST", "PUT", "DELETE"] {
        let r = http(port, method, "/metrics", &[]).unwrap();
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(http(port, "GET", "/nothing", &[]).unwrap().status, 404);

    // Ready once the agent watches on site1 (at about 3 s).
    wait_until("readiness", Duration::from_secs(30), || {
        http(port, "GET", "/readyz", &[]).is_some_and(|r| r.status == 200)
    });
    let m = http(port, "GET", "/metrics", &[]).unwrap();
    for line in [
        "drctl_site{agent=\"agent\",site=\"site1\"} 1",
        "drctl_site{agent=\"agent\",site=\"site2\"} 0",
    ] {
        assert!(m.body.contains(line), "{line} not in\n{}", m.body);
    }
    signal(&child, "-TERM");
    let status = wait_within(&mut child, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn promtool_check_metrics_passes() {
    // Without promtool (outside CI) there is nothing to check against.
    if tool_or_skip("promtool", "apt-get install prometheus").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = late_watcher(dir.path(), port);
    // Once watching, so that every kind of sample (histogram too) is there.
    wait_until("readiness", Duration::from_secs(30), || {
        http(port, "GET", "/readyz", &[]).is_some_and(|r| r.status == 200)
    });
    let body = http(port, "GET", "/metrics", &[("Accept", "text/plain")])
        .unwrap()
        .body;
    signal(&child, "-TERM");
    let _ = wait_within(&mut child, Duration::from_secs(30));
    promtool_check_metrics(&body);
}

//! Alarm sinks with least privilege (issue 12): an exec sink's command gets
//! no secret and nothing of drctl's environment beyond an allow-list, never
//! writes to drctl's stdout, reads /dev/null, and leaves no process behind
//! (its timeout and drctl's exit kill its whole process group). Webhooks
//! follow no redirect, say why a delivery failed, and a sink URL's
//! credentials appear nowhere.

use drctl_e2e::{
    agent_config, assert_contains, read_test_scenario, wait_until, Drctl, Ran, Running, TestDir,
};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "Pa55-sink-must-not-see";

/// Site1's statistic service goes off at 1 s (alarm raised) and comes back
/// at 2 s (alarm cleared); the agent stays on site1.
const SCENARIO: &str = "statistic-blip.toml";

/// Only the first alarm, on the real clock (for a watcher the test stops).
const SCENARIO_REAL: &str = "statistic-off.toml";

/// A test dir with `ops.toml` (the test scenario `scenario`) and
/// `drctl.toml` (agent007 with its password in the environment, the control
/// socket, then the sinks `sinks(dir)` gives).
fn setup(sinks: impl FnOnce(&TestDir) -> String, scenario: &str) -> TestDir {
    let dir = TestDir::new();
    dir.file("ops.toml", &read_test_scenario(scenario));
    let agent = agent_config("password-env = \"DRCTL_AGENT_PASSWORD\"");
    dir.control_config(&format!("{agent}{}", sinks(&dir)));
    dir
}

/// `drctl --config drctl.toml watch --backend mock --scenario ops.toml`,
/// with the password and an unrelated variable in its environment.
fn drctl_in(dir: &TestDir) -> Drctl {
    Drctl::watch(dir.at("ops.toml"))
        .config(dir.at("drctl.toml"))
        .env("DRCTL_AGENT_PASSWORD", PASSWORD)
        .env("E2E_UNRELATED_SETTING", "drctl-only")
}

/// A virtual-clock run of SCENARIO to its end, `--output json`.
fn run_virtual(dir: &TestDir) -> Ran {
    dir.run(&drctl_in(dir).virtual_to_end().json())
}

/// [`run_virtual`] with `sinks` (TOML) in the config: it must succeed.
fn run_with_sinks(sinks: String) -> Ran {
    let out = run_virtual(&setup(|_| sinks, SCENARIO));
    assert!(out.success(), "{}", out.stderr);
    out
}

/// Whether `pid` is a live process (a zombie is dead: nobody may reap it here).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) STATE ...`: the state follows the last ')'.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), None | Some('Z' | 'X'))
}

/// Kills a leftover process at the end of a test, whatever its outcome.
struct Reap(Vec<i32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: SIGKILL to a process this test caused to exist.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
    }
}

/// Waits up to `exit` for drctl to exit 0, then up to `eof` for its stdout
/// to close (nothing it started may hold it); its stdout lines.
fn exits_0_and_closes_stdout(drctl: &mut Running, exit: Duration, eof: Duration) -> Vec<String> {
    let status = drctl.wait_within(exit).expect("drctl did not exit");
    assert_eq!(status.code(), Some(0), "{}", drctl.stderr());
    drctl.lines.rest_within(eof).to_vec()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The pid of the grandchild a [`stubborn_sink`] started (its pidfile
/// `dir/gc.pid`), once it has started, and a [`Reap`] that kills it at the
/// end of the test, whatever its outcome.
fn stubborn_grandchild(dir: &TestDir) -> (i32, Reap) {
    let pidfile = dir.path().join("gc.pid");
    let mut pid = None;
    wait_until("the sink's grandchild to start", secs(30), || {
        pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        pid.is_some()
    });
    let pid = pid.unwrap_or_default();
    (pid, Reap(vec![pid]))
}

/// An exec sink whose command starts a grandchild that ignores SIGTERM and
/// sleeps, writes its pid to `pidfile`, and waits for it.
fn stubborn_sink(pidfile: &str, timeout: &str) -> String {
    format!(
        "[[alarms.sinks]]\ntype = \"exec\"\ntimeout = \"{timeout}\"\n\
         command = [\"sh\", \"-c\", \"(trap '' TERM; exec sleep 600) & echo $! > {pidfile}; wait\"]\n"
    )
}

#[test]
fn an_exec_sink_gets_the_event_and_its_env_never_the_password_or_drctls_env() {
    let dir = setup(
        |dir| {
            let env_out = dir.at("env");
            let stdin_out = dir.at("stdin");
            format!(
                "[[alarms.sinks]]\ntype = \"exec\"\nenv = {{ PAGER_TEAM = \"contact-centre\" }}\n\
                 command = [\"sh\", \"-c\", \"env > {env_out}.$DRCTL_STATE; \
                 readlink /proc/self/fd/0 > {stdin_out}.$DRCTL_STATE; cat > {stdin_out}.read\"]\n"
            )
        },
        SCENARIO,
    );
    let env_out = dir.at("env");
    let stdin_out = dir.at("stdin");
    // drctl's own stdin is an open pipe with data: the sink must not see it.
    let mut cmd = drctl_in(&dir).virtual_to_end().json().command(dir.path());
    cmd.stdin(Stdio::piped());
    let mut drctl = Running::spawn(cmd);
    let mut stdin = drctl.take_stdin();
    let _ = std::io::Write::write_all(&mut stdin, b"drctl's own stdin\n");
    // drctl's stdin stays open until drctl has exited.
    exits_0_and_closes_stdout(&mut drctl, Duration::from_secs(60), Duration::from_secs(20));
    drop(stdin);
    for state in ["raised", "cleared"] {
        let env = std::fs::read_to_string(format!("{env_out}.{state}"))
            .unwrap_or_else(|e| panic!("the sink did not run for {state}: {e}"));
        assert!(
            !env.contains(PASSWORD),
            "the password reached the sink:\n{env}"
        );
        assert!(!env.contains("DRCTL_AGENT_PASSWORD"), "{env}");
        assert!(!env.contains("E2E_UNRELATED_SETTING"), "{env}");
        assert!(!env.contains("XDG_CONFIG_HOME"), "{env}");
        for want in [
            "DRCTL_EVENT=alarm".to_owned(),
            format!("DRCTL_STATE={state}"),
            "DRCTL_ALARM=statistic-service-down".to_owned(),
            "DRCTL_AGENT=agent007".to_owned(),
            "PAGER_TEAM=contact-centre".to_owned(),
            "PATH=".to_owned(),
        ] {
            assert!(
                env.lines().any(|l| l.starts_with(&want)),
                "no {want} in\n{env}"
            );
        }
        let stdin = std::fs::read_to_string(format!("{stdin_out}.{state}")).unwrap();
        assert_eq!(stdin.trim(), "/dev/null");
    }
    assert_eq!(
        std::fs::read_to_string(format!("{stdin_out}.read")).unwrap(),
        ""
    );
}

#[test]
fn an_exec_sinks_output_goes_to_the_log_never_to_drctls_stdout() {
    let sinks = "[[alarms.sinks]]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"echo SINK-SAYS-$DRCTL_STATE; echo SINK-COMPLAINS >&2; \
         head -c 100000 /dev/zero | tr '\\\\0' x\"]\n";
    let out = run_with_sinks(sinks.to_owned());
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        !stdout.contains("SINK-"),
        "sink output on stdout:\n{stdout}"
    );
    // Every stdout line is a decision record.
    assert!(out
        .records()
        .iter()
        .any(|r| r.ends_with("alarm-raised statistic-service-down")));
    for want in ["SINK-SAYS-raised", "SINK-SAYS-cleared", "SINK-COMPLAINS"] {
        assert!(stderr.contains(want), "no {want} in the log:\n{stderr}");
    }
    // 100 000 bytes of output: the log gets a bounded part and says so.
    assert_contains(stderr, "more byte(s) not logged");
    assert!(stderr.len() < 60_000, "{} bytes of log", stderr.len());
}

#[test]
fn an_exec_sink_killed_at_its_timeout_leaves_no_grandchild() {
    let dir = setup(|dir| stubborn_sink(&dir.at("gc.pid"), "1s"), SCENARIO_REAL);
    let mut drctl = drctl_in(&dir).json().spawn(dir.path());
    let (pid, _reap) = stubborn_grandchild(&dir);
    wait_until(
        "the grandchild to be killed at the sink's timeout",
        secs(20),
        || !alive(pid),
    );
    assert!(
        drctl.is_running(),
        "drctl exited: the grandchild went with it, not with the timeout"
    );
    drctl.signal(libc::SIGINT);
    exits_0_and_closes_stdout(&mut drctl, secs(30), secs(10));
    let err = drctl.finish().stderr;
    assert_contains(&err, "killed after 1s");
}

#[test]
fn drctls_exit_kills_a_running_sinks_whole_process_group() {
    let dir = setup(|dir| stubborn_sink(&dir.at("gc.pid"), "1h"), SCENARIO);
    let mut drctl = drctl_in(&dir).virtual_to_end().json().spawn(dir.path());
    let (pid, _reap) = stubborn_grandchild(&dir);
    // drctl gives its sinks 5 s at shutdown, then stops them.
    let out = exits_0_and_closes_stdout(&mut drctl, secs(60), secs(10));
    assert!(!out.is_empty());
    wait_until(
        "the grandchild to be gone after drctl exited",
        secs(10),
        || !alive(pid),
    );
}

/// A loopback HTTP server answering every request with `status` (and
/// `location`, if any); counts the requests it gets.
fn server(status: u16, location: Option<String>) -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let got = hits.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            got.fetch_add(1, Ordering::SeqCst);
            let mut response = tiny_http::Response::empty(status);
            if let Some(l) = &location {
                response.add_header(
                    tiny_http::Header::from_bytes(&b"Location"[..], l.as_bytes()).unwrap(),
                );
            }
            let _ = req.respond(response);
        }
    });
    (base, hits)
}

#[test]
fn a_webhook_redirect_is_not_followed_and_is_a_failed_delivery_naming_the_location() {
    let (elsewhere, elsewhere_hits) = server(204, None);
    let landing = format!("{elsewhere}/landing");
    let (found, found_hits) = server(302, Some(landing.clone()));
    let (temporary, temporary_hits) = server(307, Some(landing.clone()));
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{found}/hook\"\nretries = 0\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{temporary}/hook\"\nretries = 0\n"
    );
    let out = run_with_sinks(sinks);
    let stderr = &out.stderr;
    // Both sinks were tried (alarm raised and cleared), nothing reached the other host.
    assert_eq!(found_hits.load(Ordering::SeqCst), 2, "{stderr}");
    assert_eq!(temporary_hits.load(Ordering::SeqCst), 2, "{stderr}");
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 0, "{stderr}");
    for status in ["302 Found", "307 Temporary Redirect"] {
        let want = format!("HTTP {status}: redirect to {landing} not followed");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("not delivered") && l.contains(&want)),
            "no {want:?} in\n{stderr}"
        );
    }
}

#[test]
fn a_failed_webhook_delivery_says_why() {
    let (failing, hits) = server(500, None);
    let closed = drctl_e2e::ClosedPort::new();
    let down = closed.port();
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{failing}/hook\"\nretries = 1\nretry-backoff = \"10ms\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{down}/hook\"\nretries = 0\n"
    );
    let out = run_with_sinks(sinks);
    let stderr = &out.stderr;
    assert_eq!(hits.load(Ordering::SeqCst), 4, "{stderr}");
    assert_contains(
        stderr,
        "not delivered: HTTP 500 Internal Server Error (after 2 attempt(s))",
    );
    let refused = stderr
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{down}")) && l.contains("not delivered"))
        .unwrap_or_else(|| panic!("no failure for the down sink in\n{stderr}"));
    assert!(
        refused.to_lowercase().contains("connect"),
        "the why is missing: {refused}"
    );
}

#[test]
fn a_webhook_urls_credentials_appear_nowhere() {
    const USER_SECRET: &str = "hunter2-in-userinfo";
    const QUERY_SECRET: &str = "abc-query-token-123";
    let (failing, _) = server(500, None);
    let authority = failing.trim_start_matches("http://");
    let closed = drctl_e2e::ClosedPort::new();
    let down = closed.port();
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nretries = 1\nretry-backoff = \"10ms\"\n\
         url = \"http://ops:{USER_SECRET}@{authority}/hook?token={QUERY_SECRET}&sig={QUERY_SECRET}\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nretries = 0\n\
         url = \"http://ops:{USER_SECRET}@127.0.0.1:{down}/hook?token={QUERY_SECRET}\"\n\
         [[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"true\"]\nenv = {{ PAGER_TOKEN = \"{QUERY_SECRET}\" }}\n"
    );
    let dir = setup(|_| sinks, SCENARIO);
    let config = dir.at("drctl.toml");
    let recording = dir.at("run.jsonl");
    let mut seen = String::new();
    for args in [&["config", "show"][..], &["config", "show", "--origin"]] {
        let out = dir.run(&Drctl::new(args).config(&config));
        assert!(out.success(), "{}", out.stderr);
        seen += &out.all();
    }
    assert_contains(&seen, "/hook?token=<redacted>");
    for extra in [&["-vv"][..], &["-vv", "--log-format", "json"]] {
        let watch = drctl_in(&dir).args(extra).virtual_to_end().json();
        // The same recording each round: replaced on purpose.
        let out = dir.run(&watch.record(&recording).args(&["--force"]));
        assert!(out.success(), "{}", out.stderr);
        seen += &out.all();
        seen += &std::fs::read_to_string(&recording).unwrap();
    }
    // The failures were logged, naming the sinks (redacted).
    assert_contains(&seen, "HTTP 500");
    assert!(
        seen.contains(&format!("127.0.0.1:{down}/hook?token=<redacted>")),
        "{seen}"
    );
    for secret in [USER_SECRET, QUERY_SECRET] {
        assert!(!seen.contains(secret), "{secret} leaked:\n{seen}");
    }
}

#[test]
fn a_sink_env_may_not_set_drctls_event_variables() {
    let dir = setup(
        |_| {
            "[[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"true\"]\n\
             env = { DRCTL_ALARM = \"forged\" }\n"
                .to_owned()
        },
        SCENARIO,
    );
    let out = dir.run(&Drctl::new(&["config", "check"]).config(dir.at("drctl.toml")));
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(2), "{stderr}");
    assert!(
        stderr.contains("alarms.sinks[0].env.DRCTL_ALARM")
            && stderr.contains("drctl's event variables"),
        "{stderr}"
    );
}

/// A switchover that is due but held (E1 hold-down here; E3 pause alike)
/// reaches the sinks: upstream learns a switch is pending (issue 15).
#[test]
fn a_suppressed_switchover_reaches_the_sinks_with_its_reason_and_why() {
    let dir = setup(
        |dir| {
            let env_out = dir.at("env");
            format!(
                "[policy]\nhold-down = \"60s\"\n\
                 [[alarms.sinks]]\ntype = \"exec\"\n\
                 command = [\"sh\", \"-c\", \"env > {env_out}.$DRCTL_EVENT.$DRCTL_STATE\"]\n"
            )
        },
        "e1-hold-down.toml",
    );
    let out = run_virtual(&dir);
    assert!(out.success(), "{}", out.stderr);
    assert_contains(&out.stdout, "\"switchover-suppressed\"");
    let env = std::fs::read_to_string(dir.at("env.switchover.suppressed"))
        .unwrap_or_else(|e| panic!("the sink did not hear the suppressed switchover: {e}"));
    for want in [
        "DRCTL_EVENT=switchover",
        "DRCTL_STATE=suppressed",
        "DRCTL_REASON=telephony-timeout",
        "DRCTL_CAUSE=hold-down",
    ] {
        assert!(env.lines().any(|l| l == want), "no {want} in\n{env}");
    }
}

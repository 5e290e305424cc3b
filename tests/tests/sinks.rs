//! Alarm sinks with least privilege (issue 12): an exec sink's command gets
//! no secret and nothing of drctl's environment beyond an allow-list, never
//! writes to drctl's stdout, reads /dev/null, and leaves no process behind
//! (its timeout and drctl's exit kill its whole process group). Webhooks
//! follow no redirect, say why a delivery failed, and a sink URL's
//! credentials appear nowhere.

use drctl_e2e::{command, free_port, records};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Pa55-sink-must-not-see";

/// Site1's statistic service goes off at 1 s (alarm raised) and comes back
/// at 2 s (alarm cleared); the agent stays on site1.
const SCENARIO: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
end = "5s"

[[events]]
at = "1s"
site = "site1"
set = { statistic = "off" }

[[events]]
at = "2s"
site = "site1"
set = { statistic = "on" }
"#;

/// Only the first alarm, on the real clock (for a watcher the test stops).
const SCENARIO_REAL: &str = r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
end = "10m"

[[events]]
at = "300ms"
site = "site1"
set = { statistic = "off" }
"#;

/// A tempdir with `drctl.toml` (`[agent]` with a password in the
/// environment, the control socket, then the sinks `sinks(dir)` gives) and
/// `ops.toml`.
fn setup(sinks: impl FnOnce(&Path) -> String, scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops.toml"), scenario).unwrap();
    std::fs::write(
        dir.path().join("drctl.toml"),
        format!(
            "[agent]\nusername = \"agent007\"\npassword-env = \"DRCTL_AGENT_PASSWORD\"\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"csp1:7000\"\napp-name = \"AIL_site1\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"csp2:7000\"\napp-name = \"AIL_site2\"\n\
             [control]\nsocket = \"{}\"\n{}",
            dir.path().join("ctl.sock").display(),
            sinks(dir.path())
        ),
    )
    .unwrap();
    dir
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// `drctl --config drctl.toml EXTRA... watch --backend mock --scenario ops.toml WATCH...`,
/// with the password and an unrelated variable in its environment.
fn drctl_in(dir: &Path, extra: &[&str], watch: &[&str]) -> std::process::Command {
    let config = path(dir, "drctl.toml");
    let scenario = path(dir, "ops.toml");
    let mut args = vec!["--config", &config];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["watch", "--backend", "mock", "--scenario", &scenario]);
    args.extend_from_slice(watch);
    let mut cmd = command(&args, dir);
    cmd.env("DRCTL_AGENT_PASSWORD", PASSWORD)
        .env("E2E_UNRELATED_SETTING", "drctl-only");
    cmd
}

/// A virtual-clock run of SCENARIO to its end, `--output json`.
fn run_virtual(dir: &Path, extra: &[&str]) -> Output {
    drctl_in(
        dir,
        extra,
        &["--clock", "virtual", "--until-end", "--output", "json"],
    )
    .output()
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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

/// Polls until `cond` or the deadline.
fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// Reads `child`'s stdout to EOF on a thread: the receiver gets it then.
fn stdout_eof(child: &mut Child) -> mpsc::Receiver<Vec<u8>> {
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "drctl did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
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
            let env_out = path(dir, "env");
            let stdin_out = path(dir, "stdin");
            format!(
                "[[alarms.sinks]]\ntype = \"exec\"\nenv = {{ PAGER_TEAM = \"contact-centre\" }}\n\
                 command = [\"sh\", \"-c\", \"env > {env_out}.$DRCTL_STATE; \
                 readlink /proc/self/fd/0 > {stdin_out}.$DRCTL_STATE; cat > {stdin_out}.read\"]\n"
            )
        },
        SCENARIO,
    );
    let env_out = path(dir.path(), "env");
    let stdin_out = path(dir.path(), "stdin");
    // drctl's own stdin is an open pipe with data: the sink must not see it.
    let mut child = drctl_in(
        dir.path(),
        &[],
        &["--clock", "virtual", "--until-end", "--output", "json"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = std::io::Write::write_all(&mut stdin, b"drctl's own stdin\n");
    // drctl's stdin stays open until drctl has exited.
    let out = child_output(child);
    drop(stdin);
    assert!(out.status.success(), "{}", text(&out.stderr));
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

/// Waits for `child` (its stdout and stderr piped) and collects its output.
fn child_output(mut child: Child) -> Output {
    let stdout = stdout_eof(&mut child);
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let status = wait_exit(&mut child, 60);
    let stdout = stdout
        .recv_timeout(Duration::from_secs(20))
        .expect("drctl's stdout reached EOF");
    Output {
        status,
        stdout,
        stderr: err.join().unwrap(),
    }
}

#[test]
fn an_exec_sinks_output_goes_to_the_log_never_to_drctls_stdout() {
    let sinks = "[[alarms.sinks]]\ntype = \"exec\"\n\
         command = [\"sh\", \"-c\", \"echo SINK-SAYS-$DRCTL_STATE; echo SINK-COMPLAINS >&2; \
         head -c 100000 /dev/zero | tr '\\\\0' x\"]\n";
    let dir = setup(|_| sinks.to_owned(), SCENARIO);
    let out = run_virtual(dir.path(), &[]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains("SINK-"),
        "sink output on stdout:\n{stdout}"
    );
    // Every stdout line is a decision record.
    assert!(records(&out.stdout)
        .iter()
        .any(|r| r.ends_with("alarm-raised statistic-service-down")));
    for want in ["SINK-SAYS-raised", "SINK-SAYS-cleared", "SINK-COMPLAINS"] {
        assert!(stderr.contains(want), "no {want} in the log:\n{stderr}");
    }
    // 100 000 bytes of output: the log gets a bounded part and says so.
    assert!(stderr.contains("more byte(s) not logged"), "{stderr}");
    assert!(stderr.len() < 60_000, "{} bytes of log", stderr.len());
}

#[test]
fn an_exec_sink_killed_at_its_timeout_leaves_no_grandchild() {
    let dir = setup(
        |dir| stubborn_sink(&path(dir, "gc.pid"), "1s"),
        SCENARIO_REAL,
    );
    let pidfile = dir.path().join("gc.pid");
    let mut child = drctl_in(dir.path(), &[], &["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = stdout_eof(&mut child);
    let mut reap = Reap(Vec::new());
    let mut pid = None;
    eventually("the sink's grandchild to start", 30, || {
        pid = read_pid(&pidfile);
        pid.is_some()
    });
    let pid = pid.unwrap_or_default();
    reap.0.push(pid);
    eventually(
        "the grandchild to be killed at the sink's timeout",
        20,
        || !alive(pid),
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "drctl exited: the grandchild went with it, not with the timeout"
    );
    // SAFETY: SIGINT to the drctl this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait_exit(&mut child, 30);
    assert_eq!(status.code(), Some(0));
    let _ = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("drctl's stdout reached EOF after it exited");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(err.contains("killed after 1s"), "{err}");
}

#[test]
fn drctls_exit_kills_a_running_sinks_whole_process_group() {
    let dir = setup(|dir| stubborn_sink(&path(dir, "gc.pid"), "1h"), SCENARIO);
    let pidfile = dir.path().join("gc.pid");
    let mut child = drctl_in(
        dir.path(),
        &[],
        &["--clock", "virtual", "--until-end", "--output", "json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = stdout_eof(&mut child);
    let mut reap = Reap(Vec::new());
    let mut pid = None;
    eventually("the sink's grandchild to start", 30, || {
        pid = read_pid(&pidfile);
        pid.is_some()
    });
    let pid = pid.unwrap_or_default();
    reap.0.push(pid);
    // drctl gives its sinks 5 s at shutdown, then stops them.
    let status = wait_exit(&mut child, 60);
    assert_eq!(status.code(), Some(0));
    let out = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("drctl's stdout reached EOF after it exited");
    assert!(!out.is_empty());
    eventually("the grandchild to be gone after drctl exited", 10, || {
        !alive(pid)
    });
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
    let dir = setup(|_| sinks, SCENARIO);
    let out = run_virtual(dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
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
    let down = free_port();
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"{failing}/hook\"\nretries = 1\nretry-backoff = \"10ms\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{down}/hook\"\nretries = 0\n"
    );
    let dir = setup(|_| sinks, SCENARIO);
    let out = run_virtual(dir.path(), &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(hits.load(Ordering::SeqCst), 4, "{stderr}");
    assert!(
        stderr.contains("not delivered: HTTP 500 Internal Server Error (after 2 attempt(s))"),
        "{stderr}"
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
    let down = free_port();
    let sinks = format!(
        "[[alarms.sinks]]\ntype = \"webhook\"\nretries = 1\nretry-backoff = \"10ms\"\n\
         url = \"http://ops:{USER_SECRET}@{authority}/hook?token={QUERY_SECRET}&sig={QUERY_SECRET}\"\n\
         [[alarms.sinks]]\ntype = \"webhook\"\nretries = 0\n\
         url = \"http://ops:{USER_SECRET}@127.0.0.1:{down}/hook?token={QUERY_SECRET}\"\n\
         [[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"true\"]\nenv = {{ PAGER_TOKEN = \"{QUERY_SECRET}\" }}\n"
    );
    let dir = setup(|_| sinks, SCENARIO);
    let config = path(dir.path(), "drctl.toml");
    let recording = path(dir.path(), "run.jsonl");
    let mut seen = String::new();
    for args in [
        vec!["--config", &config, "config", "show"],
        vec!["--config", &config, "config", "show", "--origin"],
    ] {
        let out = command(&args, dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        seen += &text(&out.stdout);
        seen += &text(&out.stderr);
    }
    assert!(seen.contains("/hook?token=<redacted>"), "{seen}");
    for extra in [vec!["-vv"], vec!["-vv", "--log-format", "json"]] {
        let out = drctl_in(
            dir.path(),
            &extra,
            &[
                "--clock",
                "virtual",
                "--until-end",
                "--output",
                "json",
                "--record",
                &recording,
            ],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        seen += &text(&out.stdout);
        seen += &text(&out.stderr);
        seen += &std::fs::read_to_string(&recording).unwrap();
    }
    // The failures were logged, naming the sinks (redacted).
    assert!(seen.contains("HTTP 500"), "{seen}");
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
    let config = path(dir.path(), "drctl.toml");
    let out = command(&["--config", &config, "config", "check"], dir.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("alarms.sinks[0].env.DRCTL_ALARM")
            && stderr.contains("drctl's event variables"),
        "{stderr}"
    );
}

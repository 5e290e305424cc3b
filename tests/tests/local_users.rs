//! What another local user (or a local client gone wrong) can do to a running
//! watcher, end to end (issue 12): plant a fake watcher where a client looks,
//! plant a symlink or a precious file where the watcher binds, saturate the
//! metrics endpoint, flood the control socket.
//!
//! Tests that need a second user run only as root (CI): they create
//! `drctl-test-other` and `drctl-test-victim` with `useradd --system` if
//! missing, and skip with a message when not root or useradd is unavailable.

use drctl_e2e::{
    control_section, drctl_bin, free_port, read_test_scenario, scrape, Drctl, Ran, TestDir, Watcher,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real-clock watcher that stays on site1, with `extra` config and, if
/// given, a soft RLIMIT_NOFILE of `nofile` (a systemd unit's default is 1024).
fn watcher(extra: &str, nofile: Option<u64>) -> Watcher {
    Watcher::start_with(&read_test_scenario("quiet.toml"), extra, |cmd| {
        if let Some(n) = nofile {
            limit_nofile(cmd, n);
        }
    })
}

/// Gives `cmd`'s process a soft RLIMIT_NOFILE of `n` (within the hard limit).
fn limit_nofile(cmd: &mut Command, n: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child yet.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = n.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Writes `dir`'s `drctl.toml`, a config naming `socket` as the control socket; its path.
fn socket_config(dir: &TestDir, socket: &Path) -> String {
    dir.file("drctl.toml", &control_section(socket))
}

/// `drctl watch` of the demo for 2 s with a config naming `socket` refuses
/// at once (a run still going after 30 s fails the test): exit 2, `why` in
/// its message.
fn assert_watch_refuses_socket(dir: &TestDir, socket: &Path, why: &str) {
    let out = Drctl::watch("plugins/mock/scenarios/demo.toml")
        .args(&["--for", "2s"])
        .config(socket_config(dir, socket))
        .run_within(Duration::from_secs(30));
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(2), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
}

/// Whether this process runs as root; else says why a test is skipped.
fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: it needs root (to create and act as a second local user)");
    }
    root
}

/// `name`'s uid and gid, creating it as a system user if missing.
fn ensure_user(name: &str) -> Option<(u32, u32)> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        let out = Ran::from(out);
        out.success()
            .then(|| out.stdout.trim().parse().ok())
            .flatten()
    };
    if id("-u").is_none() {
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipping: cannot create the local user {name} (useradd)");
            return None;
        }
    }
    Some((id("-u")?, id("-g")?))
}

/// The fake watcher, when this test binary is run as another user with
/// `DRCTL_TEST_FAKE_WATCHER=PATH`: binds PATH (in a directory it makes
/// 0777, socket 0777, as an attacker would), answers every request with a
/// success and logs what it was sent to `received.log` beside it.
/// Without the variable (a normal test run) it does nothing.
#[test]
fn fake_watcher_process() {
    let Some(path) = std::env::var_os("DRCTL_TEST_FAKE_WATCHER") else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let path = PathBuf::from(path);
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.join("received.log");
    std::fs::write(&log, "").unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let answer = "{\"v\":1,\"ok\":true,\"status\":{\"phase\":\"watching\",\"site\":\"site2\"},\
                  \"switched\":{\"from\":\"site1\",\"to\":\"site2\",\"phases\":[]}}\n";
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        let _ = BufReader::new(&stream).read_line(&mut line);
        if !line.is_empty() {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let _ = f.write_all(line.as_bytes());
            let _ = stream.write_all(answer.as_bytes());
        }
    }
}

/// Issue 12 item 3: a user without XDG_RUNTIME_DIR uses
/// `$TMPDIR/drctl-<uid>/`; another user made it first and serves a fake
/// watcher there. `status`, `pause` and `switch --yes` refuse (exit 2) naming
/// the socket and its owner, and send it nothing; so does root for a
/// configured `control.socket` served by that user.
#[test]
fn clients_refuse_a_watcher_planted_by_another_user() {
    if !root_or_skip("clients_refuse_a_watcher_planted_by_another_user") {
        return;
    }
    let (Some((other, other_gid)), Some((victim, victim_gid))) = (
        ensure_user("drctl-test-other"),
        ensure_user("drctl-test-victim"),
    ) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    // A private /tmp: world-writable and sticky like the real one.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let as_victim = |args: &[&str]| {
        let mut cmd = Drctl::new(args).command(runtime.path());
        cmd.env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", tmp.path())
            .uid(victim)
            .gid(victim_gid);
        Ran::from(cmd.output().unwrap())
    };
    let probe = as_victim(&["--version"]);
    if !probe.success() {
        eprintln!(
            "skipping: drctl-test-victim cannot run {} ({})",
            drctl_bin().display(),
            probe.stderr
        );
        return;
    }
    let path = tmp
        .path()
        .join(format!("drctl-{victim}"))
        .join("agent.sock");
    // Where the victim looks, as its own error says.
    let none = as_victim(&["status"]);
    assert!(
        none.stderr.contains(&path.display().to_string()),
        "{}",
        none.stderr
    );

    let mut fake = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fake_watcher_process", "--nocapture", "-q"])
        .env("DRCTL_TEST_FAKE_WATCHER", &path)
        .current_dir("/")
        .uid(other)
        .gid(other_gid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let fake = Kill(&mut fake);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::symlink_metadata(&path).is_err() {
        assert!(Instant::now() < deadline, "the fake watcher did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let owner = format!("uid {other} (drctl-test-other)");
    for args in [
        &["status"][..],
        &["pause"][..],
        &["switch", "--yes", "--to", "site2"][..],
    ] {
        let out = as_victim(args);
        let stderr = &out.stderr;
        assert_eq!(out.code, Some(2), "drctl {args:?}: {stderr}");
        assert!(
            stderr.contains("refusing the control socket")
                && stderr.contains(&path.display().to_string())
                && stderr.contains(&owner),
            "drctl {args:?}: {stderr}"
        );
    }
    // Root trusts only itself and the caller's own uid too.
    let dir = TestDir::new();
    let out = dir.run(&Drctl::new(&["status"]).config(socket_config(&dir, &path)));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&owner), "{}", out.stderr);

    let received = std::fs::read_to_string(path.with_file_name("received.log")).unwrap();
    assert_eq!(received, "", "a client sent the fake watcher a request");
    drop(fake);
}

/// Issue 12 item 3: a symlink where the socket's directory should be (one
/// another user could have planted in /tmp) is refused, exit 2, naming it;
/// nothing is created where it points.
#[test]
fn a_symlinked_socket_directory_is_refused() {
    let dir = TestDir::new();
    let real = dir.dir("real", 0o700);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let why = format!(
        "control socket directory {} is a symbolic link",
        link.display()
    );
    assert_watch_refuses_socket(&dir, &link.join("ctl.sock"), &why);
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

/// Issue 12 item 3: `control.socket` naming a file that is not a socket:
/// exit 2 naming it, and the file is left as it was (it used to be deleted
/// as a "stale socket").
#[test]
fn a_file_at_the_socket_path_is_never_deleted() {
    let dir = TestDir::new();
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, "keep me\n").unwrap();
    let why = format!(
        "control.socket {} exists and is not a socket",
        precious.display()
    );
    assert_watch_refuses_socket(&dir, &precious, &why);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
}

/// Raises this process's soft RLIMIT_NOFILE to at least `n` (within the hard limit).
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is valid for writes; getrlimit/setrlimit have no other preconditions.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

/// Issue 12 item 4: 1 100 idle connections to the metrics endpoint of a
/// watcher with 1 024 descriptors used to exhaust them: `status` timed out.
/// Now connections over `metrics.max-connections` are closed at once, the
/// control socket keeps answering, and metrics are served again once the
/// idlers are gone.
#[test]
fn idle_metrics_connections_cannot_exhaust_the_watchers_descriptors() {
    let port = free_port();
    let w = watcher(
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        Some(1024),
    );
    raise_nofile(4096);
    let idlers: Vec<_> = (0..1100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(idlers.len() >= 1024, "only {} connections", idlers.len());
    let out = w.run(&["status", "--output", "json"]);
    assert!(
        out.success(),
        "status with the metrics endpoint saturated: {}",
        out.stderr
    );
    drop(idlers);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if scrape(port).is_some_and(|m| m.contains("drctl_epoch")) {
            break;
        }
        assert!(Instant::now() < deadline, "metrics not served again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 12 item 4: a client that sends part of a request head and then
/// nothing (slowloris) is disconnected after `metrics.header-timeout`.
#[test]
fn a_slowloris_metrics_client_is_disconnected() {
    let port = free_port();
    let w = watcher(
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\nheader-timeout = \"1s\"\n"),
        None,
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Far longer than the timeout: a read that outlasts it means nobody closed the connection.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the slowloris connection was not closed: {e}"),
    }
    assert!(scrape(port).is_some_and(|m| m.contains("drctl_epoch")));
    drop(w);
}

/// Issue 12 item 5: 30 control connections each sending 100 MB without a
/// newline used to grow the watcher to 3 GB. Now a request line is cut at
/// 64 KiB with an error reply and the connection closed: the watcher's peak
/// RSS stays under 64 MB and `status` still answers.
#[test]
fn control_requests_without_a_newline_are_cut_off() {
    let w = watcher("", None);
    let socket = w.socket();
    let floods: Vec<_> = (0..30)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                    return 0;
                };
                s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0usize;
                while sent < 100_000_000 {
                    match s.write(&chunk) {
                        Ok(n) => sent += n,
                        // The watcher closed the connection (what should happen).
                        Err(_) => break,
                    }
                }
                sent
            })
        })
        .collect();
    for f in floods {
        f.join().unwrap();
    }
    let peak = w.peak_rss_kib();
    assert!(peak <= 64 * 1024, "the watcher's peak RSS is {peak} KiB");
    assert!(w.status().is_some(), "status after the floods");
}

/// The metrics endpoint's limits are config keys, checked by name.
#[test]
fn metrics_limits_are_checked_by_key() {
    for (set, why) in [
        (
            "metrics.max-connections=0",
            "metrics.max-connections: 0 is out of range: expected 1 to 10000",
        ),
        (
            "metrics.header-timeout=0s",
            "metrics.header-timeout: must be more than 0s",
        ),
    ] {
        let out = Drctl::new(&["config", "check"])
            .config("config/examples/drctl.toml")
            .set(set)
            .run();
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains(why), "{}", out.stderr);
    }
}

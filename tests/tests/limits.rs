//! Bounds on what drctl reads (issue 12): inputs beyond their documented
//! limits are refused by name (exit 2) with memory bounded, durations past
//! what u64 nanoseconds hold are refused, DR options keep sub-second
//! precision, and a password file that is not a regular file is refused
//! instead of blocking startup.

use drctl_e2e::{agent_config, Drctl, Ran, TestDir};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Writes `dir`'s `drctl.toml`: agent007 with `agent` (its password), two sites.
fn write_config(dir: &TestDir, agent: &str) -> String {
    dir.file("drctl.toml", &agent_config(agent))
}

#[test]
fn a_fifo_as_password_file_is_refused_at_once() {
    let dir = TestDir::new();
    let fifo = dir.path().join("password.fifo");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let cfg = write_config(&dir, &format!("password-file = \"{}\"", fifo.display()));
    let watch = Drctl::watch("plugins/mock/scenarios/demo.toml").virtual_to_end();
    let check = Drctl::new(&["config", "check"]);
    for (cmd, is_watch) in [(watch, true), (check, false)] {
        let cmd = cmd.config(&cfg);
        let out = cmd.run_within(Duration::from_secs(20));
        let all = out.all();
        let fifo = fifo.display().to_string();
        assert!(
            all.contains(&fifo) && all.contains("not a regular file"),
            "{cmd:?}: {all}"
        );
        if is_watch {
            assert_eq!(out.code, Some(2), "{cmd:?}: {all}");
        }
    }
}

#[test]
fn durations_past_a_hundred_years_are_refused_by_key() {
    let dir = TestDir::new();
    let scenario = dir.file(
        "s.toml",
        "[deployment]\npreferred-site = \"site1\"\nend = \"585y\"\n",
    );
    let cfg = write_config(&dir, "password = \"pw\"");
    let demo = "plugins/mock/scenarios/demo.toml";
    for (cmd, key) in [
        (Drctl::watch(&scenario).virtual_to_end(), "deployment.end"),
        (
            Drctl::watch(demo).virtual_clock().args(&["--for", "600y"]),
            "--for",
        ),
        (
            Drctl::new(&["config", "check"])
                .config(&cfg)
                .set("policy.failback-after=585y"),
            "policy.failback-after",
        ),
    ] {
        let out = cmd.run_within(Duration::from_secs(60));
        let all = out.all();
        assert_eq!(out.code, Some(2), "{cmd:?}: {all}");
        assert!(
            all.contains(key) && all.contains("longest duration drctl takes, 100y"),
            "{cmd:?}: {all}"
        );
    }
}

/// Runs drctl to its end (at most `within`) and returns its output and peak
/// RSS in KiB, from `wait4` on that very child (not the test's other children).
fn run_measured(cmd: &Drctl, within: Duration) -> (Ran, u64) {
    use std::io::Read;
    let runtime = TestDir::new();
    // Reaped by `wait4` below (which clippy does not see), for its rusage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .command(runtime.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drctl");
    // Drain both pipes on threads so that a chatty child never blocks.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let pid = child.id() as libc::pid_t;
    let deadline = std::time::Instant::now() + within;
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: plain out-parameters; `pid` is our own unreaped child.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        if got == pid {
            break (status, rusage);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    let out = Ran::from(std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    });
    // Linux reports ru_maxrss in KiB.
    (out, rusage.ru_maxrss as u64)
}

/// Grows `path` by `extra` bytes of zeros without writing them (a sparse
/// file): the reader sees one long line without a newline.
fn append_zeros(path: &Path, extra: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open to extend");
    let len = file.metadata().expect("stat").len();
    file.set_len(len + extra).expect("extend");
}

const GIB: u64 = 1 << 30;
/// What each run below may peak at, whatever its input's size.
const MAX_RSS_KIB: u64 = 64 * 1024;

#[test]
fn inputs_past_their_limits_are_refused_by_name_with_memory_bounded() {
    let dir = TestDir::new();
    let at = |name: &str| dir.at(name);
    // A real recording, then a 1 GiB line after its last record.
    let rec = at("long-line.jsonl");
    let out = Drctl::watch("plugins/mock/scenarios/demo.toml")
        .virtual_to_end()
        .record(&rec)
        .run_within(Duration::from_secs(60));
    assert!(out.success(), "{}", out.all());
    let lines = std::fs::read_to_string(&rec).unwrap().lines().count();
    append_zeros(Path::new(&rec), GIB);
    // A 1 GiB header line, a 200 MB scenario, a 200 MB config file.
    let header = at("long-header.jsonl");
    std::fs::write(&header, "{\"format\":\"drctl-recording\",").unwrap();
    append_zeros(Path::new(&header), GIB);
    let scenario = at("big.toml");
    std::fs::write(&scenario, "[deployment]\npreferred-site = \"site1\"\n").unwrap();
    append_zeros(Path::new(&scenario), 200 << 20);
    let config = at("big-drctl.toml");
    std::fs::write(&config, "[agent]\n").unwrap();
    append_zeros(Path::new(&config), 200 << 20);

    let record_line = format!(
        "{rec}:{}: line longer than 1048576 bytes, the limit for a recording record line",
        lines + 1
    );
    let header_line = format!(
        "{header}:1: line longer than 1048576 bytes, the limit for a recording header line"
    );
    let scenario_size = format!(
        "{scenario}: {} bytes is larger than a scenario may be (67108864 bytes, 64 MiB)",
        std::fs::metadata(&scenario).unwrap().len()
    );
    let config_size = "larger than a config file may be (4194304 bytes, 4 MiB)".to_owned();
    let cases: [(Drctl, &[&str]); 6] = [
        (Drctl::new(&["replay", &rec]), &[&record_line]),
        (Drctl::new(&["replay", &rec, "--check"]), &[&record_line]),
        (Drctl::new(&["replay", &header]), &[&header_line]),
        (Drctl::new(&["replay", &header, "--check"]), &[&header_line]),
        (Drctl::watch(&scenario).virtual_to_end(), &[&scenario_size]),
        (
            Drctl::new(&["config", "check"]).config(&config),
            &[&config_size, &config],
        ),
    ];
    for (cmd, wants) in cases {
        let (out, peak_kib) = run_measured(&cmd, Duration::from_secs(60));
        let all = out.all();
        assert_eq!(out.code, Some(2), "{cmd:?}: {all}");
        for want in wants {
            assert!(all.contains(want), "{cmd:?}: expected {want:?} in {all}");
        }
        assert!(
            peak_kib <= MAX_RSS_KIB,
            "{cmd:?}: peak RSS {peak_kib} KiB, more than {MAX_RSS_KIB} KiB"
        );
    }
}

#[test]
fn sub_second_dr_options_switch_at_their_exact_time() {
    let dir = TestDir::new();
    // Telephony OFF at 5 s on the agent's site: D1 switches `site-timeout` later.
    for (timeout, at_ns) in [("1500ms", 6_500_000_000_u64), ("100ms", 5_100_000_000)] {
        let scenario = dir.file(
            &format!("d1-{timeout}.toml"),
            &format!(
                "[deployment]\npreferred-site = \"site1\"\nfirst-site = \"site1\"\n\
                 site-timeout = \"{timeout}\"\nend = \"20s\"\n\
                 [[events]]\nat = \"5s\"\nsite = \"site1\"\nset = {{ telephony = \"off\" }}\n"
            ),
        );
        let out = Drctl::watch(&scenario)
            .virtual_to_end()
            .json()
            .run_within(Duration::from_secs(60));
        assert!(out.success(), "{timeout}: {}", out.all());
        let records = out.records();
        let started = format!("{at_ns} switchover-started telephony-timeout site1 site2");
        assert!(
            records.contains(&started),
            "site-timeout {timeout}: expected {started:?} in {records:#?}"
        );
    }
}

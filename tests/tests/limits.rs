//! Bounds on what drctl reads (issue 12): inputs beyond their documented
//! limits are refused by name (exit 2) with memory bounded, durations past
//! what u64 nanoseconds hold are refused, DR options keep sub-second
//! precision, and a password file that is not a regular file is refused
//! instead of blocking startup.

use drctl_e2e::{command, wait_within};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs drctl and waits at most `within`: a hang is a failure, not a stuck test.
fn run_within(args: &[&str], within: Duration) -> Output {
    let runtime = tempfile::tempdir().expect("a runtime dir");
    let mut child = command(args, runtime.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drctl");
    if wait_within(&mut child, within).is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().expect("drctl output");
        panic!(
            "drctl {args:?} still running after {within:?}: {}",
            text(&out)
        );
    }
    child.wait_with_output().expect("drctl output")
}

fn write_config(dir: &Path, agent: &str) -> String {
    let path = dir.join("drctl.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nusername = \"agent007\"\n{agent}\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"csp1:7000\"\napp-name = \"AIL_site1\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"csp2:7000\"\napp-name = \"AIL_site2\"\n"
        ),
    )
    .expect("write the config");
    path.to_string_lossy().into_owned()
}

#[test]
fn a_fifo_as_password_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("password.fifo");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let cfg = write_config(
        dir.path(),
        &format!("password-file = \"{}\"", fifo.display()),
    );
    for args in [
        vec![
            "--config",
            &cfg,
            "watch",
            "--backend",
            "mock",
            "--scenario",
            "plugins/mock/scenarios/demo.toml",
            "--clock",
            "virtual",
            "--until-end",
        ],
        vec!["--config", &cfg, "config", "check"],
    ] {
        let out = run_within(&args, Duration::from_secs(20));
        let all = text(&out);
        let fifo = fifo.display().to_string();
        assert!(
            all.contains(&fifo) && all.contains("not a regular file"),
            "{args:?}: {all}"
        );
        if args.contains(&"watch") {
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        }
    }
}

#[test]
fn durations_past_a_hundred_years_are_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[deployment]\npreferred-site = \"site1\"\nend = \"585y\"\n",
    )
    .unwrap();
    let scenario = scenario.to_string_lossy().into_owned();
    let cfg = write_config(dir.path(), "password = \"pw\"");
    let demo = "plugins/mock/scenarios/demo.toml";
    let watch = |extra: &[&str], scenario: &str| {
        let mut args = vec!["watch", "--backend", "mock", "--scenario", scenario];
        args.extend(["--clock", "virtual"]);
        args.extend(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    for (args, key) in [
        (watch(&["--until-end"], &scenario), "deployment.end"),
        (watch(&["--for", "600y"], demo), "--for"),
        (
            [
                "--config",
                &cfg,
                "--set",
                "policy.failback-after=585y",
                "config",
                "check",
            ]
            .map(str::to_owned)
            .to_vec(),
            "policy.failback-after",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_within(&args, Duration::from_secs(60));
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains(key) && all.contains("longest duration drctl takes, 100y"),
            "{args:?}: {all}"
        );
    }
}

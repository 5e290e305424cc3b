//! `drctl config check` refuses what `drctl watch` would refuse before
//! connecting anywhere, and `config show --origin` explains a bad config
//! (issue 16, item 6).

use drctl_e2e::{assert_contains, command};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A config in `dir` for agent ann on the mock (a scenario of its own),
/// its password in `dir/pw` (0600), its socket in `dir/run/`, plus `extra`.
fn config(dir: &Path, extra: &str) -> String {
    std::fs::write(dir.join("s.toml"), drctl_e2e::terminal::QUIET).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("drctl.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nusername = \"ann\"\npassword-file = \"{pw}\"\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"a:7000\"\napp-name = \"A\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"b:7000\"\napp-name = \"B\"\n\
             [backend.mock]\nscenario = \"{scenario}\"\n\
             [control]\nsocket = \"{socket}\"\n{extra}",
            pw = pw.display(),
            scenario = dir.join("s.toml").display(),
            socket = dir.join("run").join("ann.sock").display(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn check(dir: &Path, cfg: &str, more: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["--config", cfg];
    args.extend_from_slice(more);
    args.extend(["config", "check"]);
    let out = command(&args, dir).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts `config check` of `cfg` with `more` exits 2 saying each of `says`.
fn refused(dir: &Path, cfg: &str, more: &[&str], says: &[&str]) {
    let (code, _, err) = check(dir, cfg, more);
    assert_eq!(code, Some(2), "{err}");
    for s in says {
        assert!(err.contains(s), "{err:?} lacks {s:?}");
    }
}

#[test]
fn config_check_refuses_what_watch_refuses_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let (code, out, err) = check(d, &cfg, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("ok: "), "{out}");

    // The password file readable by others, as watch refuses it.
    std::fs::set_permissions(d.join("pw"), std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        d,
        &cfg,
        &[],
        &["agent.password-file", "readable by group or others"],
    );
    // A missing password file.
    std::fs::remove_file(d.join("pw")).unwrap();
    refused(d, &cfg, &[], &["agent.password-file", "cannot open"]);

    // An exec sink whose command does not exist, or is not executable.
    let cfg = config(
        d,
        "[[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"drctl-no-such-pager\"]\n",
    );
    refused(
        d,
        &cfg,
        &[],
        &["alarms.sinks[0].command: command drctl-no-such-pager: not found"],
    );
    let script = d.join("page.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sink = format!(
        "[[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"{}\"]\n",
        script.display()
    );
    let cfg = config(d, &sink);
    refused(d, &cfg, &[], &["not executable"]);
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(check(d, &cfg, &[]).0, Some(0));

    // A plugin that is not there.
    refused(
        d,
        &cfg,
        &["--set", "backend.name=nope"],
        &["plugin `nope` not found"],
    );

    // A socket directory others can write.
    std::fs::create_dir(d.join("run")).unwrap();
    std::fs::set_permissions(d.join("run"), std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        d,
        &cfg,
        &[],
        &["control socket directory", "writable by you only"],
    );
    std::fs::set_permissions(d.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(check(d, &cfg, &[]).0, Some(0));
}

#[test]
fn config_show_origin_marks_the_bad_key_and_shows_derived_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "[policy]\nsite-timeout = \"3x\"\n");
    let out = command(&["--config", &cfg, "config", "show", "--origin"], d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("# layers, lowest first") && text.contains(&format!("{cfg} (read)")),
        "{text}"
    );
    let bad = text
        .lines()
        .find(|l| l.starts_with("policy.site-timeout"))
        .unwrap_or_default();
    assert!(
        bad.contains(&format!("{cfg}:")) && bad.contains("<-- error: invalid value \"3x\""),
        "{text}"
    );
    assert_contains(&text, "agent.username = \"ann\"");

    let cfg = config(d, "");
    let out = command(&["--config", &cfg, "config", "show", "--origin"], d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let socket = d.join("run").join("ann.sock");
    assert!(
        text.contains(&format!(
            "control socket = \"{}\"   # control.socket",
            socket.display()
        )),
        "{text}"
    );
    assert_contains(
        &text,
        "site-timeout = \"30s\"   # the mock scenario's deployment.site-timeout",
    );
}

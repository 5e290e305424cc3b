//! `drctl config show|check` and the global options, run as a user would.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// A valid configuration for two sites, the one `drctl-config`'s tests use.
const BASE: &str = include_str!("../../config/tests/two-sites.toml");

/// `drctl` in an empty working directory, with no inherited environment but
/// the mock's scenario (`config check` refuses a mock without one, as
/// `watch` does).
fn drctl(dir: &TempDir) -> Command {
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mock/scenarios/demo.toml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drctl"));
    cmd.current_dir(dir.path())
        .env_clear()
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .env("DRCTL_BACKEND__MOCK__SCENARIO", scenario);
    cmd
}

/// Writes `body` to `name` in `dir`.
fn write(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, body).expect("write config file");
    path
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("drctl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// A working directory with `body` as its `drctl.toml`.
fn dir_with_config(body: &str) -> TempDir {
    let dir = TempDir::new().expect("tempdir");
    write(&dir, "drctl.toml", body);
    dir
}

/// Stdout and stderr of `cmd`, which must exit 0 (the message shows stderr).
fn ok(cmd: &mut Command) -> (String, String) {
    let (out, stdout, stderr) = run(cmd);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    (stdout, stderr)
}

/// Stdout and stderr of `drctl ARGS` (exit 0) where `drctl.toml` is
/// [`BASE`], with the environment variable `env` (`(name, value)`).
fn ok_with_base(env: (&str, &str), args: &[&str]) -> (String, String) {
    let dir = dir_with_config(BASE);
    ok(drctl(&dir).env(env.0, env.1).args(args))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/drctl.toml")
}

/// Runs `config check` on BASE + `extra` and expects exit 2 naming the file and `key`.
fn check_rejects(extra: &str, key: &str) {
    let dir = TempDir::new().expect("tempdir");
    let file = write(&dir, "bad.toml", &format!("{BASE}{extra}"));
    let (out, stdout, stderr) = run(drctl(&dir)
        .arg("--config")
        .arg(&file)
        .args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stdout.is_empty(), "stdout: {stdout}");
    assert!(
        stderr.contains(&file.display().to_string()),
        "no file in: {stderr}"
    );
    assert!(
        stderr.contains(&format!(": {key}: ")),
        "no key {key} in: {stderr}"
    );
}

/// `drctl ARGS` in `dir` is refused as bad input: exit 2, `why` on stderr.
fn assert_bad_input(dir: &TempDir, args: &[&str], why: &str) {
    let (out, _, stderr) = run(drctl(dir).args(args));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(why), "{stderr}");
}

#[test]
fn version() {
    let dir = TempDir::new().expect("tempdir");
    let (out, stdout, _) = run(drctl(&dir).arg("--version"));
    assert_eq!(out.status.code(), Some(0));
    // The release, the git commit and the plugin ABI.
    let version = format!("drctl {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout.starts_with(&version) && stdout.trim().ends_with(", plugin ABI 1.2)"),
        "{stdout}"
    );
}

#[test]
fn check_passes_on_the_example() {
    let dir = TempDir::new().expect("tempdir");
    // Its password source (a systemd credential) must hold one, as watch needs.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).expect("mkdir");
    let pw = creds.join("password");
    std::fs::write(&pw, "x\n").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let (stdout, _) = ok(drctl(&dir)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .arg("--config")
        .arg(example())
        .args(["config", "check"]));
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("drctl.toml"), "{stdout}");
}

#[test]
fn check_reads_dot_drctl_toml() {
    let (stdout, stderr) = ok_with_base(("DRCTL_AGENT_PASSWORD", "x"), &["config", "check"]);
    assert_eq!(stdout, "ok: drctl.toml\n");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn check_rejects_a_wrong_duration() {
    check_rejects("\n[policy]\nsite-timeout = \"3x\"\n", "policy.site-timeout");
}

#[test]
fn check_rejects_an_unknown_first_site() {
    check_rejects(
        "\n[startup]\nfirst-site = \"site3\"\n",
        "startup.first-site",
    );
}

#[test]
fn check_rejects_a_missing_password_source() {
    let dir = TempDir::new().expect("tempdir");
    let body = BASE.replace("password-env = \"DRCTL_AGENT_PASSWORD\"\n", "");
    let file = write(&dir, "nopw.toml", &body);
    let (out, _, stderr) = run(drctl(&dir)
        .arg("--config")
        .arg(&file)
        .args(["config", "check"]));
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("agent.password-env"), "{stderr}");
}

#[test]
fn check_rejects_an_unknown_key() {
    check_rejects("\n[policy]\nsite-timout = \"30s\"\n", "policy.site-timout");
}

#[test]
fn missing_config_file_is_bad_input() {
    let dir = TempDir::new().expect("tempdir");
    assert_bad_input(
        &dir,
        &["--config", "nope.toml", "config", "show"],
        "nope.toml: config file not found",
    );
}

#[test]
fn bad_usage_is_bad_input() {
    let dir = TempDir::new().expect("tempdir");
    let (out, _, _) = run(drctl(&dir).args(["config", "show", "--set", "no-equals"]));
    assert_eq!(out.status.code(), Some(2));
    let (out, _, _) = run(drctl(&dir).args(["config", "frobnicate"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn show_never_prints_the_password() {
    const PASSWORD: &str = "Sup3r-s3cret-pw";
    let dir = TempDir::new().expect("tempdir");
    let body = BASE.replace("password-env = \"DRCTL_AGENT_PASSWORD\"\n", "");
    write(&dir, "drctl.toml", &body);
    for args in [
        &["config", "show"][..],
        &["config", "show", "--origin"],
        &["config", "check"],
    ] {
        let (out, stdout, stderr) = run(drctl(&dir)
            .env("DRCTL_AGENT__PASSWORD", PASSWORD)
            .args(args)
            .arg("-vv"));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "{args:?} leaked it"
        );
    }
    let (_, stdout, _) = run(drctl(&dir)
        .env("DRCTL_AGENT__PASSWORD", PASSWORD)
        .args(["config", "show"]));
    assert!(stdout.contains("password = \"<redacted>\""), "{stdout}");
}

#[test]
fn origin_names_the_env_var() {
    let env = ("DRCTL_POLICY__SITE_TIMEOUT", "10s");
    let (stdout, _) = ok_with_base(env, &["config", "show", "--origin"]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("policy.site-timeout = "))
        .unwrap_or_else(|| panic!("no policy.site-timeout in {stdout}"));
    assert!(line.contains("\"10s\""), "{line}");
    assert!(line.ends_with("# env DRCTL_POLICY__SITE_TIMEOUT"), "{line}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sites[1].cs-proxy = "))
        .unwrap_or_else(|| panic!("no sites[1].cs-proxy in {stdout}"));
    assert!(line.ends_with("# drctl.toml:14"), "{line}");
}

#[test]
fn set_overrides_file_and_env() {
    let dir = dir_with_config(&format!("{BASE}\n[policy]\nsite-timeout = \"30s\"\n"));
    let (stdout, _) = ok(drctl(&dir).env("DRCTL_POLICY__SITE_TIMEOUT", "20s").args([
        "config",
        "show",
        "--origin",
        "--set",
        "policy.site-timeout=10s",
    ]));
    assert!(stdout.contains("policy.site-timeout = \"10s\""), "{stdout}");
    assert!(
        !stdout.contains("site-timeout = \"30s\"") && !stdout.contains("\"20s\""),
        "{stdout}"
    );

    let (_, stdout, _) =
        run(drctl(&dir).args(["config", "show", "--set", "policy.site-timeout=10s"]));
    assert!(stdout.contains("site-timeout = \"10s\""), "{stdout}");

    assert_bad_input(
        &dir,
        &["config", "check", "--set", "policy.site-timeout=3x"],
        "--set: policy.site-timeout: invalid value \"3x\"",
    );
}

#[test]
fn json_logs_go_to_stderr_only() {
    let dir = TempDir::new().expect("tempdir");
    let (stdout, _) = ok(drctl(&dir).arg("--config").arg(example()).args([
        "--log-format",
        "json",
        "-vv",
        "config",
        "show",
    ]));
    assert!(stdout.starts_with("# effective configuration"), "{stdout}");
}

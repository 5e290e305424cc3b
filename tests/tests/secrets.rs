//! Least privilege (issue 8): a known password never appears in logs (text
//! or JSON, at trace level), recordings, `config show`, decision output, or
//! the messages of a plugin panic; the control socket's directory is 0700.
//!
//! The plugin panic is the chaos fixture's `panic-handle`, whose message
//! `Debug`-prints the connect command as the plugin received it, password
//! field included: the password stays out of it only because the host's
//! `Password` type prints `<redacted>`.

use drctl_e2e::{agent_config, assert_contains, control_section, wait_until, Drctl, TestDir};
use std::path::Path;
use std::time::Duration;

const PASSWORD: &str = "Pa55-known-to-the-test";

/// Writes `dir`'s `drctl.toml`: agent007 with the password from `source`,
/// two sites, the chaos backend panicking in `handle`, the control socket in
/// `dir/run/`; its path.
fn config(dir: &TestDir, source: &str) -> String {
    let agent = agent_config(source);
    let control = control_section(&dir.path().join("run").join("ctl.sock"));
    dir.file(
        "drctl.toml",
        &format!(
            "{agent}[backend]\nname = \"chaos\"\n\
             [backend.chaos]\nfault = {{ mode = \"panic-handle\", at = \"0s\" }}\n{control}"
        ),
    )
}

#[test]
fn a_known_password_appears_nowhere() {
    let dir = TestDir::new();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let sources = [
        format!("password = \"{PASSWORD}\""),
        format!("password-file = \"{}\"", file.display()),
    ];
    for source in &sources {
        let cfg = config(&dir, source);
        let rec = dir.at("run.jsonl");
        let watch = Drctl::new(&["-vv", "watch", "--for", "20s"]).virtual_clock();
        let mut seen = String::new();
        for cmd in [
            Drctl::new(&["config", "show"]),
            Drctl::new(&["config", "show", "--origin"]),
            Drctl::new(&["config", "check"]),
            // The same recording file each time: overwritten on purpose.
            watch.clone().record(&rec).args(&["--force"]),
            watch.clone().args(&["--log-format", "json"]).json(),
        ] {
            let cmd = cmd.config(&cfg);
            let out = cmd.run();
            assert!(out.success(), "{cmd:?}: {}", out.all());
            seen.push_str(&out.all());
        }
        seen.push_str(&std::fs::read_to_string(&rec).unwrap());
        assert!(!seen.contains(PASSWORD), "{source}: the password leaked");
        // The runs did what they should: a panic whose message holds the
        // connect command with its password field, trace logs, a connect
        // with a password.
        assert_contains(
            &seen,
            "panicked in handle: chaos: panic in handle with Command",
        );
        assert_contains(&seen, "password: <redacted>");
        assert!(seen.contains("TRACE") || seen.contains("\"level\":\"TRACE\""));
        assert!(seen.contains("\"password\":\"<redacted>\""));
    }
}

#[test]
fn the_control_socket_lives_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let cfg = config(&dir, &format!("password = \"{PASSWORD}\""));
    let watch = Drctl::new(&["watch", "--for", "30s"])
        .config(&cfg)
        .spawn(dir.path());
    let socket = dir.path().join("run").join("ctl.sock");
    wait_until("the control socket", Duration::from_secs(20), || {
        socket.exists()
    });
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("run")), 0o700);
    assert_eq!(mode(&socket), 0o600);
    watch.signal(libc::SIGTERM);
    assert_eq!(watch.finish().code, Some(0));
}

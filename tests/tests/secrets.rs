//! Least privilege (issue 8): a known password never appears in logs (text
//! or JSON, at trace level), recordings, `config show`, decision output, or
//! the messages of a plugin panic; the control socket's directory is 0700.
//!
//! The plugin panic is the chaos fixture's `panic-handle`, whose message
//! `Debug`-prints the connect command as the plugin received it, password
//! field included: the password stays out of it only because the host's
//! `Password` type prints `<redacted>`.

use drctl_e2e::drctl;
use std::path::Path;

const PASSWORD: &str = "Pa55-known-to-the-test";

fn config(dir: &Path, source: &str) -> String {
    let path = dir.join("drctl.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nusername = \"agent007\"\n{source}\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"csp1:7000\"\napp-name = \"AIL_site1\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"csp2:7000\"\napp-name = \"AIL_site2\"\n\
             [backend]\nname = \"chaos\"\n\
             [backend.chaos]\nfault = {{ mode = \"panic-handle\", at = \"0s\" }}\n\
             [control]\nsocket = \"{}\"\n",
            dir.join("run").join("ctl.sock").display()
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn all_output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_known_password_appears_nowhere() {
    let dir = tempfile::tempdir().unwrap();
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
        let cfg = config(dir.path(), source);
        let rec = dir.path().join("run.jsonl");
        let rec_arg = rec.to_string_lossy().into_owned();
        let mut seen = String::new();
        for args in [
            vec!["--config", &cfg, "config", "show"],
            vec!["--config", &cfg, "config", "show", "--origin"],
            vec!["--config", &cfg, "config", "check"],
            vec![
                "--config", &cfg, "-vv", "watch", "--clock", "virtual", "--for", "20s", "--record",
                &rec_arg, "--force",
            ],
            vec![
                "--config",
                &cfg,
                "-vv",
                "--log-format",
                "json",
                "watch",
                "--clock",
                "virtual",
                "--for",
                "20s",
                "--output",
                "json",
            ],
        ] {
            let out = drctl(&args);
            assert!(out.status.success(), "{args:?}: {}", all_output(&out));
            seen.push_str(&all_output(&out));
        }
        seen.push_str(&std::fs::read_to_string(&rec).unwrap());
        assert!(!seen.contains(PASSWORD), "{source}: the password leaked");
        // The runs did what they should: a panic whose message holds the
        // connect command with its password field, trace logs, a connect
        // with a password.
        assert!(
            seen.contains("panicked in handle: chaos: panic in handle with Command"),
            "{seen}"
        );
        assert!(seen.contains("password: <redacted>"), "{seen}");
        assert!(seen.contains("TRACE") || seen.contains("\"level\":\"TRACE\""));
        assert!(seen.contains("\"password\":\"<redacted>\""));
    }
}

#[test]
fn the_control_socket_lives_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &format!("password = \"{PASSWORD}\""));
    let mut child = drctl_e2e::command(&["--config", &cfg, "watch", "--for", "30s"], dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("run").join("ctl.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "no control socket");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("run")), 0o700);
    assert_eq!(mode(&socket), 0o600);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

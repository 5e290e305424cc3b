//! Fault injection (SPEC §9, issue 8): the `chaos` fixture plugin misbehaves
//! on command; the host survives each fault, logs and records it, raises the
//! `backend-disconnected` alarm where the agent had a session, replaces the
//! instance and carries on.

use drctl_e2e::{drctl, drctl_bin, records};
use std::path::{Path, PathBuf};
use std::process::Output;

const PASSWORD: &str = "hunter2-chaos-known";

fn config(dir: &Path, backend: &str, fault: &str) -> String {
    let path = dir.join("drctl.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nusername = \"agent007\"\npassword = \"{PASSWORD}\"\n\
             [[sites]]\nname = \"site1\"\ncs-proxy = \"csp1:7000\"\napp-name = \"AIL_site1\"\n\
             [[sites]]\nname = \"site2\"\ncs-proxy = \"csp2:7000\"\napp-name = \"AIL_site2\"\n\
             [backend]\nname = \"{backend}\"\ncommand-timeout = \"2s\"\n\
             [backend.chaos]\nfault = {fault}\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// `drctl -v watch` on the chaos backend for 60 s of virtual time, recorded.
fn watch(fault: &str) -> (Output, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "chaos", fault);
    let rec = dir.path().join("run.jsonl");
    let out = drctl(&[
        "--config",
        &cfg,
        "-v",
        "watch",
        "--clock",
        "virtual",
        "--for",
        "60s",
        "--output",
        "json",
        "--record",
        &rec.to_string_lossy(),
    ]);
    let recording = std::fs::read_to_string(&rec).unwrap_or_default();
    (out, recording, dir)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decisions as `"<t ns> <type> <fields>"`.
fn decisions(out: &Output) -> Vec<String> {
    records(&out.stdout)
}

/// The run survived the fault: exit 0, the fault logged once, no password anywhere.
fn survived(out: &Output, recording: &str, fault_log: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(fault_log), "{fault_log:?} not in\n{stderr}");
    for place in [&stderr, &text(&out.stdout), &recording.to_owned()] {
        assert!(!place.contains(PASSWORD), "the password leaked");
    }
    assert!(recording.lines().count() > 3, "the recording was written");
}

/// The alarm and the reconnect that follow a fault at 5 s (connects take 100 ms).
fn reconnected_after_fault_at_5s(out: &Output) {
    let got = decisions(out);
    assert_eq!(
        got,
        [
            "100000000 startup-connected site1",
            "5000000000 alarm-raised backend-disconnected",
            "5100000000 startup-connected site1",
            "5100000000 alarm-cleared backend-disconnected",
        ],
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_panic_in_poll_output_replaces_the_instance() {
    let (out, rec, dir) = watch(r#"{ mode = "panic-poll", at = "5s" }"#);
    survived(
        &out,
        &rec,
        "panicked in poll_output: chaos: panic in poll_output",
    );
    reconnected_after_fault_at_5s(&out);
    // The recording holds what the engine saw (the disconnection included)
    // and replays to the same decisions.
    assert!(rec.contains("\"event\":{\"type\":\"disconnected\"}"));
    let path = dir.path().join("run.jsonl");
    let check = drctl(&["replay", &path.to_string_lossy(), "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
}

#[test]
fn a_panic_in_poll_timeout_replaces_the_instance() {
    let (out, rec, _dir) = watch(r#"{ mode = "panic-timeout", at = "0s" }"#);
    survived(
        &out,
        &rec,
        "panic in poll_timeout: chaos: panic in poll_timeout",
    );
    let got = decisions(&out);
    assert_eq!(
        got[1], "100000000 alarm-raised backend-disconnected",
        "{got:?}"
    );
    assert_eq!(
        got[3], "200000000 alarm-cleared backend-disconnected",
        "{got:?}"
    );
}

#[test]
fn a_panic_in_handle_fails_that_command_and_the_next_instance_serves() {
    let (out, rec, _dir) = watch(r#"{ mode = "panic-handle", at = "0s" }"#);
    survived(&out, &rec, "panicked in handle: chaos: panic in handle");
    let got = decisions(&out);
    // The first connect (site1) failed with the instance; S1 went on to site2.
    assert_eq!(got[0], "100000000 startup-connected site2", "{got:?}");
    assert!(got
        .iter()
        .any(|d| d.contains("switchover-completed startup-relocate site2 site1")));
}

#[test]
fn a_command_never_answered_times_out_and_the_backend_is_replaced() {
    let (out, rec, _dir) = watch(r#"{ mode = "silent", at = "0s" }"#);
    survived(&out, &rec, "command 1 of agent-1 got no answer within 2s");
    let got = decisions(&out);
    assert_eq!(got[0], "2100000000 startup-connected site2", "{got:?}");
}

#[test]
fn a_flood_is_cut_off() {
    let (out, rec, _dir) = watch(r#"{ mode = "flood", at = "5s" }"#);
    survived(
        &out,
        &rec,
        "more than 100000 outputs at one instant (a flood)",
    );
    reconnected_after_fault_at_5s(&out);
}

#[test]
fn an_oversized_output_is_refused() {
    let (out, rec, _dir) = watch(r#"{ mode = "oversized", at = "5s" }"#);
    survived(&out, &rec, "an output of 4194");
    reconnected_after_fault_at_5s(&out);
    assert!(rec.len() < 1 << 20, "the oversized output was not recorded");
}

#[test]
fn a_backend_that_keeps_asking_to_be_polled_is_replaced() {
    let (out, rec, _dir) = watch(r#"{ mode = "spin", at = "5s" }"#);
    survived(
        &out,
        &rec,
        "it keeps asking to be polled without producing output",
    );
    reconnected_after_fault_at_5s(&out);
}

#[test]
fn events_of_another_epoch_and_unknown_results_change_nothing() {
    for mode in ["future-epoch", "stale-epoch", "bad-result"] {
        let (out, rec, _dir) = watch(&format!("{{ mode = \"{mode}\", at = \"5s\" }}"));
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out.stderr));
        assert_eq!(
            decisions(&out),
            ["100000000 startup-connected site1"],
            "{mode}"
        );
        // What came is in the recording all the same.
        let line = rec.lines().find(|l| l.starts_with("{\"t\":5000000000,"));
        assert!(line.is_some(), "{mode}: nothing recorded at 5 s");
    }
}

#[test]
fn malformed_json_from_a_plugin_is_a_fault_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let lib: PathBuf = drctl_bin().with_file_name(format!(
        "{}drctl_fixture_badjson{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let cfg = config(
        dir.path(),
        &lib.to_string_lossy(),
        "{ mode = \"none\", at = \"0s\" }",
    );
    // Not DETERMINISTIC: a few seconds of the real clock (connect, fault, backoff, again).
    let out = drctl(&["--config", &cfg, "watch", "--for", "3s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("malformed output"), "{stderr}");
    assert!(!stderr.contains(PASSWORD));
}

/// The metrics endpoint counts backend faults (issue 6's `drctl_backend_faults_total`).
#[test]
fn backend_faults_are_counted_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = drctl_e2e::free_port();
    let cfg = config(dir.path(), "chaos", r#"{ mode = "panic-poll", at = "1s" }"#);
    let mut text_cfg = std::fs::read_to_string(&cfg).unwrap();
    text_cfg.push_str(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n[control]\nsocket = \"{}\"\n",
        dir.path().join("ctl.sock").display()
    ));
    std::fs::write(&cfg, text_cfg).unwrap();
    let mut child = drctl_e2e::command(&["--config", &cfg, "watch", "--for", "60s"], dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scrape = || drctl_e2e::scrape(port);
    let want = "drctl_backend_faults_total{agent=\"agent007\"} 1";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let metrics = loop {
        if let Some(m) = scrape().filter(|m| m.contains(want)) {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {want} in {:?}",
            scrape()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        metrics.contains("drctl_alarm_active{agent=\"agent007\",alarm=\"backend-disconnected\"}")
    );
}

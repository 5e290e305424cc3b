//! `drctl pause --for D --reason TEXT` (maintenance with an owner and an
//! end): `status` says who paused, why and when it ends; it resumes by itself.

use drctl_e2e::{assert_contains, read_test_scenario, Watcher};

#[test]
fn a_pause_with_an_end_names_its_owner_and_reason_and_resumes_by_itself() {
    let w = Watcher::start(&read_test_scenario("operator-surface.toml"), "");
    let out = w.run(&[
        "pause",
        "--for",
        "2s",
        "--reason",
        "SIP Server upgrade CHG-1234",
    ]);
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stderr, "held for 2s");
    let s = w.status().unwrap();
    assert_eq!(s["paused"], true, "{s}");
    // SO_PEERCRED: the client's own uid (and name, when it has one).
    let me = unsafe { libc::geteuid() };
    let by = s["pause"]["by"].as_str().unwrap();
    assert!(by.starts_with(&format!("uid {me}")), "{s}");
    assert_eq!(s["pause"]["reason"], "SIP Server upgrade CHG-1234");
    assert!(
        s["pause"]["until"].is_u64() && s["pause"]["in"].is_string(),
        "{s}"
    );
    let text = w.run(&["status"]).stdout;
    assert!(
        text.contains(&format!("paused     yes, by {by}, resumes by itself in "))
            && text.contains(": SIP Server upgrade CHG-1234"),
        "{text}"
    );
    // It ends by itself, and says so.
    let s = w.wait_for("the pause to end", |s| s["paused"] == false);
    assert!(s.get("pause").is_none(), "{s}");
    assert!(w.stderr().contains("the pause ends (pause --for)"));

    // Without --for it holds until resume, and resume clears who and why.
    assert!(w.run(&["pause", "--reason", "drill"]).success());
    let s = w.status().unwrap();
    assert_eq!(s["pause"]["reason"], "drill");
    assert!(s["pause"].get("in").is_none(), "{s}");
    assert!(w.run(&["resume"]).success());
    let s = w.status().unwrap();
    assert_eq!(s["paused"], false);
    assert!(s.get("pause").is_none(), "{s}");
    let (_, _) = w.stop();
}

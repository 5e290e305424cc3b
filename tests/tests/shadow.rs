//! `drctl watch --shadow`: a candidate config runs beside the live policy on
//! the same inputs, never acts, and its divergences are reported.

use drctl_e2e::{assert_contains, Drctl, Ran};

/// `drctl watch --output json` of the demo on the virtual clock to its end.
fn demo(extra: &[&str]) -> Ran {
    Drctl::watch(Drctl::DEMO)
        .virtual_to_end()
        .json()
        .args(extra)
        .run()
}

#[test]
fn a_shadow_never_acts_and_reports_where_it_would_decide_otherwise() {
    let plain = demo(&[]);
    let shadowed = demo(&["--shadow", "policy.site-timeout=10s"]).expect_code(0);
    // The live decisions are exactly those of a watcher without a shadow.
    assert_eq!(plain.stdout, shadowed.stdout);
    let log = &shadowed.stderr;
    // With a 10 s site-timeout the demo's 10 s outage at +40 s is already a
    // switchover: the candidate's D1 alarm names +50 s (the live one +70 s)
    // and it decides the switchover at +50 s, the live policy not.
    assert!(
        log.contains(
            "shadow divergence #1: only the live policy decided +40.000s  alarm-raised           \
             telephony-service-down (switchover at +70.000s)"
        ),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains(
            "only the shadow policy decided +50.000s  \
                 switchover-started     telephony-timeout site1 -> site2"
        )),
        "{log}"
    );
    assert_contains(log, "diverged from the live session");

    // A candidate equal to the live config agrees throughout.
    let log = demo(&["--shadow", "policy.hold-down=0s"]).stderr;
    assert_contains(&log, "the candidate config decided as the live one");
    assert!(!log.contains("shadow divergence"), "{log}");
}

#[test]
fn a_bad_shadow_key_is_bad_input() {
    let out = demo(&["--shadow", "policy.site-timeout=soon"]).expect_code(2);
    assert!(out.stderr.contains("site-timeout"));
}

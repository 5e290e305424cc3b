//! Switchover gates: a gated switchover waits for the host's verdict
//! (`Action::CheckGates` -> `Event::GateVerdict`), starts on a pass, and is
//! refused (`gate-refused`) on a veto; reasons not gated never wait.
mod common;
use common::*;
use drctl_policy::*;

fn gated(reasons: &[Reason]) -> Harness {
    let mut cfg = Harness::default_config();
    cfg.gated = reasons.to_vec();
    Harness::watching(cfg)
}

/// [`gated`], site1's telephony OFF from 10 s: D1's site timeout is due
/// at 40 s, where it returns.
fn telephony_timeout_at_40s(reasons: &[Reason]) -> Harness {
    let mut h = gated(reasons);
    h.run_until(secs(10));
    h.telephony(ServiceState::Off);
    h.run_until(secs(40));
    h
}

fn veto(gate: &str) -> Event {
    Event::GateVerdict(GateVerdict {
        refused: Some(GateRefusal {
            gate: gate.into(),
            output: "change freeze".into(),
        }),
        ..GateVerdict::default()
    })
}

fn pass() -> Event {
    Event::GateVerdict(GateVerdict::default())
}

#[test]
fn an_operator_switchover_waits_for_its_gates_and_a_veto_refuses_it() {
    let mut h = gated(&[Reason::Operator]);
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(h.gate_checks(), tl(&[(secs(0), "operator site1->site2")]));
    assert!(h.commands().is_empty(), "{:?}", h.commands());
    // Asked again while waiting: coalesced, not asked twice.
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(h.gate_checks().len(), 1);
    h.feed(veto("freeze"));
    assert!(h.commands().is_empty(), "{:?}", h.commands());
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(0), "switchover-suppressed operator InProgress"),
            (secs(0), "gate-refused operator freeze"),
        ])
    );
    // A later request asks again; a pass starts it.
    h.clear_log();
    h.feed(Event::OperatorSwitch { to: None });
    h.feed(pass());
    assert_eq!(h.switchovers(), switched(secs(0), "operator site1->site2"));
}

#[test]
fn skipped_gates_are_recorded_before_the_switchover_starts() {
    let mut h = gated(&[Reason::Operator]);
    h.feed(Event::OperatorSwitch { to: None });
    h.feed(Event::GateVerdict(GateVerdict {
        refused: None,
        skipped: vec!["freeze".into()],
        why: Some("P1 incident INC-42".into()),
    }));
    let t = h.timeline();
    assert_eq!(t[0], (secs(0), "gate-skipped operator freeze".to_owned()));
    assert_eq!(
        t[1],
        (
            secs(0),
            "switchover-started operator site1->site2".to_owned()
        )
    );
    match &h.decisions()[0].1 {
        Decision::GateSkipped { why, .. } => assert_eq!(why, "P1 incident INC-42"),
        d => panic!("{d:?}"),
    }
}

#[test]
fn an_automatic_switchover_listed_waits_for_its_gates_too() {
    let mut h = telephony_timeout_at_40s(&[Reason::TelephonyTimeout]);
    assert_eq!(
        h.gate_checks(),
        tl(&[(secs(40), "telephony-timeout site1->site2")])
    );
    assert!(h.switchovers().is_empty(), "{:?}", h.switchovers());
    h.run_until(secs(45));
    h.feed(pass());
    assert_eq!(
        h.started_switchovers(),
        tl(&[(
            secs(45),
            "switchover-started telephony-timeout site1->site2"
        )])
    );
}

#[test]
fn a_vetoed_automatic_switchover_is_dropped_until_its_trigger_fires_again() {
    let mut h = telephony_timeout_at_40s(&[Reason::TelephonyTimeout]);
    h.feed(veto("dba-says-no"));
    h.run_until(secs(300));
    assert!(h.switchovers().is_empty(), "{:?}", h.switchovers());
    assert_eq!(h.gate_checks().len(), 1);
    assert!(h.timeline().contains(&(
        secs(40),
        "gate-refused telephony-timeout dba-says-no".to_owned()
    )));
    // The condition comes back: ON, then OFF again, asks again 30 s later.
    h.telephony(ServiceState::On);
    h.telephony(ServiceState::Off);
    h.run_until(secs(330));
    assert_eq!(h.gate_checks().len(), 2);
}

#[test]
fn reasons_not_gated_never_wait_and_a_stale_verdict_is_ignored() {
    let mut h = telephony_timeout_at_40s(&[Reason::Operator]);
    assert!(h.gate_checks().is_empty());
    assert_eq!(
        h.started_switchovers(),
        tl(&[(
            secs(40),
            "switchover-started telephony-timeout site1->site2"
        )])
    );
    h.feed(pass());
    assert_eq!(h.started_switchovers().len(), 1);
}

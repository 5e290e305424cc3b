//! Invariants over random interleavings of events and time (proptest).
mod common;
use common::*;
use drctl_policy::*;
use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Service(Service, ServiceStatus),
    Logout(&'static str),
    BackInService,
    OutOfService,
    Stale(BackendEvent),
    Operator(Option<&'static str>),
    Pause(bool),
    Reachable(usize, bool),
    Disconnected,
    Latency(u64),
}

fn service() -> impl Strategy<Value = Service> {
    prop_oneof![
        Just(Service::Telephony),
        Just(Service::Configuration),
        Just(Service::Statistic)
    ]
}

fn status() -> impl Strategy<Value = ServiceStatus> {
    prop_oneof![Just(ServiceStatus::On), Just(ServiceStatus::Off)]
}

fn backend_event() -> impl Strategy<Value = BackendEvent> {
    prop_oneof![
        (service(), status())
            .prop_map(|(service, status)| BackendEvent::ServiceStatus { service, status }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(GRACEFUL_SHUTDOWN_LOGOUT.into())
        }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(DR_FORCE_LOGOUT.into())
        }),
        Just(BackendEvent::Disconnected),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..120_000).prop_map(Op::Advance),
        6 => (service(), status()).prop_map(|(s, st)| Op::Service(s, st)),
        2 => prop_oneof![
            Just(""),
            Just("supervisor_forced_logout"),
            Just(DR_FORCE_LOGOUT),
            Just(GRACEFUL_SHUTDOWN_LOGOUT)
        ]
        .prop_map(Op::Logout),
        2 => Just(Op::BackInService),
        1 => Just(Op::OutOfService),
        2 => backend_event().prop_map(Op::Stale),
        1 => prop_oneof![Just(None), Just(Some("site1")), Just(Some("site2"))].prop_map(Op::Operator),
        1 => any::<bool>().prop_map(Op::Pause),
        2 => (0usize..2, any::<bool>()).prop_map(|(s, r)| Op::Reachable(s, r)),
        1 => Just(Op::Disconnected),
        1 => (0u64..3_000).prop_map(Op::Latency),
    ]
}

fn config() -> impl Strategy<Value = EngineConfig> {
    (
        prop_oneof![Just(None), Just(Some(0u64)), Just(Some(5)), Just(Some(30))],
        prop_oneof![Just(None), Just(Some(0u64)), Just(Some(10))],
        prop_oneof![Just(0u64), Just(60)],
        prop_oneof![Just(0u64), Just(20)],
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(st, sip, hold, jitter, failback, seed, first2)| {
            let mut cfg = EngineConfig::two_sites("agent");
            cfg.site_timeout = st.map(Duration::from_secs);
            cfg.site_sip_register_timeout = sip.map(Duration::from_secs);
            cfg.hold_down = Duration::from_secs(hold);
            cfg.switchover_jitter = Duration::from_secs(jitter);
            if failback {
                cfg.failback = Failback::Auto {
                    after: Duration::from_secs(90),
                };
            }
            cfg.seed = seed;
            if first2 {
                cfg.first_site = "site2".into();
            }
            cfg
        })
}

/// Runs `ops`, checking per-step invariants; returns the harness for log checks.
fn run(cfg: EngineConfig, ops: &[Op]) -> Result<Harness, TestCaseError> {
    let mut h = Harness::new(cfg);
    h.start();
    for op in ops {
        // Fire what is due first, so the checks below see only the op's effect.
        h.settle();
        let before = h.log.len();
        let connected = h.epoch.is_some() && h.engine.view().epoch.is_some();
        match op.clone() {
            Op::Advance(ms) => {
                let t = h.now + Duration::from_millis(ms);
                h.run_until(t);
            }
            Op::Service(service, status) if connected => {
                h.service(service, status);
                if service != Service::Telephony {
                    let caused_switch = h.log[before..].iter().any(|(_, a)| {
                        matches!(a, Action::Decision(Decision::SwitchoverStarted { .. }))
                    });
                    prop_assert!(!caused_switch, "{service:?} {status:?} caused a switchover");
                }
            }
            Op::Logout(reason) if connected => h.logout(reason),
            Op::BackInService if connected => h.back_in_service(),
            Op::OutOfService if connected => {
                h.backend(BackendEvent::DnOutOfService { dn: "7001".into() })
            }
            Op::Disconnected if connected => h.backend(BackendEvent::Disconnected),
            Op::Stale(event) => {
                let current = h.engine.view().epoch;
                let stale = current.map_or(0, |e| e.saturating_sub(1));
                for epoch in [stale, current.map_or(1, |e| e + 1000)] {
                    h.tick();
                    let view = h.engine.view();
                    let timeout = h.engine.poll_timeout();
                    h.engine.handle_event(
                        h.now,
                        Event::Backend {
                            epoch,
                            event: event.clone(),
                        },
                    );
                    prop_assert_eq!(
                        h.engine.poll_action(),
                        None,
                        "stale epoch {} caused an action",
                        epoch
                    );
                    prop_assert_eq!(h.engine.poll_timeout(), timeout);
                    prop_assert_eq!(h.engine.view(), view);
                }
            }
            Op::Operator(to) => h.feed(Event::OperatorSwitch {
                to: to.map(Into::into),
            }),
            Op::Pause(true) => h.feed(Event::Pause),
            Op::Pause(false) => h.feed(Event::Resume),
            Op::Reachable(site, r) => h.reachable[site] = r,
            Op::Latency(ms) => h.connect_latency = Duration::from_millis(ms),
            _ => {}
        }
        // Never a deadline in the past once everything due has run (no tight
        // loop: the harness also panics on 1000 steps at one instant).
        h.settle();
        if let Some(t) = h.engine.poll_timeout() {
            prop_assert!(t > h.now, "deadline {} not after now {}", t, h.now);
        }
        let view = h.engine.view();
        prop_assert!(view.switchover.is_none() || view.phase != PhaseKind::Watching);
    }
    Ok(h)
}

/// Every `switchover-started` is followed by `completed` or `failed` before
/// the next starts, and no two are in flight at once.
fn check_switchover_sequence(h: &Harness) -> Result<(), TestCaseError> {
    let mut in_flight = false;
    let mut answered = true;
    for (t, d) in h.decisions() {
        match d {
            Decision::SwitchoverStarted { .. } => {
                prop_assert!(
                    !in_flight,
                    "second switchover started at {t} while one is in flight"
                );
                prop_assert!(
                    answered,
                    "switchover at {t} started before the previous was answered"
                );
                in_flight = true;
                answered = false;
            }
            Decision::SwitchoverCompleted { .. } => {
                prop_assert!(in_flight, "completed at {t} without a start");
                in_flight = false;
                answered = true;
            }
            Decision::SwitchoverFailed { .. } => {
                prop_assert!(in_flight, "failed at {t} without a start");
                answered = true;
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_switchover_in_flight_and_each_is_answered(
        cfg in config(), ops in prop::collection::vec(op(), 1..80)
    ) {
        let h = run(cfg, &ops)?;
        check_switchover_sequence(&h)?;
    }

    #[test]
    fn stale_epoch_events_never_cause_an_action(
        cfg in config(),
        ops in prop::collection::vec(prop_oneof![op(), backend_event().prop_map(Op::Stale)], 1..80)
    ) {
        run(cfg, &ops)?;
    }

    #[test]
    fn configuration_and_statistic_events_never_switch(
        cfg in config(),
        ops in prop::collection::vec(
            prop_oneof![
                3 => (prop_oneof![Just(Service::Configuration), Just(Service::Statistic)], status())
                    .prop_map(|(s, st)| Op::Service(s, st)),
                1 => (0u64..120_000).prop_map(Op::Advance),
            ],
            1..80
        )
    ) {
        let h = run(cfg, &ops)?;
        let detected: Vec<_> = h
            .switchovers()
            .into_iter()
            .filter(|(_, d)| !d.contains("startup-relocate"))
            .collect();
        prop_assert!(detected.is_empty(), "{:?}", detected);
    }

    #[test]
    fn same_inputs_same_decisions(cfg in config(), ops in prop::collection::vec(op(), 1..60)) {
        let a = run(cfg.clone(), &ops)?;
        let b = run(cfg, &ops)?;
        prop_assert_eq!(a.log, b.log);
    }
}

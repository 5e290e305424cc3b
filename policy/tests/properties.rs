//! Invariants over random interleavings of events and time (proptest).
mod common;
use common::*;
use drctl_policy::*;
use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Service(Service, ServiceState),
    Logout(&'static str),
    BackInService,
    OutOfService,
    Stale(BackendEvent),
    Operator(Option<&'static str>),
    Pause(bool),
    Reachable(usize, bool),
    Disconnected,
    Latency(u64),
    /// Make a command (by name) fail, or answer again.
    Fail(&'static str, bool),
}

fn service() -> impl Strategy<Value = Service> {
    prop_oneof![
        Just(Service::Telephony),
        Just(Service::Configuration),
        Just(Service::Statistic)
    ]
}

fn status() -> impl Strategy<Value = ServiceState> {
    prop_oneof![Just(ServiceState::On), Just(ServiceState::Off)]
}

fn backend_event() -> impl Strategy<Value = BackendEvent> {
    prop_oneof![
        (service(), status())
            .prop_map(|(service, status)| BackendEvent::ServiceStatus { service, status }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(GRACEFUL_SHUTDOWN_LOGOUT.into()),
            extensions: Default::default(),
        }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(DR_FORCE_LOGOUT.into()),
            extensions: Default::default(),
        }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: None,
            extensions: Default::default(),
        }),
        Just(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some("supervisor_forced_logout".into()),
            extensions: Default::default(),
        }),
        Just(BackendEvent::DnBackInService { dn: "7001".into() }),
        Just(BackendEvent::DnOutOfService { dn: "7001".into() }),
        Just(BackendEvent::Disconnected),
    ]
}

/// Commands the simulated backend can be told to refuse.
fn failing_command() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("connect"),
        Just("read_person_sites"),
        Just("read_application"),
        Just("subscribe"),
        Just("kill_factory"),
        Just("relaunch_endpoint"),
        Just("probe"),
        Just("login"),
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
        1 => (failing_command(), any::<bool>()).prop_map(|(c, f)| Op::Fail(c, f)),
    ]
}

fn backoff() -> impl Strategy<Value = BackoffConfig> {
    (
        prop_oneof![Just(100u64), Just(1_000), Just(3_000)],
        prop_oneof![Just(1.0f64), Just(1.5), Just(2.0), Just(3.0)],
        prop_oneof![Just(1u64), Just(10), Just(60)],
        prop_oneof![Just(0.0f64), Just(0.2), Just(0.5), Just(0.9)],
    )
        .prop_map(|(initial, factor, max_factor, jitter)| BackoffConfig {
            initial: Duration::from_millis(initial),
            factor,
            max: Duration::from_millis(initial * max_factor),
            jitter,
        })
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
        (
            backoff(),
            prop_oneof![
                Just(None),
                Just(Some(5u64)),
                Just(Some(60)),
                Just(Some(600))
            ],
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(|(st, sip, hold, jitter, failback, seed, first2, more)| {
            let (backoff, startup_timeout, embedded_endpoint, login) = more;
            let mut cfg = EngineConfig::two_sites("agent");
            // W5: a login after each subscribe, which `Fail("login")` refuses.
            cfg.login = login.then(|| LoginConfig {
                dn: "7001".into(),
                ..LoginConfig::default()
            });
            cfg.backoff = backoff;
            cfg.startup_timeout = startup_timeout.map(Duration::from_secs);
            cfg.embedded_endpoint = embedded_endpoint;
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
    // Like a real backend, each subscribe reports the site's telephony (an
    // E2 failback that never hears telephony ON returns, by design).
    h.report_telephony = true;
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
            Op::Fail(command, true) => h.failing.push(command),
            Op::Fail(command, false) => h.failing.retain(|c| *c != command),
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

/// No two switchovers in flight at once; each `failed` or `completed` answers
/// the one in flight. Returns whether one is still in flight at the end.
fn check_switchover_sequence(h: &Harness) -> Result<bool, TestCaseError> {
    let mut in_flight = false;
    for (t, d) in h.decisions() {
        match d {
            Decision::SwitchoverStarted { .. } => {
                prop_assert!(
                    !in_flight,
                    "second switchover started at {t} while one is in flight"
                );
                in_flight = true;
            }
            Decision::SwitchoverCompleted { .. } => {
                prop_assert!(in_flight, "completed at {t} without a start");
                in_flight = false;
            }
            Decision::SwitchoverFailed { .. } => {
                prop_assert!(in_flight, "failed at {t} without a start");
            }
            _ => {}
        }
    }
    Ok(in_flight)
}

/// Liveness: once both sites answer again, within an hour the agent is
/// connected and watching, with nothing in flight (unless startup gave up
/// before it ever got there).
fn check_recovers(h: &mut Harness) -> Result<(), TestCaseError> {
    h.reachable = [true, true];
    h.failing.clear();
    let t = h.now + Duration::from_secs(3600);
    h.run_until(t);
    h.tick();
    let in_flight = check_switchover_sequence(h)?;
    let view = h.engine.view();
    if view.phase == PhaseKind::GaveUp {
        prop_assert!(h.engine.config().startup_timeout.is_some());
        let failed = h
            .decisions()
            .iter()
            .any(|(_, d)| matches!(d, Decision::StartupFailed { .. }));
        prop_assert!(failed, "gave up without startup-failed");
        return Ok(());
    }
    prop_assert!(!in_flight, "a switchover is still in flight after an hour");
    prop_assert!(view.switchover.is_none(), "{:?}", view.switchover);
    prop_assert_eq!(view.phase, PhaseKind::Watching);
    prop_assert!(view.epoch.is_some(), "not connected");
    prop_assert_eq!(view.epoch, h.epoch, "not on the backend's connection");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_switchover_in_flight_and_each_is_answered(
        cfg in config(), ops in prop::collection::vec(op(), 1..80)
    ) {
        let mut h = run(cfg, &ops)?;
        check_switchover_sequence(&h)?;
        check_recovers(&mut h)?;
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

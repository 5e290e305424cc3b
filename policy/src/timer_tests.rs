//! Timer tests that need a whole engine: timers due at the same nanosecond
//! fire in `TimerKind::VALUES` order, then one evaluation (each tie that
//! order decides is pinned here); and D1/D4 timers armed when S3's options
//! arrive after the event they time.

use crate::{
    Action, CommandKind, Decision, Engine, EngineConfig, Event, Failback, Reason, Reply, Timestamp,
};
use std::time::Duration;

/// Drains the engine, answering each command at `t`: connects fail when
/// `refuse`, otherwise open a new epoch; the preferred application is
/// site1's with a 30 s `site-timeout`. Returns the decisions and the commands.
fn answer(
    engine: &mut Engine,
    t: Timestamp,
    refuse: bool,
    epoch: &mut u64,
) -> (Vec<Decision>, Vec<CommandKind>) {
    let (mut decisions, mut commands) = (Vec::new(), Vec::new());
    while let Some(action) = engine.poll_action() {
        let cmd = match action {
            Action::Decision(d) => {
                decisions.push(d);
                continue;
            }
            Action::Command(cmd) => cmd,
            // No gates here.
            Action::CheckGates { .. } => continue,
        };
        commands.push(cmd.kind.clone());
        let result = match cmd.kind {
            CommandKind::Connect { .. } if refuse => Err("refused".into()),
            CommandKind::Connect { .. } => {
                *epoch += 1;
                Ok(Reply::Connected { epoch: *epoch })
            }
            CommandKind::ReadPersonSites { .. } => Ok(person_sites()),
            CommandKind::ReadApplication { app_name } => Ok(application(app_name, None)),
            CommandKind::Probe { .. } => Ok(Reply::Probed {
                healthy: true,
                detail: String::new(),
            }),
            _ => Ok(Reply::Done),
        };
        let id = cmd.id;
        engine.handle_event(t, Event::CommandResult { id, result });
    }
    (decisions, commands)
}

/// The Person's answer: site1's Application preferred, site2's secondary.
fn person_sites() -> Reply {
    Reply::PersonSites {
        preferred_app: "AIL_site1".into(),
        secondary_app: "AIL_site2".into(),
    }
}

/// An Application's answer: site1's CS Proxy, a 30 s `site-timeout` and
/// `register_timeout` as `site-sip-register-timeout`.
fn application(app_name: String, register_timeout: Option<Duration>) -> Reply {
    Reply::Application {
        app_name,
        cs_proxy: "csproxy1:7000".into(),
        site_timeout: Some(Duration::from_secs(30)),
        site_sip_register_timeout: register_timeout,
        options: Default::default(),
    }
}

/// The switchovers started, suppressed or failed among `decisions`.
fn switch_decisions(decisions: &[Decision]) -> Vec<&Decision> {
    decisions
        .iter()
        .filter(|d| {
            matches!(
                d,
                Decision::SwitchoverStarted { .. }
                    | Decision::SwitchoverSuppressed { .. }
                    | Decision::SwitchoverFailed { .. }
            )
        })
        .collect()
}

fn telephony_off(engine: &mut Engine, t: Timestamp, epoch: u64) {
    use crate::{BackendEvent, Service, ServiceState};
    let event = BackendEvent::ServiceStatus {
        service: Service::Telephony,
        status: ServiceState::Off,
    };
    engine.handle_event(t, Event::Backend { epoch, event });
}

/// An engine with `cfg`, started at 0 and switched to site2 by an operator
/// at 0 (which completes at 0), every command answered; and its epoch.
fn on_site2_by_an_operator_at_0(cfg: EngineConfig) -> (Engine, u64) {
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut epoch = 0;
    engine.handle_event(Timestamp::ZERO, Event::Start);
    answer(&mut engine, Timestamp::ZERO, false, &mut epoch);
    engine.handle_event(Timestamp::ZERO, Event::OperatorSwitch { to: None });
    answer(&mut engine, Timestamp::ZERO, false, &mut epoch);
    (engine, epoch)
}

/// S1: the startup timeout and the backoff end at the same instant: startup
/// gives up, and no connect goes out.
#[test]
fn s1_startup_timeout_fires_before_a_backoff_due_at_the_same_instant() {
    let mut cfg = EngineConfig::two_sites("agent");
    cfg.backoff.jitter = 0.0;
    cfg.startup_timeout = Some(Duration::from_secs(1));
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut epoch = 0;
    engine.handle_event(Timestamp::ZERO, Event::Start);
    answer(&mut engine, Timestamp::ZERO, true, &mut epoch);
    // Both sites refused at 0: the backoff (1 s, no jitter) ends with the timeout.
    assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(1)));
    engine.handle_timeout(Timestamp::from_secs(1));
    let (decisions, commands) = answer(&mut engine, Timestamp::from_secs(1), true, &mut epoch);
    assert!(commands.is_empty(), "{commands:?}");
    assert!(
        matches!(decisions[..], [Decision::StartupFailed { .. }]),
        "{decisions:?}"
    );
}

/// E1 + D1: hold-down ends at the instant the site timer fires: both fire,
/// then one evaluation, so the switchover starts (not suppressed).
#[test]
fn e1_hold_down_ending_with_the_d1_deadline_does_not_hold_it() {
    let mut cfg = EngineConfig::two_sites("agent");
    cfg.hold_down = Duration::from_secs(30);
    // An operator switch at 0 completes at 0: hold-down until 30 s.
    let (mut engine, mut epoch) = on_site2_by_an_operator_at_0(cfg);
    // Telephony OFF at 0 on site2: the site timer fires at 30 s too.
    telephony_off(&mut engine, Timestamp::ZERO, epoch);
    engine.handle_timeout(Timestamp::from_secs(30));
    let (decisions, _) = answer(&mut engine, Timestamp::from_secs(30), false, &mut epoch);
    assert!(
        matches!(
            switch_decisions(&decisions).first(),
            Some(Decision::SwitchoverStarted {
                reason: Reason::TelephonyTimeout,
                ..
            })
        ),
        "{decisions:?}"
    );
}

/// E2 + D1: a failback lands on a site whose telephony is OFF from the
/// landing; its check (`FailbackVerify`) and the site timer end at the same
/// instant: one switchover back, at once although hold-down runs.
#[test]
fn e2_failback_check_due_with_the_d1_deadline_returns_once_and_at_once() {
    let mut cfg = EngineConfig::two_sites("agent");
    cfg.failback = Failback::Auto {
        after: Duration::from_secs(30),
    };
    cfg.hold_down = Duration::from_secs(300);
    // On site2 from 0 (operator switch); the probe at 0 answers healthy.
    let (mut engine, mut epoch) = on_site2_by_an_operator_at_0(cfg);
    // Probes every 10 s answer healthy: the failback is due from 30 s on,
    // held by the operator switch's hold-down until 300 s.
    let mut t = Timestamp::ZERO;
    let mut failback_at = None;
    while failback_at.is_none() && t < Timestamp::from_secs(400) {
        let next = engine.poll_timeout().expect("probing");
        t = next;
        engine.handle_timeout(t);
        let (decisions, _) = answer(&mut engine, t, false, &mut epoch);
        if decisions.iter().any(|d| {
            matches!(
                d,
                Decision::SwitchoverCompleted {
                    reason: Reason::Failback,
                    ..
                }
            )
        }) {
            failback_at = Some(t);
        }
    }
    let landed = failback_at.expect("a failback");
    // The failback's site reports telephony OFF at the landing: the site
    // timer and the failback's check both end at landing + 30 s.
    telephony_off(&mut engine, landed, epoch);
    let deadline = landed + Duration::from_secs(30);
    assert_eq!(engine.poll_timeout(), Some(deadline));
    engine.handle_timeout(deadline);
    let (decisions, _) = answer(&mut engine, deadline, false, &mut epoch);
    let switches = switch_decisions(&decisions);
    assert!(
        matches!(
            switches[..],
            [Decision::SwitchoverStarted {
                reason: Reason::TelephonyTimeout,
                ..
            }]
        ),
        "{decisions:?}"
    );
}

/// Connects at 0 and answers the Person read at 5 s with the application's
/// DR options, after `early` has been fed at 1 s on the new connection.
fn options_after(early: crate::BackendEvent) -> Engine {
    let mut engine = Engine::new(EngineConfig::two_sites("agent")).expect("valid config");
    engine.handle_event(Timestamp::ZERO, Event::Start);
    let mut at = Timestamp::ZERO;
    let mut early = Some(early);
    while let Some(action) = engine.poll_action() {
        let Action::Command(cmd) = action else {
            continue;
        };
        let result = match cmd.kind {
            CommandKind::Connect { .. } => Ok(Reply::Connected { epoch: 1 }),
            CommandKind::ReadPersonSites { .. } => {
                // The event comes while the options are still being read.
                if let Some(event) = early.take() {
                    engine
                        .handle_event(Timestamp::from_secs(1), Event::Backend { epoch: 1, event });
                }
                at = Timestamp::from_secs(5);
                Ok(person_sites())
            }
            CommandKind::ReadApplication { app_name } => {
                Ok(application(app_name, Some(Duration::from_secs(60))))
            }
            _ => Ok(Reply::Done),
        };
        let id = cmd.id;
        engine.handle_event(at, Event::CommandResult { id, result });
    }
    engine
}

/// D1: telephony OFF before S3 has read `site-timeout`: the site timer is
/// armed when the option arrives, from the OFF, not from the read.
#[test]
fn d1_off_before_the_options_are_read_times_out_from_the_off() {
    use crate::{BackendEvent, Service, ServiceState};
    let engine = options_after(BackendEvent::ServiceStatus {
        service: Service::Telephony,
        status: ServiceState::Off,
    });
    assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(31)));
}

/// D4: `dr-force_logout` before S3 has read `site-sip-register-timeout`:
/// the wait is armed when the option arrives, from the logout.
#[test]
fn d4_dr_force_logout_before_the_options_are_read_waits_from_the_logout() {
    let engine = options_after(crate::BackendEvent::AgentLogout {
        dn: "7001".into(),
        reason: Some(crate::DR_FORCE_LOGOUT.into()),
        extensions: Default::default(),
    });
    assert_eq!(engine.poll_timeout(), Some(Timestamp::from_secs(61)));
}

/// A fleet agent's engine on a shared config ([`Engine::for_agent`]) acts as
/// an engine with its own config naming the same username and seed: the
/// same commands (its username in them), decisions and deadlines, the
/// backoff and E4 jitter drawn from its own seed (lazily made RNG).
#[test]
fn a_fleet_agent_on_a_shared_config_acts_as_one_with_its_own() {
    let mut own = EngineConfig::two_sites("a7");
    own.seed = 7;
    own.switchover_jitter = Duration::from_secs(30);
    let mut template = own.clone();
    template.username = "template".into();
    template.seed = 0;
    let template = std::sync::Arc::new(template);
    let mut engines = [
        Engine::new(own).expect("valid config"),
        Engine::for_agent(template.clone(), "a7", 7).expect("valid config"),
    ];
    // Another agent of the same fleet draws other delays from its seed.
    let mut other = Engine::for_agent(template, "a8", 8).expect("valid config");
    let mut epochs = [0; 3];
    let mut seen = Vec::new();
    for (k, engine) in engines.iter_mut().chain([&mut other]).enumerate() {
        let epoch = &mut epochs[k];
        let mut log = Vec::new();
        engine.handle_event(Timestamp::ZERO, Event::Start);
        // Both sites refuse: the backoff's jitter is the RNG's first draw.
        log.push(answer(engine, Timestamp::ZERO, true, epoch));
        let backoff = engine.poll_timeout().expect("a backoff");
        engine.handle_timeout(backoff);
        log.push(answer(engine, backoff, false, epoch));
        // D1 after 30 s, then E4's random delay: the second draw.
        let off = backoff + Duration::from_secs(1);
        telephony_off(engine, off, *epoch);
        log.push(answer(engine, off, false, epoch));
        let timeout = engine.poll_timeout().expect("site-timeout");
        engine.handle_timeout(timeout);
        let jitter = engine.poll_timeout().expect("the E4 delay");
        engine.handle_timeout(jitter);
        log.push(answer(engine, jitter, false, epoch));
        seen.push((
            log,
            [backoff, timeout, jitter],
            engine.username().to_owned(),
        ));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1].2, "a7");
    let connect_user = seen[1].0[1].1.iter().find_map(|c| match c {
        CommandKind::Connect { username, .. } => Some(username.clone()),
        _ => None,
    });
    assert_eq!(connect_user.as_deref(), Some("a7"));
    assert!(switch_decisions(&seen[1].0[3].0)
        .iter()
        .any(|d| matches!(d, Decision::SwitchoverStarted { .. })));
    assert_ne!(seen[1].1, seen[2].1, "seed 8 draws other delays");
}

//! D1–D6: detecting a site failure, on either site.
mod common;
use common::*;
use drctl_policy::*;
use std::time::Duration;

const SWITCH_TO_SITE2: [&str; 2] = [
    "switchover-started telephony-timeout site1->site2",
    "switchover-completed telephony-timeout site1->site2",
];

#[test]
fn d1_telephony_off_longer_than_site_timeout_switches_at_exactly_the_timeout() {
    let mut h = Harness::watching_default();
    h.run_until(secs(10));
    h.telephony(ServiceState::Off);
    h.run_until(secs(39) + Duration::from_nanos(999_999_999));
    assert!(h.switchovers().is_empty());
    h.run_until(secs(100));
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(40), SWITCH_TO_SITE2[0]),
            (secs(40), SWITCH_TO_SITE2[1])
        ])
    );
    assert_eq!(
        h.command_names(),
        tl(&[
            (secs(40), "kill_factory"),
            (secs(40), "connect site2 on-demand"),
            (secs(40), "subscribe 2 x4"),
        ])
    );
}

#[test]
fn d1_telephony_on_before_timeout_cancels() {
    let mut h = Harness::watching_default();
    h.telephony(ServiceState::Off);
    h.run_until(secs(29));
    h.telephony(ServiceState::On);
    h.run_until(secs(300));
    assert!(h.switchovers().is_empty());
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn d1_repeated_off_does_not_restart_the_timer() {
    let mut h = Harness::watching_default();
    h.telephony(ServiceState::Off);
    h.run_until(secs(20));
    h.telephony(ServiceState::Off);
    h.run_until(secs(29));
    h.telephony(ServiceState::Off);
    h.run_until(secs(100));
    assert_eq!(h.switchovers()[0].0, secs(30));
}

#[test]
fn d1_flapping_restarts_the_timer_from_the_last_off() {
    let mut h = Harness::watching_default();
    for s in [0, 10, 20] {
        h.run_until(secs(s));
        h.telephony(ServiceState::Off);
        h.run_until(secs(s + 5));
        h.telephony(ServiceState::On);
    }
    h.run_until(secs(40));
    h.telephony(ServiceState::Off);
    h.run_until(secs(200));
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(70), SWITCH_TO_SITE2[0]),
            (secs(70), SWITCH_TO_SITE2[1])
        ])
    );
}

/// Started with the preferred Application's `site-timeout` at `timeout`,
/// telephony OFF from 0 to 3600 s (still OFF).
fn telephony_off_for_an_hour(timeout: Option<Duration>) -> Harness {
    let mut h = Harness::started_after(Harness::default_config(), |h| h.app_site_timeout = timeout);
    h.clear_log();
    h.telephony(ServiceState::Off);
    h.run_until(secs(3600));
    h
}

#[test]
fn d1_site_timeout_zero_never_switches_and_alarms_instead() {
    let mut h = telephony_off_for_an_hour(Some(Duration::ZERO));
    h.telephony(ServiceState::On);
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(0), "alarm-raised telephony-service-down"),
            (secs(3600), "alarm-cleared telephony-service-down"),
        ])
    );
}

#[test]
fn d1_site_timeout_absent_never_switches_and_alarms_instead() {
    let h = telephony_off_for_an_hour(None);
    assert_eq!(
        h.timeline(),
        tl(&[(secs(0), "alarm-raised telephony-service-down")])
    );
    assert_eq!(h.engine.poll_timeout(), None);
}

#[test]
fn d1_works_the_same_on_the_secondary_site() {
    let mut h = Harness::watching_default();
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    h.clear_log();
    h.run_until(secs(100));
    h.telephony(ServiceState::Off);
    h.run_until(secs(200));
    assert_eq!(
        h.switchovers(),
        switched(secs(130), "telephony-timeout site2->site1")
    );
}

/// `service` reported OFF `offs` times at 0 and ON at 3600 s: the two
/// `decisions` (the alarm raised, then cleared) and no command at all.
fn alarms_and_never_switches(service: Service, offs: usize, decisions: [&str; 2]) {
    let mut h = Harness::watching_default();
    for _ in 0..offs {
        h.service(service, ServiceState::Off);
    }
    h.run_until(secs(3600));
    h.service(service, ServiceState::On);
    assert_eq!(
        h.timeline(),
        tl(&[(secs(0), decisions[0]), (secs(3600), decisions[1])])
    );
    assert!(h.commands().is_empty());
}

#[test]
fn d2_configuration_off_alarms_and_never_switches() {
    alarms_and_never_switches(
        Service::Configuration,
        1,
        [
            "alarm-raised configuration-service-down",
            "alarm-cleared configuration-service-down",
        ],
    );
}

#[test]
fn d3_statistic_off_alarms_and_never_switches() {
    alarms_and_never_switches(
        Service::Statistic,
        2,
        [
            "alarm-raised statistic-service-down",
            "alarm-cleared statistic-service-down",
        ],
    );
}

/// A logout with `reason` at 0, then an hour: `classified` is the only decision.
fn logout_only_classified(reason: &str, classified: &str) -> Harness {
    let mut h = Harness::watching_default();
    h.logout(reason);
    h.run_until(secs(3600));
    assert_eq!(h.timeline(), tl(&[(secs(0), classified)]));
    h
}

#[test]
fn d4_manual_logout_is_recorded_and_nothing_else() {
    let h = logout_only_classified("", "logout-classified \"\" Manual");
    assert!(h.commands().is_empty());
}

#[test]
fn d4_supervisor_forced_logout_does_nothing() {
    let h = logout_only_classified(
        "supervisor_forced_logout",
        "logout-classified \"supervisor_forced_logout\" Supervisor",
    );
    assert!(h.commands().is_empty());
}

#[test]
fn d4_unknown_reason_is_treated_as_manual() {
    logout_only_classified("lunch", "logout-classified \"lunch\" Manual");
}

#[test]
fn d4_dr_force_logout_without_reregistration_switches_at_the_register_timeout() {
    let mut h = Harness::watching_default();
    h.run_until(secs(5));
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(200));
    assert_eq!(
        h.timeline(),
        [
            tl(&[
                (secs(5), "logout-classified \"dr-force_logout\" DrForce"),
                (secs(5), "alarm-raised sip-registration-lost")
            ]),
            switched(secs(65), "sip-register-timeout site1->site2")
        ]
        .concat()
    );
}

#[test]
fn d4_back_in_service_one_nanosecond_before_the_deadline_cancels() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(60) - Duration::from_nanos(1));
    h.back_in_service();
    h.run_until(secs(600));
    assert!(h.switchovers().is_empty());
}

#[test]
fn d4_back_in_service_one_nanosecond_after_the_deadline_is_too_late() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(60) + Duration::from_nanos(1));
    assert_eq!(h.switchovers()[0].0, secs(60));
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
    // The old connection's late event is stale now (D5): it does nothing at all.
    h.tick();
    let log = h.log.len();
    let view = h.engine.view();
    let timeout = h.engine.poll_timeout();
    h.feed(Event::Backend {
        epoch: 1,
        event: BackendEvent::DnBackInService { dn: "7001".into() },
    });
    assert_eq!(h.log[log..], []);
    assert_eq!(h.engine.view(), view);
    assert_eq!(h.engine.poll_timeout(), timeout);
}

#[test]
fn d4_back_in_service_after_the_deadline_cancels_a_switchover_held_by_pause() {
    // The deadline passed while paused; re-registration on the same
    // connection ends the wait, so resuming finds nothing to do.
    let mut h = Harness::watching_default();
    h.feed(Event::Pause);
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(61));
    h.back_in_service();
    h.run_until(secs(70));
    h.feed(Event::Resume);
    h.run_until(secs(600));
    assert_eq!(
        h.switchovers(),
        tl(&[(
            secs(60),
            "switchover-suppressed sip-register-timeout Paused"
        )])
    );
}

#[test]
fn d4_back_in_service_exactly_at_the_deadline_comes_after_it() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.answer = false;
    h.run_until(secs(60) - Duration::from_nanos(1));
    h.now = secs(60);
    h.back_in_service();
    assert_eq!(h.switchovers()[0].0, secs(60));
}

#[test]
fn d4_register_timeout_zero_or_absent_never_switches() {
    for timeout in [Some(Duration::ZERO), None] {
        let mut h = Harness::new(Harness::default_config());
        h.app_sip_timeout = timeout;
        h.start();
        h.logout(DR_FORCE_LOGOUT);
        h.run_until(secs(3600));
        assert!(h.switchovers().is_empty(), "{timeout:?}");
        assert_eq!(h.engine.poll_timeout(), None);
    }
}

#[test]
fn d4_repeated_dr_force_logout_does_not_restart_the_wait() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(50));
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(200));
    assert_eq!(h.switchovers()[0].0, secs(60));
}

#[test]
fn d4_embedded_endpoint_is_relaunched_after_dr_force_logout() {
    let mut cfg = Harness::default_config();
    cfg.embedded_endpoint = true;
    let mut h = Harness::watching(cfg);
    h.logout(DR_FORCE_LOGOUT);
    assert_eq!(h.command_names(), tl(&[(secs(0), "relaunch_endpoint")]));
    h.back_in_service();
    h.run_until(secs(600));
    assert!(h.switchovers().is_empty());
}

#[test]
fn d4_graceful_shutdown_switches_now() {
    let mut h = Harness::watching_default();
    h.run_until(secs(7));
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    assert_eq!(
        h.timeline(),
        [
            tl(&[(
                secs(7),
                "logout-classified \"graceful_shutdown_logout\" GracefulShutdown"
            )]),
            switched(secs(7), "graceful-shutdown site1->site2")
        ]
        .concat()
    );
}

#[test]
fn d4_dr_force_logout_then_graceful_shutdown_switches_once_for_graceful() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(10));
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(600));
    assert_eq!(
        h.switchovers(),
        switched(secs(10), "graceful-shutdown site1->site2")
    );
}

#[test]
fn d5_events_of_a_stale_epoch_are_dropped() {
    let mut h = Harness::watching_default();
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.clear_log();
    let timeout_before = h.engine.poll_timeout();
    let view_before = h.engine.view();
    for event in [
        BackendEvent::ServiceStatus {
            service: Service::Telephony,
            status: ServiceState::Off,
        },
        BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(GRACEFUL_SHUTDOWN_LOGOUT.into()),
            extensions: Default::default(),
        },
        BackendEvent::Disconnected,
    ] {
        for epoch in [1, 99] {
            h.feed(Event::Backend {
                epoch,
                event: event.clone(),
            });
        }
    }
    assert!(h.log.is_empty(), "{:?}", h.log);
    assert_eq!(h.engine.poll_timeout(), timeout_before);
    assert_eq!(h.engine.view(), view_before);
}

#[test]
fn d5_events_during_a_switchover_are_dropped() {
    let mut h = Harness::watching_default();
    h.answer = false;
    h.feed(Event::OperatorSwitch { to: None });
    h.clear_log();
    h.feed(Event::Backend {
        epoch: 1,
        event: BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: Some(GRACEFUL_SHUTDOWN_LOGOUT.into()),
            extensions: Default::default(),
        },
    });
    assert!(h.log.is_empty());
}

#[test]
fn d6_a_trigger_during_a_switchover_is_coalesced() {
    let mut h = Harness::watching_default();
    h.connect_latency = Duration::from_secs(2);
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(1));
    h.feed(Event::OperatorSwitch { to: None });
    h.run_until(secs(10));
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(0), "switchover-started graceful-shutdown site1->site2"),
            (secs(1), "switchover-suppressed operator InProgress"),
            (
                secs(2),
                "switchover-completed graceful-shutdown site1->site2"
            ),
        ])
    );
}

#[test]
fn d6_triggers_during_the_jitter_wait_are_coalesced() {
    let mut cfg = Harness::default_config();
    cfg.switchover_jitter = Duration::from_secs(10);
    let mut h = Harness::watching(cfg);
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    h.tick();
    let jitter_ends = h
        .engine
        .view()
        .timers
        .iter()
        .find(|t| t.kind == TimerKind::SwitchoverJitter)
        .map(|t| t.at)
        .expect("waiting out the jitter");
    assert!(jitter_ends > secs(30), "{jitter_ends}");
    h.logout(DR_FORCE_LOGOUT);
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(100));
    let started = h.started_switchovers();
    assert_eq!(started.len(), 1, "{started:?}");
    // The strongest trigger wins when the delay ends, not before.
    assert_eq!(started[0].0, jitter_ends);
    assert!(started[0].1.contains("graceful-shutdown"));
}

#[test]
fn d6_a_trigger_during_startup_waits_until_the_agent_is_watching() {
    let mut h = Harness::started_after(Harness::default_config(), |h| h.hold = vec!["subscribe"]);
    h.run_until(secs(2));
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(3));
    assert!(h.switchovers().is_empty(), "{:?}", h.switchovers());
    h.hold.clear();
    h.reply("subscribe", Ok(Reply::Done));
    assert_eq!(
        h.switchovers(),
        switched(secs(3), "graceful-shutdown site1->site2")
    );
}

/// The alarms raised, with the deadline each names (ns), in order.
fn raised(h: &Harness) -> Vec<(Timestamp, Alarm, Option<u64>)> {
    h.decisions()
        .into_iter()
        .filter_map(|(t, d)| match d {
            Decision::AlarmRaised { alarm, deadline } => Some((t, alarm, deadline)),
            _ => None,
        })
        .collect()
}

/// D1: with `site-timeout` on, OFF raises `telephony-service-down` at once,
/// naming the pending switchover's deadline; ON clears it and the switchover
/// never comes.
#[test]
fn d1_off_alarms_with_the_pending_deadline_and_on_clears_it() {
    let mut h = Harness::watching_default();
    h.run_until(secs(10));
    h.telephony(ServiceState::Off);
    assert_eq!(
        raised(&h),
        [(
            secs(10),
            Alarm::TelephonyServiceDown,
            Some(secs(40).as_nanos())
        )]
    );
    assert!(h.engine.view().timers.contains(&PendingTimer {
        kind: TimerKind::SiteTimeout,
        at: secs(40)
    }));
    h.run_until(secs(25));
    h.telephony(ServiceState::On);
    h.run_until(secs(100));
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(10), "alarm-raised telephony-service-down"),
            (secs(25), "alarm-cleared telephony-service-down"),
        ])
    );
    assert!(h.engine.view().alarms.is_empty());
}

/// D1: repeated OFF raises the alarm once; leaving the site (the switchover
/// at the deadline) clears it.
#[test]
fn d1_alarm_is_raised_once_and_cleared_by_leaving_the_site() {
    let mut h = Harness::watching_default();
    h.telephony(ServiceState::Off);
    h.run_until(secs(20));
    h.telephony(ServiceState::Off);
    h.run_until(secs(100));
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(0), "alarm-raised telephony-service-down"),
            (secs(30), SWITCH_TO_SITE2[0]),
            (secs(30), "alarm-cleared telephony-service-down"),
            (secs(30), SWITCH_TO_SITE2[1]),
        ])
    );
}

/// D1: OFF before S3 has read `site-timeout` still raises the alarm (no
/// deadline known yet); the site timer is armed when the option arrives.
#[test]
fn d1_off_before_the_options_alarms_without_a_deadline() {
    let mut h = Harness::started_after(Harness::default_config(), |h| {
        h.hold = vec!["read_application"]
    });
    h.run_until(secs(5));
    h.telephony(ServiceState::Off);
    assert_eq!(raised(&h), [(secs(5), Alarm::TelephonyServiceDown, None)]);
    h.hold.clear();
    h.run_until(secs(8));
    h.reply(
        "read_application",
        Ok(Reply::Application {
            app_name: "AIL_site1".into(),
            cs_proxy: "csproxy1:7000".into(),
            site_timeout: Some(Duration::from_secs(30)),
            site_sip_register_timeout: None,
            options: Default::default(),
        }),
    );
    h.run_until(secs(100));
    assert_eq!(h.switchovers()[0], (secs(35), SWITCH_TO_SITE2[0].into()));
    // Raised once, at the OFF.
    assert_eq!(raised(&h).len(), 1);
}

/// D4: `dr-force_logout` raises `sip-registration-lost`, naming the
/// register deadline; EventDNBackInService clears it; no switchover.
#[test]
fn d4_dr_force_logout_alarms_until_back_in_service() {
    let mut h = Harness::watching_default();
    h.run_until(secs(10));
    h.logout(DR_FORCE_LOGOUT);
    h.logout(DR_FORCE_LOGOUT);
    assert_eq!(
        raised(&h),
        [(
            secs(10),
            Alarm::SipRegistrationLost,
            Some(secs(70).as_nanos())
        )]
    );
    h.run_until(secs(40));
    h.back_in_service();
    h.run_until(secs(600));
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(10), "logout-classified \"dr-force_logout\" DrForce"),
            (secs(10), "alarm-raised sip-registration-lost"),
            (secs(10), "logout-classified \"dr-force_logout\" DrForce"),
            (secs(40), "alarm-cleared sip-registration-lost"),
        ])
    );
}

/// D4: with `site-sip-register-timeout` off the agent stays logged out, but
/// not silently: the alarm is up (no deadline) until the DN is back.
#[test]
fn d4_dr_force_logout_without_a_register_timeout_still_alarms() {
    let mut h = Harness::started_after(Harness::default_config(), |h| h.app_sip_timeout = None);
    h.clear_log();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(3600));
    assert_eq!(raised(&h), [(secs(0), Alarm::SipRegistrationLost, None)]);
    assert_eq!(h.engine.view().alarms, [Alarm::SipRegistrationLost]);
    assert!(h.switchovers().is_empty());
}

/// D4: the register timeout switches sites as before; the alarm stays up
/// across the switchover until the DN is back in service at the new site.
#[test]
fn d4_alarm_outlives_the_switchover_until_the_dn_is_back() {
    let mut h = Harness::watching_default();
    h.logout(DR_FORCE_LOGOUT);
    h.run_until(secs(61));
    assert_eq!(h.switchovers()[0].0, secs(60));
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
    assert_eq!(h.engine.view().alarms, [Alarm::SipRegistrationLost]);
    h.run_until(secs(62));
    h.back_in_service();
    assert!(h.engine.view().alarms.is_empty());
    assert_eq!(
        h.timeline().last().map(|(t, d)| (*t, d.as_str())),
        Some((secs(62), "alarm-cleared sip-registration-lost"))
    );
}

//! W1–W4 (the switchover) and E1–E4 (drctl's additions).
mod common;
use common::*;
use drctl_policy::*;
use std::time::Duration;

/// Fails site1's telephony at `at` (site-timeout 30 s).
fn telephony_down_at(h: &mut Harness, at: Timestamp) {
    h.run_until(at);
    h.telephony(ServiceState::Off);
}

fn started(h: &Harness) -> Vec<(Timestamp, String)> {
    h.switchovers()
        .into_iter()
        .filter(|(_, d)| d.starts_with("switchover-started"))
        .collect()
}

#[test]
fn w1_kills_the_factory_before_connecting_with_on_demand_loading() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch { to: None });
    let cmds = h.commands();
    assert_eq!(cmds[0].1, CommandKind::KillFactory);
    match &cmds[1].1 {
        CommandKind::Connect {
            site,
            cs_proxy,
            on_demand_loading,
            ..
        } => {
            assert_eq!(&**site, "site2");
            assert_eq!(cs_proxy, "csproxy2:7000");
            assert!(on_demand_loading);
        }
        other => panic!("expected connect, got {other:?}"),
    }
}

#[test]
fn w1_startup_connect_does_not_ask_for_on_demand_loading() {
    let h = Harness::new(Harness::default_config());
    let mut h = h;
    h.start();
    assert!(matches!(
        h.commands()[0].1,
        CommandKind::Connect {
            on_demand_loading: false,
            ..
        }
    ));
}

#[test]
fn w2_subscribes_all_four_listeners_for_the_new_epoch() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch { to: None });
    let subscribe = h
        .commands()
        .into_iter()
        .find_map(|(_, c)| match c {
            CommandKind::Subscribe { epoch, listeners } => Some((epoch, listeners)),
            _ => None,
        })
        .expect("subscribed");
    assert_eq!(subscribe, (2, Listener::ALL.to_vec()));
    assert_eq!(h.engine.view().epoch, Some(2));
    // The new site's listeners start unknown and are watched anew.
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    assert_eq!(
        started(&h).last().map(|s| s.1.clone()).as_deref(),
        Some("switchover-started telephony-timeout site2->site1")
    );
}

#[test]
fn w3_operator_names_the_target() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch {
        to: Some("site2".into()),
    });
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(0), "switchover-started operator site1->site2"),
            (secs(0), "switchover-completed operator site1->site2"),
        ])
    );
}

#[test]
fn w3_operator_naming_the_current_or_an_unknown_site_is_refused() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch {
        to: Some("site1".into()),
    });
    h.feed(Event::OperatorSwitch {
        to: Some("site9".into()),
    });
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(0), "switchover-suppressed operator AlreadyOnSite"),
            (secs(0), "switchover-suppressed operator UnknownSite"),
        ])
    );
    assert!(h.commands().is_empty());
}

#[test]
fn w4_unreachable_target_alternates_with_origin_and_backs_off() {
    let mut h = Harness::watching_default();
    h.reachable = [false, false];
    h.connect_latency = Duration::from_millis(100);
    h.feed(Event::OperatorSwitch { to: None });
    h.run_until(secs(400));
    // Rounds of two refused connects: the target, then the origin 100 ms later.
    let connects: Vec<(Timestamp, String)> = h
        .command_names()
        .into_iter()
        .filter(|(_, n)| n.starts_with("connect"))
        .collect();
    let rounds: Vec<&[(Timestamp, String)]> = connects.chunks(2).collect();
    assert!(rounds.len() >= 8, "{} rounds by 400 s", rounds.len());
    for (n, round) in rounds.iter().enumerate() {
        assert_eq!(round.len(), 2, "round {n}: {round:?}");
        assert_eq!(round[0].1, "connect site2 on-demand", "round {n}");
        assert_eq!(round[1].1, "connect site1 on-demand", "round {n}");
        assert_eq!(round[1].0 - round[0].0, Duration::from_millis(100));
    }
    // The wait after a round's last refusal: 1 s, 2 s, 4 s, ... capped at 60 s, ±20 %.
    for (n, pair) in rounds.windows(2).enumerate() {
        let last_refused = pair[0][1].0 + Duration::from_millis(100);
        let delay = (pair[1][0].0 - last_refused).as_secs_f64();
        let base = 2f64.powi(n as i32).min(60.0);
        assert!(
            delay >= base * 0.8 - 1e-9 && delay < base * 1.2 + 1e-9,
            "round {n}: waited {delay} s, expected {base} s ±20 %"
        );
    }
    // Every refusal is reported; the alarm goes up once and stays up.
    let failed = h
        .timeline()
        .into_iter()
        .filter(|(_, d)| d.starts_with("switchover-failed"))
        .count();
    assert_eq!(failed, connects.len());
    let raised: Vec<_> = h
        .timeline()
        .into_iter()
        .filter(|(_, d)| d.starts_with("alarm"))
        .collect();
    assert_eq!(raised, tl(&[(ms(100), "alarm-raised switchover-failed")]));
    assert_eq!(h.engine.view().phase, PhaseKind::Backoff);
    assert!(h.engine.view().switchover.is_some());

    // The origin answers first: the agent lands back on it, alarm still up.
    h.reachable = [true, false];
    h.run_until(secs(600));
    let last = h.switchovers().last().cloned().unwrap();
    assert_eq!(last.1, "switchover-completed operator site1->site1");
    assert!(h.engine.alarm_active(Alarm::SwitchoverFailed));
    assert_eq!(h.engine.view().phase, PhaseKind::Watching);
}

#[test]
fn w4_both_unreachable_retries_with_backoff_until_one_answers() {
    let mut h = Harness::watching_default();
    h.reachable = [false, false];
    h.feed(Event::OperatorSwitch { to: None });
    h.run_until(secs(20));
    let connects: Vec<Timestamp> = h
        .commands()
        .into_iter()
        .filter(|(_, c)| matches!(c, CommandKind::Connect { .. }))
        .map(|(t, _)| t)
        .collect();
    // Rounds of two attempts, spaced 1 s, 2 s, 4 s, ... ±20 %.
    assert_eq!(connects[0], connects[1]);
    let gap1 = (connects[2] - connects[1]).as_secs_f64();
    let gap2 = (connects[4] - connects[3]).as_secs_f64();
    assert!((0.8..1.2).contains(&gap1), "{gap1}");
    assert!((1.6..2.4).contains(&gap2), "{gap2}");
    h.reachable = [false, true];
    h.run_until(secs(100));
    let last = h.switchovers().last().cloned().unwrap();
    assert_eq!(last.1, "switchover-completed operator site1->site2");
    assert!(!h.engine.alarm_active(Alarm::SwitchoverFailed));
}

#[test]
fn e1_hold_down_suppresses_automatic_switchovers_then_acts() {
    let mut cfg = Harness::default_config();
    cfg.hold_down = Duration::from_secs(120);
    let mut h = Harness::watching(cfg);
    h.feed(Event::OperatorSwitch { to: None });
    // On site2 from t=0; hold-down until t=120.
    telephony_down_at(&mut h, secs(10));
    h.run_until(secs(300));
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(0), "switchover-started operator site1->site2"),
            (secs(0), "switchover-completed operator site1->site2"),
            (secs(40), "switchover-suppressed telephony-timeout HoldDown"),
            (
                secs(120),
                "switchover-started telephony-timeout site2->site1"
            ),
            (
                secs(120),
                "switchover-completed telephony-timeout site2->site1"
            ),
        ])
    );
}

#[test]
fn e1_hold_down_does_not_hold_graceful_shutdown_or_operators() {
    let mut cfg = Harness::default_config();
    cfg.hold_down = Duration::from_secs(600);
    let mut h = Harness::watching(cfg);
    h.feed(Event::OperatorSwitch { to: None });
    h.run_until(secs(5));
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(6));
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(started(&h).len(), 3);
}

#[test]
fn e1_hold_down_suppression_ends_if_the_site_recovers() {
    let mut cfg = Harness::default_config();
    cfg.hold_down = Duration::from_secs(120);
    let mut h = Harness::watching(cfg);
    h.feed(Event::OperatorSwitch { to: None });
    telephony_down_at(&mut h, secs(10));
    h.run_until(secs(50));
    h.telephony(ServiceState::On);
    h.run_until(secs(300));
    assert_eq!(started(&h).len(), 1);
}

#[test]
fn e2_failback_manual_stays_on_the_secondary() {
    let mut h = Harness::watching_default();
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(86_400));
    assert_eq!(started(&h).len(), 1);
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
}

#[test]
fn e2_failback_auto_returns_to_the_preferred_site() {
    let mut cfg = Harness::default_config();
    cfg.failback = Failback::Auto {
        after: Duration::from_secs(600),
    };
    let mut h = Harness::watching(cfg);
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(3600));
    assert_eq!(
        started(&h),
        tl(&[
            (
                secs(30),
                "switchover-started telephony-timeout site1->site2"
            ),
            (secs(630), "switchover-started failback site2->site1"),
        ])
    );
    assert_eq!(h.engine.view().site.as_deref(), Some("site1"));
}

#[test]
fn e2_failback_to_an_unreachable_preferred_site_retries_later() {
    let mut cfg = Harness::default_config();
    cfg.failback = Failback::Auto {
        after: Duration::from_secs(600),
    };
    let mut h = Harness::watching(cfg);
    h.reachable = [false, true];
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(1300));
    let fb: Vec<_> = started(&h)
        .into_iter()
        .filter(|(_, d)| d.contains("failback"))
        .collect();
    assert_eq!(
        fb,
        tl(&[
            (secs(630), "switchover-started failback site2->site1"),
            (secs(1230), "switchover-started failback site2->site1"),
        ])
    );
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
}

#[test]
fn e3_paused_reports_suppressed_and_resume_acts() {
    let mut h = Harness::watching_default();
    h.feed(Event::Pause);
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(100));
    h.feed(Event::Resume);
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(30), "switchover-suppressed telephony-timeout Paused"),
            (
                secs(100),
                "switchover-started telephony-timeout site1->site2"
            ),
            (
                secs(100),
                "switchover-completed telephony-timeout site1->site2"
            ),
        ])
    );
}

#[test]
fn e3_paused_holds_graceful_shutdown_but_not_an_operator() {
    let mut h = Harness::watching_default();
    h.feed(Event::Pause);
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(5));
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(
        h.switchovers(),
        tl(&[
            (secs(0), "switchover-suppressed graceful-shutdown Paused"),
            (secs(5), "switchover-started operator site1->site2"),
            (secs(5), "switchover-completed operator site1->site2"),
        ])
    );
    assert!(h.engine.view().paused);
}

#[test]
fn e3_detection_and_alarms_go_on_while_paused() {
    let mut h = Harness::watching_default();
    h.feed(Event::Pause);
    h.service(Service::Statistic, ServiceState::Off);
    assert_eq!(
        h.timeline(),
        tl(&[(secs(0), "alarm-raised statistic-service-down")])
    );
}

fn jittered(seed: u64) -> Harness {
    let mut cfg = Harness::default_config();
    cfg.switchover_jitter = Duration::from_secs(20);
    cfg.seed = seed;
    let mut h = Harness::watching(cfg);
    h.logout(GRACEFUL_SHUTDOWN_LOGOUT);
    h.run_until(secs(100));
    h
}

#[test]
fn e4_switchover_jitter_delays_automatic_switchovers_within_bound() {
    let mut delays = Vec::new();
    for seed in 0..50 {
        let h = jittered(seed);
        let s = started(&h);
        assert_eq!(s.len(), 1);
        assert!(s[0].0 < secs(20), "seed {seed}: {:?}", s[0]);
        delays.push(s[0].0);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 40, "delays spread out: {delays:?}");
}

#[test]
fn e4_switchover_jitter_is_reproducible_from_the_seed() {
    assert_eq!(started(&jittered(3)), started(&jittered(3)));
    assert_ne!(started(&jittered(3)), started(&jittered(4)));
}

#[test]
fn e4_operator_switchovers_are_not_jittered() {
    let mut cfg = Harness::default_config();
    cfg.switchover_jitter = Duration::from_secs(20);
    let mut h = Harness::watching(cfg);
    h.run_until(secs(3));
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(started(&h)[0].0, secs(3));
}

#[test]
fn e4_jitter_wait_is_cancelled_if_the_trigger_goes_away() {
    let mut cfg = Harness::default_config();
    cfg.switchover_jitter = Duration::from_secs(20);
    cfg.seed = 1;
    let mut h = Harness::watching(cfg);
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(30));
    assert!(h
        .engine
        .view()
        .timers
        .iter()
        .any(|t| t.kind == TimerKind::SwitchoverJitter));
    h.telephony(ServiceState::On);
    h.run_until(secs(100));
    assert!(started(&h).is_empty());
}

#[test]
fn w4_a_connect_answered_with_anything_but_connected_is_a_failure_naming_the_answer() {
    let mut h = Harness::watching_default();
    h.hold = vec!["connect"];
    h.feed(Event::OperatorSwitch { to: None });
    h.reply("connect", Ok(Reply::Done));
    let failed: Vec<(Timestamp, String, String)> = h
        .decisions()
        .into_iter()
        .filter_map(|(t, d)| match d {
            Decision::SwitchoverFailed { to, error } => Some((t, to.to_string(), error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![(
            secs(0),
            "site2".to_string(),
            "unexpected answer to connect: Done".to_string()
        )]
    );
    // The round goes on to the origin.
    assert_eq!(
        h.command_names().last().map(|c| c.1.clone()).as_deref(),
        Some("connect site1 on-demand")
    );
}

#[test]
fn w3_operator_switch_while_reconnecting_is_refused_as_in_progress() {
    let mut h = Harness::watching_default();
    h.reachable = [false, false];
    h.backend(BackendEvent::Disconnected);
    assert_eq!(h.engine.view().phase, PhaseKind::Backoff);
    h.clear_log();
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(
        h.timeline(),
        tl(&[(secs(0), "switchover-suppressed operator InProgress")])
    );
    assert!(h.commands().is_empty());
}

/// Connect times after a switchover at t = 5 s into two dead sites.
fn reconnects_after(switch: impl FnOnce(&mut Harness)) -> Vec<Timestamp> {
    let mut cfg = Harness::default_config();
    cfg.seed = 5;
    let mut h = Harness::watching(cfg);
    h.run_until(secs(5));
    h.reachable = [false, false];
    switch(&mut h);
    h.run_until(secs(120));
    h.commands()
        .into_iter()
        .filter(|(_, c)| matches!(c, CommandKind::Connect { .. }))
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn e4_zero_jitter_draws_nothing_from_the_rng() {
    // With switchover-jitter 0 an automatic switchover is not delayed and
    // leaves the RNG as an operator's does: the backoff that follows is the same.
    let automatic = reconnects_after(|h| h.logout(GRACEFUL_SHUTDOWN_LOGOUT));
    let operator = reconnects_after(|h| h.feed(Event::OperatorSwitch { to: None }));
    assert!(automatic.len() > 8, "{automatic:?}");
    assert_eq!(automatic[0], secs(5));
    assert_eq!(automatic, operator);
}

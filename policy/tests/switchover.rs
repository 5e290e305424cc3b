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
    let subscribe = first_match!(h.commands(), CommandKind::Subscribe { epoch, listeners } => (epoch, listeners))
        .expect("subscribed");
    assert_eq!(subscribe, (2, Listener::ALL.to_vec()));
    assert_eq!(h.engine.view().epoch, Some(2));
    // The new site's listeners start unknown and are watched anew.
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    assert_eq!(
        h.started_switchovers()
            .last()
            .map(|s| s.1.clone())
            .as_deref(),
        Some("switchover-started telephony-timeout site2->site1")
    );
}

#[test]
fn w3_operator_names_the_target() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch {
        to: Some("site2".into()),
    });
    assert_eq!(h.switchovers(), switched(secs(0), "operator site1->site2"));
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
    let connects = h.connect_times();
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
        [
            switched(secs(0), "operator site1->site2"),
            tl(&[(secs(40), "switchover-suppressed telephony-timeout HoldDown")]),
            switched(secs(120), "telephony-timeout site2->site1")
        ]
        .concat()
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
    assert_eq!(h.started_switchovers().len(), 3);
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
    assert_eq!(h.started_switchovers().len(), 1);
}

#[test]
fn e2_failback_manual_stays_on_the_secondary() {
    let mut h = Harness::watching_default();
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(86_400));
    assert_eq!(h.started_switchovers().len(), 1);
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
}

/// An engine with `failback = auto` (`after`, probes every 10 s), watching
/// site1 (preferred), each subscribe reporting the site's telephony; site1's
/// telephony goes OFF at 0 and stays down (`healthy[0] = false`): the agent
/// is on site2 from 30 s.
fn failed_over(after: u64) -> Harness {
    let mut cfg = Harness::default_config();
    cfg.failback = auto_failback(after);
    let mut h = Harness::started_after(cfg, |h| h.report_telephony = true);
    h.clear_log();
    h.healthy[0] = false;
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
    h
}

/// E2: with `failback = auto`, the preferred site is probed at arrival on
/// the other one and every `failback-probe-interval`, through the CS Proxy
/// its Application names; probing stops on the preferred site.
#[test]
fn e2_probes_the_preferred_site_every_interval_while_on_the_other() {
    let mut h = failed_over(600);
    h.run_until(secs(75));
    assert_eq!(
        h.probes(),
        tl(&[
            (secs(30), "probe site1"),
            (secs(40), "probe site1"),
            (secs(50), "probe site1"),
            (secs(60), "probe site1"),
            (secs(70), "probe site1"),
        ])
    );
    let first =
        first_match!(h.commands(), CommandKind::Probe { cs_proxy, .. } => cs_proxy).unwrap();
    assert_eq!(first, "csproxy1:7000");
    // Back on site1 (healthy again) by an operator: no more probes.
    h.healthy[0] = true;
    h.feed(Event::OperatorSwitch { to: None });
    h.clear_log();
    h.run_until(secs(600));
    assert_eq!(h.probes(), []);
}

/// E2: a preferred site down for 200 s with `failback-after` 60 s: one
/// switchover away, one failback, no earlier than 60 s after it recovered
/// (the seed's timer alone came back every 60 s and left again).
#[test]
fn e2_a_site_down_for_200s_gives_one_switchover_away_and_one_failback() {
    let mut h = failed_over(60);
    h.run_until(secs(200));
    h.healthy[0] = true; // recovered at 200 s
    h.run_until(secs(3600));
    assert_eq!(
        h.started_switchovers(),
        tl(&[
            (
                secs(0) + Duration::from_secs(30),
                "switchover-started telephony-timeout site1->site2"
            ),
            (secs(270), "switchover-started failback site2->site1"),
        ])
    );
    assert_eq!(h.engine.view().site.as_deref(), Some("site1"));
    // The failback held: telephony came ON, the penalty stays 1x.
    assert_eq!(
        h.engine.view().failback.map(|f| f.after),
        Some(Duration::from_secs(60))
    );
}

/// E2: manual failback never probes.
#[test]
fn e2_manual_failback_never_probes() {
    let mut h = Harness::watching_default();
    telephony_down_at(&mut h, secs(0));
    h.run_until(secs(3600));
    assert_eq!(h.probes(), []);
    assert_eq!(h.engine.view().failback, None);
}

/// E2: an unhealthy answer restarts the count: the failback comes
/// `failback-after` after the first healthy answer of the last unbroken run.
#[test]
fn e2_an_unhealthy_answer_restarts_the_count() {
    let mut h = failed_over(60);
    h.healthy[0] = true;
    h.run_until(secs(75));
    // Healthy since 30 s; down again for the probe at 80 s.
    h.healthy[0] = false;
    h.run_until(secs(85));
    assert_eq!(h.engine.view().failback.and_then(|f| f.healthy_since), None);
    h.healthy[0] = true;
    h.run_until(secs(3600));
    assert_eq!(
        h.failbacks(),
        tl(&[(secs(150), "switchover-started failback site2->site1")])
    );
}

/// E2: a failed probe (an error) and a probe still unanswered at the next
/// one restart the count too.
#[test]
fn e2_a_failed_or_unanswered_probe_restarts_the_count() {
    let mut h = failed_over(60);
    h.healthy[0] = true;
    h.run_until(secs(45));
    h.failing = vec!["probe"];
    h.run_until(secs(55)); // the probe at 50 s fails
    h.failing.clear();
    assert_eq!(h.engine.view().failback.and_then(|f| f.healthy_since), None);
    h.run_until(secs(65)); // healthy again from 60 s
    h.hold = vec!["probe"];
    h.run_until(secs(75)); // the probe at 70 s is never answered...
    h.hold.clear();
    h.run_until(secs(85)); // ...and counts as failed at 80 s; healthy from 80 s
    assert_eq!(
        h.engine.view().failback.and_then(|f| f.healthy_since),
        Some(secs(80))
    );
    h.run_until(secs(3600));
    assert_eq!(
        h.failbacks(),
        tl(&[(secs(140), "switchover-started failback site2->site1")])
    );
}

/// E2: a `failback-after` that is not a multiple of the interval: the last
/// probe comes when the run reaches it, not at the next interval.
#[test]
fn e2_the_failback_comes_when_the_run_reaches_failback_after() {
    let mut h = failed_over(25);
    h.healthy[0] = true;
    h.run_until(secs(3600));
    // The probe at 30 s found site1 down; healthy from the one at 40 s: due
    // at 65 s, when an extra probe goes out (not at the next interval, 70 s).
    assert_eq!(
        h.failbacks(),
        tl(&[(secs(65), "switchover-started failback site2->site1")])
    );
}

/// E2: while the preferred site is unreachable, probes fail and there is no
/// failback at all (the seed's timer tried every `failback-after`).
#[test]
fn e2_no_failback_while_the_preferred_site_is_unreachable() {
    let mut h = failed_over(600);
    h.healthy[0] = true;
    h.reachable = [false, true];
    h.run_until(secs(7200));
    assert_eq!(h.started_switchovers().len(), 1);
    assert!(h.probes().len() > 700);
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
}

/// `failback = auto` (60 s) with `hold_down`, each subscribe reporting the
/// site's telephony, connects taking 200 ms: started on site1 and switched
/// to site2 by an operator at 1 s; returns at 2 s.
fn switched_to_site2_with_slow_connects(hold_down: Duration) -> Harness {
    let mut cfg = Harness::default_config();
    cfg.failback = auto_failback(60);
    cfg.hold_down = hold_down;
    let mut h = Harness::new(cfg);
    h.report_telephony = true;
    h.connect_latency = Duration::from_millis(200);
    h.start();
    h.run_until(secs(1));
    h.feed(Event::OperatorSwitch { to: None });
    h.run_until(secs(2));
    h
}

/// Drives `h` (on site2, site1 healthy by probes, connects taking 200 ms)
/// to its next failback and lets it land on a dead site1: the failback
/// returns at once, `site-timeout` (30 s) after landing. Returns when the
/// failback started.
fn failback_onto_a_dead_site(h: &mut Harness) -> Timestamp {
    let from = h.now;
    let before = h.started_switchovers().len();
    h.healthy[0] = true;
    let mut t = from;
    while h.started_switchovers().len() == before {
        assert!(
            t < from + Duration::from_secs(3600),
            "no failback: {:#?}",
            h.timeline()
        );
        // Finer than the connect's 200 ms: stop before the failback lands.
        t = t + Duration::from_millis(100);
        h.run_until(t);
    }
    let (at, what) = h.started_switchovers()[before].clone();
    assert_eq!(what, "switchover-started failback site2->site1");
    // Dead again before the failback lands.
    h.healthy[0] = false;
    h.run_until(at + Duration::from_millis(200) + Duration::from_secs(31));
    at
}

/// E2: a failback whose telephony is not ON within `site-timeout` returns at
/// once (hold-down does not hold it) and doubles `failback-after`, up to 8x;
/// a failback that holds brings it back to 1x.
#[test]
fn e2_a_failback_onto_a_dead_site_returns_at_once_and_doubles_failback_after() {
    let mut h = switched_to_site2_with_slow_connects(Duration::from_secs(600));
    h.clear_log();
    let mut penalties = Vec::new();
    for _ in 0..4 {
        let landing_from = h.now;
        let at = failback_onto_a_dead_site(&mut h);
        let landed = at + Duration::from_millis(200);
        let back = landed + Duration::from_secs(30);
        let after = h.engine.view().failback.unwrap().after;
        penalties.push(after.as_secs());
        assert!(at >= landing_from, "{at} {landing_from}");
        assert!(
            h.timeline().contains(&(
                back,
                "switchover-started telephony-timeout site1->site2".into()
            )),
            "{:#?}",
            h.timeline()
        );
    }
    assert_eq!(penalties, [120, 240, 480, 480]);
    // A failback that holds: telephony ON at landing, the penalty is forgiven.
    h.healthy[0] = true;
    h.run_until(h.now + Duration::from_secs(3600));
    let view = h.engine.view();
    assert_eq!(view.site.as_deref(), Some("site1"));
    assert_eq!(view.failback.unwrap().after, Duration::from_secs(60));
}

/// E2: each failback waits `failback-after` in force from the first healthy
/// answer: after one dead landing, twice as long.
#[test]
fn e2_after_a_dead_landing_the_next_failback_waits_twice_as_long() {
    let mut h = switched_to_site2_with_slow_connects(Duration::ZERO);
    let at = failback_onto_a_dead_site(&mut h);
    let back_on_site2 =
        at + Duration::from_millis(200) + Duration::from_secs(30) + Duration::from_millis(200);
    h.clear_log();
    h.healthy[0] = true;
    h.run_until(back_on_site2 + Duration::from_secs(600));
    // The probe on arrival back on site2 found site1 dead; healthy from the
    // next one, 10 s later: due 120 s (2 x 60 s) after that, not 60 s.
    assert_eq!(
        h.failbacks(),
        tl(&[(
            back_on_site2 + Duration::from_secs(130),
            "switchover-started failback site2->site1"
        )])
    );
}

/// E2: a failback whose target refuses the connect lands back on the origin
/// (W4): the preferred site was not there after all, `failback-after` doubles.
#[test]
fn e2_a_failback_that_w4_brings_back_to_the_origin_doubles_failback_after() {
    let mut cfg = Harness::default_config();
    cfg.failback = auto_failback(60);
    let mut h = Harness::started_after(cfg, |h| h.report_telephony = true);
    h.feed(Event::OperatorSwitch { to: None });
    h.hold = vec!["connect"];
    h.run_until(secs(60));
    h.hold.clear();
    assert_eq!(
        h.started_switchovers().last().map(|s| s.1.as_str()),
        Some("switchover-started failback site2->site1")
    );
    h.reply("connect", Err("refused".into()));
    let view = h.engine.view();
    assert_eq!(view.site.as_deref(), Some("site2"));
    assert_eq!(view.failback.unwrap().after, Duration::from_secs(120));
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
        [
            tl(&[(secs(30), "switchover-suppressed telephony-timeout Paused")]),
            switched(secs(100), "telephony-timeout site1->site2")
        ]
        .concat()
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
        [
            tl(&[(secs(0), "switchover-suppressed graceful-shutdown Paused")]),
            switched(secs(5), "operator site1->site2")
        ]
        .concat()
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
        let s = h.started_switchovers();
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
    assert_eq!(
        jittered(3).started_switchovers(),
        jittered(3).started_switchovers()
    );
    assert_ne!(
        jittered(3).started_switchovers(),
        jittered(4).started_switchovers()
    );
}

#[test]
fn e4_operator_switchovers_are_not_jittered() {
    let mut cfg = Harness::default_config();
    cfg.switchover_jitter = Duration::from_secs(20);
    let mut h = Harness::watching(cfg);
    h.run_until(secs(3));
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(h.started_switchovers()[0].0, secs(3));
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
    assert!(h.started_switchovers().is_empty());
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
    h.connect_times()
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

/// A config that logs the agent in (W5) on DN 7001, queue 8001.
fn login_config() -> EngineConfig {
    let mut cfg = Harness::default_config();
    cfg.login = Some(LoginConfig {
        dn: "7001".into(),
        queue: Some("8001".into()),
        workmode: None,
        reasons: Default::default(),
    });
    cfg
}

/// W5: off by default: no login anywhere.
#[test]
fn w5_no_login_by_default() {
    let mut h = Harness::watching_default();
    h.feed(Event::OperatorSwitch { to: None });
    let mut h2 = Harness::new(Harness::default_config());
    h2.start();
    for h in [&h, &h2] {
        assert!(!h
            .command_names()
            .iter()
            .any(|(_, c)| c.starts_with("login")));
    }
}

/// W5: after connecting and subscribing, at startup and at the target of a
/// switchover, the agent is logged in on its DN on that connection; the
/// switchover completes once the login is answered.
#[test]
fn w5_logs_in_after_subscribing_at_startup_and_after_a_switchover() {
    let mut h = Harness::started_after(login_config(), |h| h.hold = vec!["login"]);
    assert_eq!(h.engine.view().phase, PhaseKind::LoggingIn);
    h.hold.clear();
    h.reply("login", Ok(Reply::Done));
    assert_eq!(h.engine.view().phase, PhaseKind::Watching);
    h.feed(Event::OperatorSwitch { to: None });
    let names: Vec<String> = h.command_names().into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        names[names.len() - 6..],
        [
            "subscribe 1 x4",
            "login 1",
            "kill_factory",
            "connect site2 on-demand",
            "subscribe 2 x4",
            "login 2",
        ]
    );
    let login =
        first_match!(h.commands().into_iter().rev(), item @ CommandKind::Login { .. } => item)
            .unwrap();
    assert_eq!(
        login,
        CommandKind::Login {
            epoch: 2,
            dn: "7001".into(),
            queue: Some("8001".into()),
            workmode: None,
            reasons: Default::default(),
        }
    );
    assert_eq!(
        h.switchovers().last().map(|s| s.1.as_str()),
        Some("switchover-completed operator site1->site2")
    );
}

/// W5: a login refused at the target is a failed switchover (W4): alarm,
/// back to the origin, retried with backoff until the target takes it.
#[test]
fn w5_a_failed_login_is_a_failed_switchover() {
    let mut h = Harness::started_after(login_config(), |h| h.report_telephony = true);
    h.clear_log();
    h.login_fails = [false, true];
    // site1's telephony is down, and says so again at each (re)connect.
    h.healthy[0] = false;
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    assert_eq!(
        h.timeline()[..5],
        tl(&[
            (secs(0), "alarm-raised telephony-service-down"),
            (
                secs(30),
                "switchover-started telephony-timeout site1->site2"
            ),
            (secs(30), "alarm-cleared telephony-service-down"),
            (secs(30), "switchover-failed site2"),
            (secs(30), "alarm-raised switchover-failed"),
        ])
    );
    let error =
        first_match!(h.decisions(), Decision::SwitchoverFailed { error, .. } => error).unwrap();
    assert_eq!(error, "login failed: login refused");
    assert_eq!(
        h.switchovers().last().map(|s| s.1.as_str()),
        Some("switchover-completed telephony-timeout site1->site1")
    );
    // The target takes logins again: the next try (D1 again on the origin)
    // gets there and clears the alarm.
    h.login_fails = [false, false];
    h.run_until(secs(200));
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
    assert_eq!(
        h.switchovers().last().map(|s| s.1.as_str()),
        Some("switchover-completed telephony-timeout site1->site2")
    );
    assert!(!h.engine.view().alarms.contains(&Alarm::SwitchoverFailed));
}

/// W5 at startup: a login refused at the first site is a failed attempt
/// there: the other site is tried, as for a refused connect; S4's
/// relocation back to the preferred site fails the same way (S4's alarm).
#[test]
fn w5_a_login_refused_at_startup_tries_the_other_site() {
    let h = Harness::started_after(login_config(), |h| h.login_fails = [true, false]);
    h.assert_s4_relocation_refused(&[(secs(0), "startup-connected site1")]);
}

/// E2 with a backend that answers probes a few ms after they are sent (a
/// real one: ail-bridge connects to the CS Proxy and runs a command): the
/// extra probe at the end of a run of health must not count the probe still
/// in flight as failed. (It did: the run broke at its very end, every time,
/// and the agent never failed back.)
#[test]
fn e2_probes_answered_a_little_later_still_fail_back() {
    let mut cfg = Harness::default_config();
    cfg.failback = auto_failback(3);
    cfg.failback_probe_interval = Duration::from_secs(1);
    let mut h = Harness::started_after(cfg, |h| h.report_telephony = true);
    h.healthy[0] = false;
    h.telephony(ServiceState::Off);
    h.run_until(secs(30));
    h.hold.push("probe");
    let latency = Duration::from_millis(4);
    let (mut t, mut answered) = (secs(30), 0);
    while t < secs(45) {
        t = t + Duration::from_millis(1);
        h.run_until(t);
        let sent: Vec<Timestamp> = h
            .commands()
            .into_iter()
            .filter(|(at, c)| *at > secs(30) && matches!(c, CommandKind::Probe { .. }))
            .map(|(at, _)| at)
            .collect();
        while answered < sent.len() && t >= sent[answered] + latency {
            h.reply(
                "probe",
                Ok(Reply::Probed {
                    healthy: true,
                    detail: String::new(),
                }),
            );
            answered += 1;
        }
    }
    let failback = h
        .switchovers()
        .into_iter()
        .find(|(_, d)| d.starts_with("switchover-started failback"))
        .expect("a failback after 3 s of healthy answers");
    // Healthy from the answer at 31.004 s: due at 34.004 s, when the
    // probe sent at 34 s answers.
    assert_eq!(failback.0, secs(34) + latency);
}

//! S1–S5: startup.
mod common;
use common::*;
use drctl_policy::*;
use std::time::Duration;

/// S1–S3's commands at 0: connect to `site`, read the Person, then both
/// AIL Applications.
fn connect_and_read(site: &str) -> Vec<(Timestamp, String)> {
    let connect = format!("connect {site}");
    tl(&[
        (secs(0), &connect),
        (secs(0), "read_person_sites"),
        (secs(0), "read_application AIL_site1"),
        (secs(0), "read_application AIL_site2"),
    ])
}

#[test]
fn s1_connects_to_first_site_then_reads_configuration() {
    let h = Harness::started(Harness::default_config());
    assert_eq!(
        h.command_names(),
        [
            connect_and_read("site1"),
            tl(&[(secs(0), "subscribe 1 x4")])
        ]
        .concat()
    );
    assert_eq!(h.timeline(), tl(&[(secs(0), "startup-connected site1")]));
    let view = h.engine.view();
    assert_eq!(view.phase, PhaseKind::Watching);
    assert_eq!(view.site.as_deref(), Some("site1"));
    assert_eq!(view.epoch, Some(1));
}

#[test]
fn s1_first_site_unreachable_tries_the_other() {
    let mut h = Harness::new(Harness::default_config());
    h.reachable = [false, true];
    h.preferred_app = "AIL_site2".into();
    h.connect_latency = Duration::from_millis(200);
    h.start().run_until(secs(1));
    let names = h.command_names();
    assert_eq!(names[0], (ms(0), "connect site1".to_string()));
    assert_eq!(names[1], (ms(200), "connect site2".to_string()));
    assert_eq!(h.timeline(), tl(&[(ms(400), "startup-connected site2")]));
}

/// Times at which a connect to `site1` was issued.
fn connect_times(h: &Harness) -> Vec<Timestamp> {
    h.command_names()
        .into_iter()
        .filter(|(_, n)| n == "connect site1")
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn s1_both_sites_down_backoff_grows_is_capped_and_jittered() {
    let mut h = Harness::new(Harness::default_config());
    h.reachable = [false, false];
    h.connect_latency = Duration::from_millis(100);
    h.start().run_until(secs(1200));
    let rounds = connect_times(&h);
    assert!(rounds.len() > 15, "kept retrying: {} rounds", rounds.len());
    // Gap between rounds = 200 ms of two refused connects + the backoff delay.
    let delays: Vec<f64> = rounds
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() - 0.2)
        .collect();
    for (n, d) in delays.iter().enumerate() {
        let base = (1.0 * 2f64.powi(n as i32)).min(60.0);
        assert!(
            *d >= base * 0.8 - 1e-9 && *d < base * 1.2 + 1e-9,
            "round {n}: delay {d} outside {base}±20%"
        );
    }
    // Never a tight loop: every delay at least 0.8 s, capped near 60 s.
    assert!(delays.iter().all(|d| *d >= 0.8 && *d < 72.0));
    // Jitter really varies the delays.
    let capped: Vec<&f64> = delays.iter().skip(7).collect();
    assert!(capped.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-6));
    // Every connect in a round alternates the two sites.
    let names = h.command_names();
    assert!(names.windows(2).all(|w| w[0].1 != w[1].1));
}

#[test]
fn s1_backoff_is_reproducible_from_the_seed() {
    let run = |seed| {
        let mut cfg = Harness::default_config();
        cfg.seed = seed;
        let mut h = Harness::new(cfg);
        h.reachable = [false, false];
        h.start().run_until(secs(600));
        connect_times(&h)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn s1_startup_gives_up_after_startup_timeout() {
    let mut cfg = Harness::default_config();
    cfg.startup_timeout = Some(Duration::from_secs(10));
    let mut h = Harness::new(cfg);
    h.reachable = [false, false];
    h.start().run_until(secs(100));
    assert_eq!(h.timeline(), tl(&[(secs(10), "startup-failed")]));
    assert_eq!(h.engine.view().phase, PhaseKind::GaveUp);
    assert_eq!(h.engine.poll_timeout(), None);
    assert!(h.commands().iter().all(|(t, _)| *t < secs(10)));
}

#[test]
fn s2_s3_reads_person_then_preferred_application() {
    let h = Harness::started(Harness::default_config());
    let cmds = h.commands();
    assert_eq!(
        cmds[1].1,
        CommandKind::ReadPersonSites {
            username: "agent007".into()
        }
    );
    assert_eq!(
        cmds[2].1,
        CommandKind::ReadApplication {
            app_name: "AIL_site1".into()
        }
    );
    let view = h.engine.view();
    assert_eq!(view.preferred_site.as_deref(), Some("site1"));
    assert_eq!(view.site_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        view.site_sip_register_timeout,
        Some(Duration::from_secs(60))
    );
}

#[test]
fn s3_config_overrides_win_over_the_application_dr_options() {
    let mut cfg = Harness::default_config();
    cfg.site_timeout = Some(Duration::from_secs(5));
    cfg.site_sip_register_timeout = Some(Duration::ZERO);
    let h = Harness::started(cfg);
    let view = h.engine.view();
    assert_eq!(view.site_timeout, Some(Duration::from_secs(5)));
    assert_eq!(view.site_sip_register_timeout, Some(Duration::ZERO));
}

#[test]
fn s3_preferred_application_cs_proxy_is_used_for_relocation() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site2".into();
    cfg.sites[0].cs_proxy = "stale-local:1".into();
    let h = Harness::started(cfg);
    let connects: Vec<String> = h.connects().into_iter().map(|c| c.1).collect();
    assert_eq!(connects, vec!["csproxy2:7000", "csproxy1:7000"]);
}

#[test]
fn s4_relocates_from_secondary_to_preferred() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site2".into();
    let h = Harness::started(cfg);
    assert_eq!(
        h.command_names(),
        [
            connect_and_read("site2"),
            tl(&[
                (secs(0), "kill_factory"),
                (secs(0), "connect site1 on-demand"),
                (secs(0), "subscribe 2 x4"),
            ])
        ]
        .concat()
    );
    assert_eq!(
        h.timeline(),
        [
            tl(&[(secs(0), "startup-connected site2")]),
            switched(secs(0), "startup-relocate site2->site1")
        ]
        .concat()
    );
}

#[test]
fn s4_preferred_unreachable_stays_and_raises_alarm() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site2".into();
    let h = Harness::started_after(cfg, |h| h.reachable = [false, true]);
    h.assert_s4_relocation_refused(&[]);
    assert_eq!(
        h.engine.view().alarms,
        vec![Alarm::PreferredSiteUnreachable]
    );
}

#[test]
fn s5_cached_preferred_site_is_tried_first_but_s2_to_s4_still_run() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site1".into();
    cfg.cached_preferred = Some("site2".into());
    let h = Harness::started(cfg);
    // The cache picked site2 first; the Person object says site1: relocate.
    let names = h.command_names();
    assert_eq!(names[0].1, "connect site2");
    assert_eq!(names[1].1, "read_person_sites");
    assert_eq!(
        h.switchovers().last().map(|s| s.1.clone()).as_deref(),
        Some("switchover-completed startup-relocate site2->site1")
    );
}

#[test]
fn s5_no_cache_uses_the_configured_first_site() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site2".into();
    let h = Harness::started(cfg);
    assert_eq!(h.command_names()[0].1, "connect site2");
}

#[test]
fn s2_unknown_preferred_application_stays_and_alarms() {
    let h = Harness::started_after(Harness::default_config(), |h| {
        h.preferred_app = "AIL_nowhere".into()
    });
    // The application's CS Proxy (csproxy2:7000) identifies the site.
    assert_eq!(h.engine.view().preferred_site.as_deref(), Some("site2"));

    let mut h = Harness::new(Harness::default_config());
    h.preferred_app = "AIL_nowhere".into();
    h.engine = Engine::new({
        let mut c = Harness::default_config();
        c.sites[1].cs_proxy = "elsewhere:1".into();
        c
    })
    .unwrap();
    h.start();
    assert!(h
        .timeline()
        .contains(&(secs(0), "alarm-raised preferred-site-unknown".into())));
    assert_eq!(h.engine.view().phase, PhaseKind::Watching);
}

#[test]
fn reconnects_like_startup_after_the_backend_disconnects() {
    let mut h = Harness::started(Harness::default_config());
    h.clear_log();
    h.run_until(secs(5));
    h.backend(BackendEvent::Disconnected);
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(5), "alarm-raised backend-disconnected"),
            (secs(5), "startup-connected site1"),
            (secs(5), "alarm-cleared backend-disconnected"),
        ])
    );
    assert_eq!(h.engine.view().epoch, Some(2));
}

#[test]
fn shutdown_sends_shutdown_and_goes_quiet() {
    let mut h = Harness::started(Harness::default_config());
    h.clear_log();
    h.telephony(ServiceState::Off);
    h.feed(Event::Shutdown);
    assert_eq!(h.command_names(), tl(&[(secs(0), "shutdown")]));
    assert_eq!(h.engine.poll_timeout(), None);
    assert_eq!(h.engine.view().phase, PhaseKind::Stopped);
}

#[test]
fn s3_preferred_site_is_found_by_the_application_name_read_back() {
    // The Person object names an alias; the Application read answers with
    // site2's name and a CS Proxy no local site knows: site2 is preferred,
    // reached through the application's CS Proxy.
    let mut h = Harness::new(Harness::default_config());
    h.preferred_app = "AIL_alias".into();
    h.hold = vec!["read_application"];
    h.start();
    h.hold.clear();
    h.reply(
        "read_application",
        Ok(Reply::Application {
            app_name: "AIL_site2".into(),
            cs_proxy: "csproxy2-new:7000".into(),
            site_timeout: Some(Duration::from_secs(30)),
            site_sip_register_timeout: Some(Duration::from_secs(60)),
            options: Default::default(),
        }),
    );
    assert_eq!(
        h.timeline(),
        [
            tl(&[(secs(0), "startup-connected site1")]),
            switched(secs(0), "startup-relocate site1->site2")
        ]
        .concat()
    );
    let proxies: Vec<String> = h.connects().into_iter().map(|c| c.1).collect();
    assert_eq!(proxies, vec!["csproxy1:7000", "csproxy2-new:7000"]);
}

/// S3: both Applications are read; a switchover to the secondary goes to
/// the CS Proxy and Application its Application names, not the local
/// `[[sites]]` entry (ops moved its CS Proxy).
#[test]
fn s3_a_switchover_goes_to_the_cs_proxy_the_targets_application_names() {
    let mut h = Harness::new(Harness::default_config());
    h.app_proxies
        .insert("AIL_site2".into(), "csp2-moved:7001".into());
    h.start();
    assert_eq!(
        h.command_names()[2..4],
        tl(&[
            (secs(0), "read_application AIL_site1"),
            (secs(0), "read_application AIL_site2"),
        ])
    );
    h.feed(Event::OperatorSwitch { to: None });
    assert_eq!(
        h.connects(),
        [
            ("site1".into(), "csproxy1:7000".into(), "AIL_site1".into()),
            ("site2".into(), "csp2-moved:7001".into(), "AIL_site2".into()),
        ]
    );
    let view = h.engine.view();
    assert_eq!(view.sites[1].cs_proxy, "csp2-moved:7001");
    assert_eq!(view.sites[1].source, SiteSource::Application);
    assert!(!h.timeline().iter().any(|(_, d)| d.contains("fallback")));
}

/// S3: the local `[[sites]]` only bootstrap S1; a reconnect after a lost
/// session goes where the Application says.
#[test]
fn s3_local_sites_bootstrap_s1_and_the_application_wins_after() {
    let mut cfg = Harness::default_config();
    cfg.sites[0].cs_proxy = "old-local:7000".into();
    let mut h = Harness::new(cfg);
    h.start();
    h.run_until(secs(5));
    h.backend(BackendEvent::Disconnected);
    let proxies: Vec<String> = h.connects().into_iter().map(|c| c.1).collect();
    assert_eq!(proxies, ["old-local:7000", "csproxy1:7000"]);
}

/// S3: an Application that cannot be read: its site is reached through the
/// local `[[sites]]` entry, with an `application-fallback` decision.
#[test]
fn s3_unreadable_secondary_application_falls_back_to_the_local_site() {
    let mut h = Harness::started_after(Harness::default_config(), |h| {
        h.unreadable_apps = vec!["AIL_site2".into()]
    });
    assert_eq!(
        h.timeline(),
        tl(&[
            (secs(0), "startup-connected site1"),
            (secs(0), "application-fallback site2"),
        ])
    );
    let fallback =
        first_match!(h.decisions(), Decision::ApplicationFallback { error, .. } => error).unwrap();
    assert!(fallback.contains("AIL_site2: cannot be read"), "{fallback}");
    h.feed(Event::OperatorSwitch { to: None });
    let last = h.connects().pop().unwrap();
    assert_eq!(last.1, "csproxy2:7000");
    let view = h.engine.view();
    assert_eq!(view.sites[1].source, SiteSource::Local);
    assert_eq!(view.sites[0].source, SiteSource::Application);
    // The DR options still come from the preferred Application.
    assert_eq!(view.site_timeout_source, Some(DrOptionSource::Application));
}

/// S3: the preferred Application cannot be read but the Person names it
/// and a local site has it: that site is preferred, reached locally, and
/// the DR options are the local ones (none here: defaults, off).
#[test]
fn s3_unreadable_preferred_application_falls_back_without_its_dr_options() {
    let mut cfg = Harness::default_config();
    cfg.first_site = "site2".into();
    let h = Harness::started_after(cfg, |h| h.unreadable_apps = vec!["AIL_site1".into()]);
    assert_eq!(
        h.timeline(),
        [
            tl(&[
                (secs(0), "startup-connected site2"),
                (secs(0), "application-fallback site1")
            ]),
            switched(secs(0), "startup-relocate site2->site1")
        ]
        .concat()
    );
    let view = h.engine.view();
    assert_eq!(view.preferred_site.as_deref(), Some("site1"));
    assert_eq!(view.site_timeout, None);
    assert_eq!(view.site_timeout_source, Some(DrOptionSource::Default));
    assert_eq!(
        view.site_sip_register_timeout_source,
        Some(DrOptionSource::Default)
    );
}

/// S3: where each DR option came from, for `status`: unknown before S3,
/// then the Application's, or a local override.
#[test]
fn s3_the_view_says_where_each_dr_option_came_from() {
    let mut cfg = Harness::default_config();
    cfg.site_timeout = Some(Duration::from_secs(5));
    let mut h = Harness::new(cfg);
    assert_eq!(h.engine.view().site_timeout_source, None);
    h.start();
    let view = h.engine.view();
    assert_eq!(view.site_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        view.site_timeout_source,
        Some(DrOptionSource::LocalOverride)
    );
    assert_eq!(
        view.site_sip_register_timeout,
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        view.site_sip_register_timeout_source,
        Some(DrOptionSource::Application)
    );
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["site_timeout_source"], "local-override");
    assert_eq!(json["site_sip_register_timeout_source"], "application");
    assert_eq!(json["sites"][1]["source"], "application");
}

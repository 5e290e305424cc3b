//! E5: Configuration Server directives, followed live (README "E5").

mod common;
use common::*;
use drctl_policy::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn config(directives: bool) -> EngineConfig {
    let mut cfg = Harness::default_config();
    cfg.directives = directives.then(DirectiveNames::default);
    cfg
}

fn changed(object: ConfigObject, name: &str, option: &str, value: Option<&str>) -> BackendEvent {
    BackendEvent::ConfigChanged {
        object,
        name: name.into(),
        section: "dr".into(),
        option: option.into(),
        value: value.map(Into::into),
    }
}

fn evacuate(site_app: &str, value: Option<&str>) -> BackendEvent {
    changed(ConfigObject::Application, site_app, "evacuate", value)
}

/// `evacuate = true` on site1's Application moves the agent to site2 at once
/// (no jitter configured), and while it is set an automatic failback never
/// goes back; clearing it lets E2 fail back on its probes.
#[test]
fn e5_an_evacuated_site_is_left_and_kept_away_from_until_cleared() {
    let mut cfg = config(true);
    cfg.failback = auto_failback(20);
    let mut h = Harness::started_after(cfg, |h| h.report_telephony = true);
    h.clear_log();
    h.run_until(secs(10));
    h.backend(evacuate("AIL_site1", Some("true")));
    h.run_until(secs(100));
    // Probes of site1 find it healthy all along: only the directive holds the failback.
    h.backend(evacuate("AIL_site1", Some("false")));
    h.run_until(secs(200));
    let switchovers = h.switchovers();
    assert_eq!(
        switchovers
            .iter()
            .map(|(t, d)| (*t, d.as_str()))
            .collect::<Vec<_>>()[..2],
        [
            (secs(10), "switchover-started directive site1->site2"),
            (secs(10), "switchover-completed directive site1->site2"),
        ],
        "{switchovers:?}"
    );
    let failback = switchovers
        .iter()
        .find(|(_, d)| d.starts_with("switchover-started failback"))
        .expect("a failback once the directive is cleared");
    assert!(failback.0 >= secs(100), "{switchovers:?}");
    assert_eq!(switchovers.len(), 4, "{switchovers:?}");
}

/// Directives are drctl's own addition: off by default, a change is ignored.
#[test]
fn e5_is_off_by_default() {
    let mut h = Harness::watching(config(false));
    h.backend(evacuate("AIL_site1", Some("true")));
    h.backend(changed(
        ConfigObject::Person,
        "agent007",
        "site1-application",
        Some("AIL_site2"),
    ));
    h.run_until(secs(60));
    assert!(h.switchovers().is_empty(), "{:?}", h.switchovers());
}

/// The Person object naming the other site's Application as preferred
/// relocates the agent there, reason `preferred-changed`, after E4 jitter;
/// another agent's Person, another option or an unknown Application do
/// nothing.
#[test]
fn e5_a_new_preferred_site_relocates_the_agent_after_jitter() {
    let mut cfg = config(true);
    cfg.switchover_jitter = Duration::from_secs(30);
    cfg.seed = 7;
    let mut h = Harness::watching(cfg);
    h.run_until(secs(5));
    for event in [
        changed(
            ConfigObject::Person,
            "someone-else",
            "site1-application",
            Some("AIL_site2"),
        ),
        changed(
            ConfigObject::Person,
            "agent007",
            "site2-application",
            Some("AIL_site2"),
        ),
        changed(
            ConfigObject::Person,
            "agent007",
            "site1-application",
            Some("AIL_nowhere"),
        ),
        changed(
            ConfigObject::Application,
            "AIL_site1",
            "site-timeout",
            Some("5"),
        ),
    ] {
        h.backend(event);
    }
    h.run_until(secs(60));
    assert!(h.switchovers().is_empty(), "{:?}", h.switchovers());
    h.backend(changed(
        ConfigObject::Person,
        "agent007",
        "site1-application",
        Some("AIL_site2"),
    ));
    h.run_until(secs(120));
    let started = h.started_switchovers();
    assert_eq!(started.len(), 1, "{started:?}");
    let (t, d) = &started[0];
    assert_eq!(d, "switchover-started preferred-changed site1->site2");
    assert!(
        *t >= secs(60) && *t < secs(90),
        "within the jitter bound: {t:?}"
    );
    assert_eq!(h.engine.view().site.as_deref(), Some("site2"));
}

/// A relocation to an unreachable new preferred site is tried once, like
/// S4: W4 brings the agent back and it stays.
#[test]
fn e5_a_relocation_is_tried_once() {
    let mut h = Harness::watching(config(true));
    h.reachable[1] = false;
    h.backend(changed(
        ConfigObject::Person,
        "agent007",
        "site1-application",
        Some("AIL_site2"),
    ));
    h.run_until(secs(300));
    let started = h.started_switchovers().len();
    assert_eq!(started, 1, "{:?}", h.switchovers());
    assert_eq!(h.engine.view().site.as_deref(), Some("site1"));
}

/// Started at `first_site` with directives on or off, `failback = auto`
/// (20 s), each subscribe reporting telephony, and `dr/evacuate = true` on
/// site1's Application before startup; run to 300 s.
fn started_with_site1_evacuated(directives: bool, first_site: &str) -> Harness {
    let mut cfg = config(directives);
    cfg.first_site = first_site.into();
    cfg.failback = auto_failback(20);
    let mut h = Harness::new(cfg);
    h.report_telephony = true;
    h.app_options = BTreeMap::from([(
        "AIL_site1".to_owned(),
        BTreeMap::from([("dr/evacuate".to_owned(), "true".to_owned())]),
    )]);
    h.start();
    h.run_until(secs(300));
    h
}

/// An evacuation set while drctl was down is read with the Applications at
/// startup (S3): an agent starting at the evacuated preferred site leaves it
/// once watching, and no failback takes it back while the option stays set.
#[test]
fn e5_an_evacuation_set_before_startup_is_read_with_the_applications() {
    let h = started_with_site1_evacuated(true, "site1");
    let switchovers = h.switchovers();
    assert_eq!(
        switchovers
            .iter()
            .map(|(_, d)| d.as_str())
            .collect::<Vec<_>>(),
        [
            "switchover-started directive site1->site2",
            "switchover-completed directive site1->site2",
        ],
        "{switchovers:?}"
    );
}

/// S4 never relocates to an evacuated preferred site: an agent that starts
/// at site2 stays there (and E2 does not fail back while it is set); with
/// directives off the option is not read and S4 relocates as before.
#[test]
fn e5_startup_does_not_relocate_to_an_evacuated_preferred_site() {
    for directives in [true, false] {
        let h = started_with_site1_evacuated(directives, "site2");
        let switchovers = h.switchovers();
        let names: Vec<&str> = switchovers.iter().map(|(_, d)| d.as_str()).collect();
        if directives {
            assert!(names.is_empty(), "{switchovers:?}");
            assert_eq!(h.connected_site, Some(1));
        } else {
            assert_eq!(
                names[..1],
                ["switchover-started startup-relocate site2->site1"],
                "{switchovers:?}"
            );
        }
    }
}

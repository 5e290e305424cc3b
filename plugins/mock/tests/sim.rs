//! The simulated deployment answers as SPEC §6 says, and every shipped scenario parses.

use drctl_plugin_api::messages::{
    Command, Event, Input, Output, Password, Reply, Service, ServiceState,
};
use drctl_plugin_mock::{Scenario, Sim, SiteInfo};
use std::path::Path;

fn sites() -> Vec<SiteInfo> {
    (1..=2)
        .map(|n| SiteInfo {
            name: format!("site{n}"),
            cs_proxy: format!("csproxy{n}:7000"),
            app_name: format!("AIL_site{n}"),
        })
        .collect()
}

fn names() -> Vec<String> {
    sites().into_iter().map(|s| s.name).collect()
}

fn cmd(id: u64, command: Command) -> Input {
    Input::Command {
        session: "a".into(),
        id,
        command,
    }
}

fn connect(site: &str) -> Command {
    Command::Connect {
        site: site.into(),
        cs_proxy: String::new(),
        app_name: String::new(),
        username: "u".into(),
        password: Password::new("p"),
        on_demand_loading: false,
    }
}

/// Everything the sim emits up to `now`.
fn drain(sim: &mut Sim, now: u64) -> Vec<Output> {
    std::iter::from_fn(|| sim.poll_output(now)).collect()
}

const MS: u64 = 1_000_000;

#[test]
fn every_shipped_scenario_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        Scenario::load(&path, &names()).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 15, "{n} scenarios");
}

#[test]
fn connect_answers_after_latency_and_unreachable_sites_refuse() {
    let text = "[deployment]\npreferred-site = \"site1\"\nconnect-latency = \"200ms\"\n[sites.site2]\nreachable = false\n";
    let sc = Scenario::parse(text, Path::new("t.toml"), &names()).unwrap();
    let mut sim = Sim::new(sc, sites(), "7001".into());
    sim.handle(0, cmd(1, connect("site2"))).unwrap();
    assert!(drain(&mut sim, 199 * MS).is_empty());
    assert_eq!(sim.poll_timeout(), Some(200 * MS));
    let out = drain(&mut sim, 200 * MS);
    assert!(matches!(
        &out[..],
        [Output::Result {
            id: 1,
            result: Err(_),
            ..
        }]
    ));
    sim.handle(200 * MS, cmd(2, connect("site1"))).unwrap();
    let out = drain(&mut sim, 400 * MS);
    assert!(matches!(
        &out[..],
        [Output::Result {
            id: 2,
            result: Ok(Reply::Connected { epoch: 1 }),
            ..
        }]
    ));
}

#[test]
fn subscribe_reports_statuses_then_dn_back_after_register_delay_and_scenario_changes() {
    let text = "[deployment]\npreferred-site = \"site1\"\nconnect-latency = \"0s\"\nregister-delay = \"2s\"\n\
                [[events]]\nat = \"10s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n\
                [[events]]\nat = \"11s\"\nsite = \"site2\"\nset = { statistic = \"off\" }\n";
    let sc = Scenario::parse(text, Path::new("t.toml"), &names()).unwrap();
    let mut sim = Sim::new(sc, sites(), "7001".into());
    sim.handle(0, cmd(1, connect("site1"))).unwrap();
    drain(&mut sim, 0);
    sim.handle(
        0,
        cmd(
            2,
            Command::Subscribe {
                epoch: 1,
                listeners: vec![],
            },
        ),
    )
    .unwrap();
    let out = drain(&mut sim, 0);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(matches!(
        out[1],
        Output::Event {
            event: Event::ServiceStatus {
                service: Service::Telephony,
                status: ServiceState::On
            },
            ..
        }
    ));
    let out = drain(&mut sim, 2_000 * MS);
    assert!(matches!(
        &out[..],
        [Output::Event {
            event: Event::DnBackInService { .. },
            epoch: 1,
            ..
        }]
    ));
    let out = drain(&mut sim, 20_000 * MS);
    // site1's change is heard, site2's is not (not connected there).
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(
        out[0],
        Output::Event {
            event: Event::ServiceStatus {
                service: Service::Telephony,
                status: ServiceState::Off
            },
            ..
        }
    ));
}

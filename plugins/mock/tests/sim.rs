//! The simulated deployment answers as SPEC §6 says, and every shipped scenario parses.

use drctl_plugin_api::messages::{
    compact, Command, Event, Input, Output, Reply, Service, ServiceState,
};
use drctl_plugin_mock::{Scenario, Sim, SiteInfo};
use std::path::Path;
use wire::read_application;

#[path = "../../../plugin-api/tests/support/wire.rs"]
mod wire;

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
    wire::input("a", id, command)
}

fn connect(site: &str) -> Command {
    connect_at(site, "")
}

fn connect_at(site: &str, cs_proxy: &str) -> Command {
    wire::connect(site, cs_proxy, "p")
}

fn subscribe(epoch: u64) -> Command {
    wire::subscribe(epoch, vec![])
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
    sim.handle(0, cmd(2, subscribe(1))).unwrap();
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

// ---- fleet mode: many sessions, the capacity model, event targeting ----------

/// Drives a [`Sim`] like the host does: steps to each due time, drains
/// the outputs, and (if `subscribe`) subscribes every new connection at once.
struct Driver {
    sim: Sim,
    now: u64,
    next_id: u64,
    subscribe: bool,
    /// Every output, with the time it came out.
    seen: Vec<(u64, Output)>,
    /// Poll in the compact encoding (`Sim::poll_output_compact`), as a
    /// host that took it up does, and read each output back.
    compact: bool,
}

impl Driver {
    fn new(scenario: &str, subscribe: bool) -> Driver {
        let sc = Scenario::parse(scenario, Path::new("t.toml"), &names()).unwrap();
        Driver {
            sim: Sim::new(sc, sites(), "7001".into()),
            now: 0,
            next_id: 0,
            subscribe,
            seen: Vec::new(),
            compact: false,
        }
    }

    /// The next output now, polled as [`Driver::compact`] says.
    fn poll(&mut self) -> Option<Output> {
        if !self.compact {
            return self.sim.poll_output(self.now);
        }
        let mut bytes = Vec::new();
        let polled = self.sim.poll_output_compact(self.now, &mut bytes).unwrap();
        assert_eq!(polled, !bytes.is_empty());
        polled.then(|| compact::decode_output(&bytes).unwrap())
    }

    /// Sends a command from `session` now.
    fn send(&mut self, session: &str, command: Command) {
        self.next_id += 1;
        let input = wire::input(session, self.next_id, command);
        self.sim.handle(self.now, input).unwrap();
    }

    /// Runs to `t` (inclusive); returns the outputs of this stretch.
    fn run_until(&mut self, t: u64) -> Vec<(u64, Output)> {
        let start = self.seen.len();
        loop {
            while let Some(out) = self.poll() {
                if let Output::Result {
                    session,
                    result: Ok(Reply::Connected { epoch }),
                    ..
                } = &out
                {
                    if self.subscribe {
                        let session = session.clone();
                        self.send(&session, subscribe(*epoch));
                    }
                }
                self.seen.push((self.now, out));
            }
            match self.sim.poll_timeout() {
                Some(due) if due <= t => self.now = self.now.max(due),
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self.seen[start..].to_vec()
    }
}

/// One output as a line: `<ms> <session> <what>`; subscribe answers are `ok`.
fn line(t: u64, out: &Output) -> String {
    let what = match out {
        Output::Result { result, .. } => match result {
            Ok(Reply::Connected { epoch }) => format!("connected {epoch}"),
            Ok(_) => "ok".into(),
            Err(e) => format!("error {}", e.message),
        },
        Output::Event { epoch, event, .. } => {
            let e = match event {
                Event::ServiceStatus { service, status } => format!("{service:?} {status:?}"),
                Event::AgentLogout { reason, .. } => format!("logout {reason:?}"),
                Event::DnBackInService { .. } => "dn-back".into(),
                Event::DnOutOfService { .. } => "dn-out".into(),
                Event::Disconnected => "disconnected".into(),
                Event::ConfigChanged {
                    name,
                    option,
                    value,
                    ..
                } => format!("config {name} {option}={value:?}"),
            };
            format!("@{epoch} {e}")
        }
        other => format!("{other:?}"),
    };
    let session = match out {
        Output::Result { session, .. } | Output::Event { session, .. } => session.as_str(),
        _ => "?",
    };
    format!("{} {session} {what}", t / MS)
}

fn lines(outs: &[(u64, Output)]) -> Vec<String> {
    outs.iter().map(|(t, o)| line(*t, o)).collect()
}

/// Lines without the subscribe answers and the statuses a login reports.
fn notable(outs: &[(u64, Output)]) -> Vec<String> {
    lines(outs)
        .into_iter()
        .filter(|l| !l.ends_with(" ok") && !l.contains(" On"))
        .collect()
}

const DEPLOYMENT: &str = "[deployment]\npreferred-site = \"site1\"\nconnect-latency = \"200ms\"\nregister-delay = \"2s\"\n";

#[test]
fn sessions_have_independent_connections_and_epochs() {
    let mut d = Driver::new(DEPLOYMENT, false);
    d.send("agent-a", connect("site1"));
    d.send("agent-b", connect("site2"));
    assert_eq!(
        lines(&d.run_until(200 * MS)),
        ["200 agent-a connected 1", "200 agent-b connected 2"]
    );
    // One session's epoch is not another's.
    d.send("agent-b", subscribe(1));
    d.send("agent-a", subscribe(1));
    d.send("agent-b", subscribe(2));
    let out = lines(&d.run_until(200 * MS));
    assert_eq!(
        out[0],
        "200 agent-b error epoch 1 is not the current connection (2)"
    );
    assert_eq!(
        out[1..5].iter().filter(|l| l.contains("agent-a")).count(),
        4
    );
    assert_eq!(out[5..].iter().filter(|l| l.contains("agent-b")).count(), 4);
    // agent-a's kill_factory leaves agent-b connected and re-registering.
    d.run_until(1_000 * MS);
    d.send("agent-a", Command::KillFactory);
    d.send(
        "agent-a",
        Command::ReadPersonSites {
            username: "u".into(),
        },
    );
    d.send(
        "agent-b",
        Command::ReadPersonSites {
            username: "u".into(),
        },
    );
    d.send("agent-a", connect("site2"));
    assert_eq!(
        lines(&d.run_until(3_000 * MS)),
        [
            "1000 agent-a ok",
            "1000 agent-a error not connected to a CS Proxy",
            "1000 agent-b ok",
            "1200 agent-a connected 3",
            "2200 agent-b @2 dn-back",
        ]
    );
}

#[test]
fn a_site_event_reaches_every_session_on_that_site_and_no_other() {
    let text = format!(
        "{DEPLOYMENT}[[events]]\nat = \"10s\"\nsite = \"site1\"\nset = {{ telephony = \"off\" }}\n\
         [[events]]\nat = \"11s\"\nsite = \"site2\"\nset = {{ statistic = \"off\", configuration = \"off\" }}\n"
    );
    let mut d = Driver::new(&text, true);
    for (session, site) in [
        ("agent-1", "site1"),
        ("agent-2", "site2"),
        ("agent-3", "site1"),
        ("agent-4", "site2"),
        ("agent-5", "site1"),
    ] {
        d.send(session, connect(site));
    }
    d.run_until(5_000 * MS);
    // Connected to site1 but not subscribed: hears nothing.
    d.subscribe = false;
    d.send("agent-6", connect("site1"));
    d.run_until(5_000 * MS + 200 * MS);
    assert_eq!(
        lines(&d.run_until(10_000 * MS)),
        [
            "10000 agent-1 @1 Telephony Off",
            "10000 agent-3 @3 Telephony Off",
            "10000 agent-5 @5 Telephony Off",
        ]
    );
    assert_eq!(
        lines(&d.run_until(11_000 * MS)),
        [
            "11000 agent-2 @2 Configuration Off",
            "11000 agent-4 @4 Configuration Off",
            "11000 agent-2 @2 Statistic Off",
            "11000 agent-4 @4 Statistic Off",
        ]
    );
    // A session that left site1 no longer hears it; its new site's state is reported on login.
    assert!(d.run_until(60_000 * MS).is_empty());
}

#[test]
fn overlapping_connects_leave_the_earlier_site() {
    let text = format!(
        "{DEPLOYMENT}[[events]]\nat = \"1s\"\nsite = \"site1\"\nset = {{ telephony = \"off\" }}\n\
         [[events]]\nat = \"2s\"\nsite = \"site2\"\nset = {{ telephony = \"off\" }}\n"
    );
    let mut d = Driver::new(&text, true);
    d.send("agent-1", connect("site1"));
    d.run_until(100 * MS);
    // A second connect before the first answers: both answer, the later wins.
    d.send("agent-1", connect("site2"));
    assert_eq!(
        notable(&d.run_until(300 * MS)),
        ["200 agent-1 connected 1", "300 agent-1 connected 2"]
    );
    assert!(d.run_until(1_000 * MS).is_empty());
    assert_eq!(
        notable(&d.run_until(2_000 * MS)),
        ["2000 agent-1 @2 Telephony Off"]
    );
}

/// (ms, session, outcome) of every connect answer in `outs`.
fn connects(outs: &[(u64, Output)]) -> Vec<String> {
    lines(outs)
        .into_iter()
        .filter(|l| l.contains(" connected ") || l.contains(" error CS Proxy"))
        .collect()
}

#[test]
fn capacity_serves_logins_at_exactly_r_per_second_and_refuses_beyond_the_queue() {
    let text = format!("{DEPLOYMENT}cs-proxy-capacity = 10\ncs-proxy-queue = 3\n");
    let mut d = Driver::new(&text, false);
    for n in 1..=5 {
        d.send(&format!("agent-{n}"), connect("site2"));
    }
    // Another site has its own queue.
    d.send("agent-6", connect("site1"));
    d.run_until(250 * MS);
    // At 250 ms agent-1's login has completed: two wait, so one more fits,
    // served 1/R after the last one.
    d.send("agent-7", connect("site2"));
    d.send("agent-8", connect("site2"));
    d.run_until(2_000 * MS);
    // An idle proxy serves at connect-latency again.
    d.send("agent-9", connect("site2"));
    d.run_until(3_000 * MS);
    assert_eq!(
        connects(&d.seen),
        [
            "200 agent-1 connected 1",
            "200 agent-4 error CS Proxy site2 overloaded: 3 logins queued",
            "200 agent-5 error CS Proxy site2 overloaded: 3 logins queued",
            "200 agent-6 connected 2",
            "300 agent-2 connected 3",
            "400 agent-3 connected 4",
            "450 agent-8 error CS Proxy site2 overloaded: 3 logins queued",
            "500 agent-7 connected 5",
            "2200 agent-9 connected 6",
        ]
    );
}

#[test]
fn the_default_queue_is_ten_times_the_capacity_rounded_up() {
    // R = 0.25/s: a login every 4 s, ceil(2.5) = 3 may wait.
    let text = format!("{DEPLOYMENT}cs-proxy-capacity = 0.25\n");
    let mut d = Driver::new(&text, false);
    for n in 1..=4 {
        d.send(&format!("agent-{n}"), connect("site1"));
    }
    d.run_until(20_000 * MS);
    assert_eq!(
        connects(&d.seen),
        [
            "200 agent-1 connected 1",
            "200 agent-4 error CS Proxy site1 overloaded: 3 logins queued",
            "4200 agent-2 connected 2",
            "8200 agent-3 connected 3",
        ]
    );
}

#[test]
fn without_a_capacity_every_login_takes_connect_latency() {
    let mut d = Driver::new(DEPLOYMENT, false);
    for n in 1..=5000 {
        d.send(&format!("agent-{n}"), connect("site1"));
    }
    let out = connects(&d.run_until(1_000 * MS));
    let want: Vec<String> = (1..=5000)
        .map(|n| format!("200 agent-{n} connected {n}"))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn unreachable_sites_refuse_without_queueing_and_a_lost_site_refuses_waiting_logins() {
    let text = format!(
        "{DEPLOYMENT}cs-proxy-capacity = 10\ncs-proxy-queue = 2\n[sites.site2]\nreachable = false\n\
         [[events]]\nat = \"1s\"\nsite = \"site2\"\nset = {{ reachable = true }}\n\
         [[events]]\nat = \"1250ms\"\nsite = \"site2\"\nset = {{ reachable = false }}\n"
    );
    let mut d = Driver::new(&text, false);
    for n in 1..=3 {
        d.send(&format!("agent-{n}"), connect("site2"));
    }
    d.run_until(1_000 * MS);
    // The refusals took no place in the queue: two logins fit now.
    d.send("agent-4", connect("site2"));
    d.send("agent-5", connect("site2"));
    d.run_until(3_000 * MS);
    assert_eq!(
        connects(&d.seen),
        [
            "200 agent-1 error CS Proxy site2 refused the connection",
            "200 agent-2 error CS Proxy site2 refused the connection",
            "200 agent-3 error CS Proxy site2 refused the connection",
            "1200 agent-4 connected 1",
            // site2 is lost at 1.25 s while agent-5 waits for its turn at 1.3 s.
            "1300 agent-5 error CS Proxy site2 refused the connection",
        ]
    );
}

/// Ten sessions known in this first-command order (not id order); agent-3
/// never connects, the others connect to site1 and subscribe.
fn ten_sessions(events: &str) -> Driver {
    ten_sessions_polled(events, false)
}

/// [`ten_sessions`], polled in the compact encoding if `compact`.
fn ten_sessions_polled(events: &str, compact: bool) -> Driver {
    let mut d = Driver::new(&format!("{DEPLOYMENT}{events}"), true);
    d.compact = compact;
    for n in [7, 3, 10, 1, 9, 2, 8, 4, 6, 5] {
        let s = format!("agent-{n}");
        if n == 3 {
            d.send(&s, Command::KillFactory);
        } else {
            d.send(&s, connect("site1"));
        }
    }
    d.run_until(5_000 * MS);
    d
}

fn event(at: &str, what: &str, agents: &str) -> String {
    format!("[[events]]\nat = \"{at}\"\n{what}\nagents = {agents}\n")
}

/// The mock writes compact outputs from its queue (no [`Output`] built):
/// they must be the bytes of the outputs `poll_output` gives, in the same order.
#[test]
fn compact_outputs_are_the_outputs_poll_output_gives() {
    let events = [
        event("10s", "dn-out-of-service = true", "\"all\""),
        event("11s", "dn-back-in-service = true", "0.5"),
        event("12s", "logout = \"dr-force_logout\"", "\"agent-9\""),
        "[[events]]\nat = \"13s\"\nsite = \"site1\"\nset = { telephony = \"off\", statistic = \"off\" }\n"
            .to_owned(),
        event("14s", "disconnect = true", "\"all\""),
    ]
    .concat();
    let run = |compact: bool| {
        let mut d = ten_sessions_polled(&events, compact);
        d.send("agent-1", connect("nowhere"));
        d.send("agent-2", read_application("AIL_site1"));
        d.send(
            "agent-4",
            Command::Probe {
                site: "site2".into(),
                cs_proxy: "csproxy2:7000".into(),
            },
        );
        d.run_until(20_000 * MS);
        d.seen
    };
    let (plain, packed) = (run(false), run(true));
    assert!(plain.len() > 40, "{}", plain.len());
    assert_eq!(plain, packed);
    // Every kind the queue holds came out: statuses, DN back, done,
    // connected, a refusal, other results and events.
    let all: Vec<String> = plain.iter().map(|(t, o)| line(*t, o)).collect();
    for kind in [
        "Telephony Off",
        "dn-back",
        "dn-out",
        " ok",
        "connected",
        "error",
        "logout",
        "disconnected",
    ] {
        assert!(
            all.iter().any(|l| l.contains(kind)),
            "no {kind} in {all:#?}"
        );
    }
}

#[test]
fn targeting_all_reaches_every_subscribed_session_in_first_command_order() {
    let mut d = ten_sessions(&event("10s", "dn-out-of-service = true", "\"all\""));
    let sessions: Vec<String> = notable(&d.run_until(10_000 * MS))
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        sessions,
        [7, 10, 1, 9, 2, 8, 4, 6, 5].map(|n| format!("agent-{n}"))
    );
}

#[test]
fn targeting_one_session_reaches_it_alone_and_an_unknown_id_nobody() {
    let events = event("10s", "logout = \"dr-force_logout\"", "\"agent-9\"")
        + &event("11s", "logout = \"\"", "\"agent-99\"");
    let mut d = ten_sessions(&events);
    // agent-9 connected fourth (epochs follow the connect order, agent-3 skipped).
    assert_eq!(
        notable(&d.run_until(10_000 * MS)),
        ["10000 agent-9 @4 logout Some(\"dr-force_logout\")"]
    );
    assert!(d.run_until(11_000 * MS).is_empty());
}

#[test]
fn a_fraction_takes_the_first_ceil_f_n_known_sessions() {
    // ceil(0.21 × 10) = 3 (rounding up, not to nearest): agent-7, agent-3
    // (known, never connected: hears nothing), agent-10. 0.2 × 10 = 2 exactly.
    let events = event("10s", "dn-back-in-service = true", "0.21")
        + &event("11s", "dn-out-of-service = true", "0.2")
        + &event("12s", "dn-back-in-service = true", "1.0");
    let mut d = ten_sessions(&events);
    assert_eq!(
        notable(&d.run_until(10_000 * MS)),
        ["10000 agent-7 @1 dn-back", "10000 agent-10 @2 dn-back"]
    );
    assert_eq!(
        notable(&d.run_until(11_000 * MS)),
        ["11000 agent-7 @1 dn-out"]
    );
    assert_eq!(notable(&d.run_until(12_000 * MS)).len(), 9);
}

#[test]
fn a_fraction_ignores_float_noise() {
    // 0.07 × 100 is 7.000000000000001 in binary floats: 7 sessions, not 8.
    let mut d = Driver::new(
        &format!(
            "{DEPLOYMENT}{}",
            event("1s", "dn-out-of-service = true", "0.07")
        ),
        true,
    );
    for n in 1..=100 {
        d.send(&format!("agent-{n}"), connect("site1"));
    }
    let heard: Vec<String> = notable(&d.run_until(1_000 * MS))
        .into_iter()
        .filter(|l| l.ends_with("dn-out"))
        .collect();
    let want: Vec<String> = (1..=7)
        .map(|n| format!("1000 agent-{n} @{n} dn-out"))
        .collect();
    assert_eq!(heard, want);
}

#[test]
fn a_fraction_counts_the_sessions_known_when_the_event_plays() {
    // At 1 s only four sessions are known: ceil(0.5 × 4) = 2.
    let mut d = Driver::new(
        &format!("{DEPLOYMENT}{}", event("1s", "disconnect = true", "0.5")),
        true,
    );
    for n in 1..=4 {
        d.send(&format!("agent-{n}"), connect("site1"));
    }
    d.run_until(500 * MS);
    assert_eq!(
        notable(&d.run_until(1_000 * MS)),
        [
            "1000 agent-1 @1 disconnected",
            "1000 agent-2 @2 disconnected"
        ]
    );
    for n in 5..=8 {
        d.send(&format!("agent-{n}"), connect("site1"));
    }
    // Disconnected sessions lose their DN; the others and the newcomers register.
    let back: Vec<String> = notable(&d.run_until(10_000 * MS))
        .into_iter()
        .filter(|l| l.ends_with("dn-back"))
        .collect();
    assert_eq!(
        back,
        [
            "2200 agent-3 @3 dn-back",
            "2200 agent-4 @4 dn-back",
            "3200 agent-5 @5 dn-back",
            "3200 agent-6 @6 dn-back",
            "3200 agent-7 @7 dn-back",
            "3200 agent-8 @8 dn-back",
        ]
    );
}

#[test]
fn a_stale_targeted_event_goes_out_on_the_previous_epoch() {
    let events = event("10s", "disconnect = true", "\"agent-1\"")
        + &event(
            "11s",
            "logout = \"graceful_shutdown_logout\"\nstale = true",
            "\"agent-1\"",
        );
    let mut d = ten_sessions(&events);
    d.run_until(10_000 * MS);
    d.send("agent-1", connect("site2"));
    // agent-1 connected third (epoch 3), reconnected as epoch 10.
    assert_eq!(
        notable(&d.run_until(11_000 * MS)),
        [
            "10200 agent-1 connected 10",
            "11000 agent-1 @3 logout Some(\"graceful_shutdown_logout\")",
        ]
    );
}

#[test]
fn a_stale_site_event_reaches_only_sessions_whose_previous_connection_was_there() {
    let text = format!(
        "{DEPLOYMENT}[[events]]\nat = \"10s\"\nsite = \"site1\"\nset = {{ statistic = \"off\" }}\nstale = true\n"
    );
    let mut d = Driver::new(&text, true);
    d.send("agent-a", connect("site1"));
    d.send("agent-b", connect("site2"));
    d.send("agent-c", connect("site1"));
    d.run_until(1_000 * MS);
    // agent-a leaves site1 (epoch 1) for site2; agent-b leaves site2 for site1.
    d.send("agent-a", connect("site2"));
    d.send("agent-b", connect("site1"));
    d.run_until(5_000 * MS);
    assert_eq!(
        notable(&d.run_until(10_000 * MS)),
        ["10000 agent-a @1 Statistic Off"]
    );
}

#[test]
fn ten_thousand_sessions_through_a_site_outage() {
    const N: u64 = 10_000;
    const PERIOD: u64 = 5 * MS; // 1 / 200 per second
    let text = format!(
        "{DEPLOYMENT}cs-proxy-capacity = 200\n\
         [[events]]\nat = \"60s\"\nsite = \"site1\"\nset = {{ telephony = \"off\", reachable = false }}\n"
    );
    let mut d = Driver::new(&text, true);
    let name = |k: u64| format!("agent-{k}");
    // Startup at exactly the proxy's rate: nobody waits long, nobody is refused.
    for k in 0..N {
        d.run_until(k * PERIOD);
        d.send(&name(k), connect("site1"));
    }
    d.run_until(59_000 * MS);
    let startup = std::mem::take(&mut d.seen);
    let mut epoch1 = std::collections::HashMap::new();
    for (t, out) in &startup {
        if let Output::Result {
            session,
            result: Ok(Reply::Connected { epoch }),
            ..
        } = out
        {
            let k: u64 = session["agent-".len()..].parse().unwrap();
            assert_eq!(*t, k * PERIOD + 200 * MS, "{session}");
            epoch1.insert(session.clone(), *epoch);
        }
    }
    assert_eq!(epoch1.len(), N as usize);
    let dn_back = |outs: &[(u64, Output)]| {
        outs.iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    Output::Event {
                        event: Event::DnBackInService { .. },
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(dn_back(&startup), N as usize);

    // The outage reaches every session once, on its own epoch, in first-command order.
    let outage = d.run_until(60_000 * MS);
    assert_eq!(outage.len(), N as usize);
    for (k, (_, out)) in outage.iter().enumerate() {
        let Output::Event {
            session,
            epoch,
            event:
                Event::ServiceStatus {
                    service: Service::Telephony,
                    status: ServiceState::Off,
                },
        } = out
        else {
            panic!("{out:?}");
        };
        assert_eq!(*session, name(k as u64));
        assert_eq!(Some(epoch), epoch1.get(session));
    }

    // Everyone fails over at once; whoever is refused retries 11 s later.
    // Each round the proxy takes 2 000 (its queue) at exactly 200 a second.
    let mut todo: Vec<u64> = (0..N).collect();
    let mut epochs2 = std::collections::HashSet::new();
    let mut round = 0;
    while !todo.is_empty() {
        let start = 60_000 * MS + round * 11_000 * MS;
        d.run_until(start);
        for &k in &todo {
            d.send(&name(k), connect("site2"));
        }
        let outs = d.run_until(start + 11_000 * MS - 1);
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (t, out) in &outs {
            if let Output::Result {
                session, result, ..
            } = out
            {
                let k: u64 = session["agent-".len()..].parse().unwrap();
                match result {
                    Ok(Reply::Connected { epoch }) => {
                        assert!(epochs2.insert(*epoch), "epoch {epoch} twice");
                        accepted.push((*t, k));
                    }
                    Err(e) => {
                        assert_eq!(*t, start + 200 * MS);
                        assert_eq!(e.message, "CS Proxy site2 overloaded: 2000 logins queued");
                        refused.push(k);
                    }
                    Ok(_) => {}
                }
            }
        }
        let want = todo.len().min(2000);
        assert_eq!(accepted.len(), want, "round {round}");
        for (j, (t, k)) in accepted.iter().enumerate() {
            assert_eq!(*t, start + 200 * MS + j as u64 * PERIOD, "round {round}");
            assert_eq!(*k, todo[j], "first come, first served");
        }
        assert_eq!(refused, todo[want..]);
        todo = refused;
        round += 1;
    }
    assert_eq!(round, 5);
    assert_eq!(epochs2.len(), N as usize);
    assert!(epochs2.iter().all(|e| *e > N));
    // Every agent is back in service at site2, on its new epoch.
    d.run_until(d.now + 3_000 * MS);
    let after: Vec<u64> = d
        .seen
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Event {
                epoch,
                event: Event::DnBackInService { .. },
                ..
            } => Some(*epoch),
            _ => None,
        })
        .filter(|e| *e > N)
        .collect();
    assert_eq!(after.len(), N as usize);
    assert!(after.iter().all(|e| epochs2.contains(e)));
}

/// A sim of `text` (after the `[deployment]` header, preferred site1,
/// connects in 200 ms).
fn sim_of(extra: &str) -> Sim {
    let text =
        format!("[deployment]\npreferred-site = \"site1\"\nconnect-latency = \"200ms\"\n{extra}");
    let sc = Scenario::parse(&text, Path::new("t.toml"), &names()).unwrap();
    Sim::new(sc, sites(), "7001".into())
}

/// The result of command `id` among `out`.
fn result_of(out: &[Output], id: u64) -> Option<Result<Reply, String>> {
    out.iter().find_map(|o| match o {
        Output::Result { id: i, result, .. } if *i == id => {
            Some(result.clone().map_err(|e| e.message))
        }
        _ => None,
    })
}

fn probe(site: &str, cs_proxy: &str) -> Command {
    Command::Probe {
        site: site.into(),
        cs_proxy: cs_proxy.into(),
    }
}

/// E2: `probe` answers at once from the probed site's state, without
/// touching the session's own connection or events.
#[test]
fn probe_answers_from_the_sites_state_without_leaving_the_current_site() {
    let mut sim = sim_of(
        "[sites.site1]\ntelephony = \"off\"\n\n[[events]]\nat = \"10s\"\nsite = \"site1\"\nset = { telephony = \"on\" }\n\n[[events]]\nat = \"20s\"\nsite = \"site1\"\nset = { reachable = false }\n",
    );
    sim.handle(0, cmd(1, connect("site2"))).unwrap();
    drain(&mut sim, 200 * MS);
    sim.handle(200 * MS, cmd(2, subscribe(1))).unwrap();
    drain(&mut sim, 200 * MS);
    let health = |sim: &mut Sim, now: u64, id: u64| match result_of(
        &{
            sim.handle(now, cmd(id, probe("site1", "csproxy1:7000")))
                .unwrap();
            drain(sim, now)
        },
        id,
    ) {
        Some(Ok(Reply::Probed { healthy, detail })) => (healthy, detail),
        other => panic!("{other:?}"),
    };
    let (h, detail) = health(&mut sim, 5_000 * MS, 3);
    assert!(!h && detail.contains("telephony off"), "{detail}");
    // site1's telephony comes back at 10 s: the session on site2 hears nothing of it.
    let heard = drain(&mut sim, 10_000 * MS);
    assert!(heard.is_empty(), "{heard:?}");
    assert!(health(&mut sim, 10_000 * MS, 4).0);
    drain(&mut sim, 20_000 * MS);
    let (h, detail) = health(&mut sim, 20_000 * MS, 5);
    assert!(!h && detail.contains("refused"), "{detail}");
    // Still on site2, epoch 1: a subscribe there works.
    sim.handle(20_000 * MS, cmd(6, subscribe(1))).unwrap();
    assert_eq!(
        result_of(&drain(&mut sim, 20_000 * MS), 6),
        Some(Ok(Reply::Done))
    );
}

/// S3: a site whose Application names a moved CS Proxy: the Application
/// says where; a connect or probe at the old address finds nothing, one at
/// the new address works.
#[test]
fn a_moved_cs_proxy_answers_only_at_the_address_its_application_names() {
    let mut sim = sim_of("[sites.site2]\ncs-proxy = \"csp2-new:7001\"\n");
    sim.handle(0, cmd(1, connect_at("site1", "csproxy1:7000")))
        .unwrap();
    drain(&mut sim, 200 * MS);
    sim.handle(200 * MS, cmd(2, read_application("AIL_site2")))
        .unwrap();
    match result_of(&drain(&mut sim, 200 * MS), 2) {
        Some(Ok(Reply::Application { cs_proxy, .. })) => assert_eq!(cs_proxy, "csp2-new:7001"),
        other => panic!("{other:?}"),
    }
    sim.handle(200 * MS, cmd(3, probe("site2", "csproxy2:7000")))
        .unwrap();
    assert!(matches!(
        result_of(&drain(&mut sim, 200 * MS), 3),
        Some(Ok(Reply::Probed { healthy: false, .. }))
    ));
    sim.handle(200 * MS, cmd(4, connect_at("site2", "csproxy2:7000")))
        .unwrap();
    match result_of(&drain(&mut sim, 400 * MS), 4) {
        Some(Err(e)) => assert!(e.contains("csproxy2:7000"), "{e}"),
        other => panic!("{other:?}"),
    }
    sim.handle(400 * MS, cmd(5, connect_at("site2", "csp2-new:7001")))
        .unwrap();
    assert!(matches!(
        result_of(&drain(&mut sim, 600 * MS), 5),
        Some(Ok(Reply::Connected { .. }))
    ));
}

/// S3: `application-readable = false`: reading that Application fails.
#[test]
fn an_unreadable_application_fails_to_read() {
    let mut sim = sim_of("[sites.site2]\napplication-readable = false\n");
    sim.handle(0, cmd(1, connect("site1"))).unwrap();
    drain(&mut sim, 200 * MS);
    for (id, app, ok) in [(2, "AIL_site1", true), (3, "AIL_site2", false)] {
        sim.handle(200 * MS, cmd(id, read_application(app)))
            .unwrap();
        let r = result_of(&drain(&mut sim, 200 * MS), id);
        assert_eq!(r.as_ref().is_some_and(|r| r.is_ok()), ok, "{app}: {r:?}");
    }
}

/// W5: a login on the current connection is answered, and the DN comes back
/// in service `register-delay` later; refused where `login-fails`, and
/// again accepted once a `set` clears it.
#[test]
fn login_is_answered_and_refused_where_the_scenario_says() {
    let mut sim = sim_of(
        "[sites.site2]\nlogin-fails = true\n\n[[events]]\nat = \"10s\"\nsite = \"site2\"\nset = { login-fails = false }\n",
    );
    let login = |epoch| Command::Login {
        epoch,
        dn: "7001".into(),
        queue: None,
        workmode: None,
        reasons: Default::default(),
    };
    // Not subscribed yet: refused.
    sim.handle(0, cmd(1, connect("site1"))).unwrap();
    drain(&mut sim, 200 * MS);
    sim.handle(200 * MS, cmd(2, login(1))).unwrap();
    assert!(matches!(
        result_of(&drain(&mut sim, 200 * MS), 2),
        Some(Err(_))
    ));
    sim.handle(200 * MS, cmd(3, subscribe(1))).unwrap();
    drain(&mut sim, 200 * MS);
    sim.handle(1_000 * MS, cmd(4, login(1))).unwrap();
    assert_eq!(
        result_of(&drain(&mut sim, 1_000 * MS), 4),
        Some(Ok(Reply::Done))
    );
    // DN back 2 s after the subscribe, and 2 s after the login.
    let back = |out: &[Output]| {
        out.iter()
            .filter(|o| {
                matches!(
                    o,
                    Output::Event {
                        event: Event::DnBackInService { .. },
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(back(&drain(&mut sim, 2_200 * MS)), 1);
    assert_eq!(back(&drain(&mut sim, 3_000 * MS)), 1);
    // site2 refuses logins until 10 s.
    sim.handle(3_000 * MS, cmd(5, connect("site2"))).unwrap();
    drain(&mut sim, 3_200 * MS);
    sim.handle(3_200 * MS, cmd(6, subscribe(2))).unwrap();
    sim.handle(3_200 * MS, cmd(7, login(2))).unwrap();
    match result_of(&drain(&mut sim, 3_200 * MS), 7) {
        Some(Err(e)) => assert_eq!(e, "login refused at site2"),
        other => panic!("{other:?}"),
    }
    drain(&mut sim, 10_000 * MS);
    sim.handle(10_000 * MS, cmd(8, login(2))).unwrap();
    assert_eq!(
        result_of(&drain(&mut sim, 10_000 * MS), 8),
        Some(Ok(Reply::Done))
    );
}

#[test]
fn bad_application_keys_name_line_and_key() {
    let base = "[deployment]\npreferred-site = \"site1\"\n[sites.site2]\n";
    for (extra, want) in [
        ("cs-proxy = \"nowhere\"", "sites.site2.cs-proxy"),
        ("cs-proxy = \"h:0\"", "sites.site2.cs-proxy"),
        ("login-fails = \"yes\"", "expected a boolean"),
        ("cs-prox = \"h:1\"", "cs-prox"),
    ] {
        let text = format!("{base}{extra}\n");
        let e = Scenario::parse(&text, Path::new("s.toml"), &names())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:4:"), "{extra}: {e}");
        assert!(e.contains(want), "{extra}: {e}");
    }
}

/// E5 at startup: an Application's options come with its read, and a
/// `config` event on it changes what a later read (a restarted drctl) sees.
#[test]
fn application_options_are_read_and_follow_config_events() {
    let mut sim = sim_of(
        "[sites.site1]\napplication-options = { \"dr/evacuate\" = \"true\", \"dr/x\" = \"1\" }\n\
         [[events]]\nat = \"1s\"\n\
         config = { object = \"application\", name = \"AIL_site1\", section = \"dr\", option = \"evacuate\" }\n",
    );
    sim.handle(0, cmd(1, connect_at("site1", "csproxy1:7000")))
        .unwrap();
    drain(&mut sim, 200 * MS);
    let read = |sim: &mut Sim, id: u64, at: u64| {
        sim.handle(at, cmd(id, read_application("AIL_site1")))
            .unwrap();
        match result_of(&drain(sim, at), id) {
            Some(Ok(Reply::Application { options, .. })) => options,
            other => panic!("{other:?}"),
        }
    };
    let before = read(&mut sim, 2, 200 * MS);
    assert_eq!(before.get("dr/evacuate").map(String::as_str), Some("true"));
    assert_eq!(before.len(), 2, "{before:?}");
    drain(&mut sim, 2_000 * MS);
    let after = read(&mut sim, 3, 2_000 * MS);
    assert_eq!(after.get("dr/evacuate"), None, "{after:?}");
    assert_eq!(after.get("dr/x").map(String::as_str), Some("1"));
}

/// `application-options` keys name a section and an option.
#[test]
fn an_application_option_without_a_section_is_refused_by_line() {
    let text = "[deployment]\npreferred-site = \"site1\"\n[sites.site1]\napplication-options = { evacuate = \"true\" }\n";
    let err = Scenario::parse(text, Path::new("t.toml"), &names())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.toml:4:") && err.contains("expected \"section/option\""),
        "{err}"
    );
}

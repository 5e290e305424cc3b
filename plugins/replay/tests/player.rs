//! The replay player on hand-made recordings: events by time, commands by
//! kind and order with their recorded latency, divergence, cut recordings.

use drctl_plugin_api::messages::{Command, Event, Input, Output, Reply, Service, ServiceState};
use drctl_plugin_replay::Player;
use drctl_protocol::recording::{Header, OperatorAction, RecordWriter, FORMAT, VERSION};
use std::io::Write;
use wire::input;

#[path = "../../../plugin-api/tests/support/wire.rs"]
mod wire;

const MS: u64 = 1_000_000;

/// The session of the single-agent recording.
const AGENT: &str = "agent-1";

fn cmd(id: u64, command: Command) -> Input {
    input(AGENT, id, command)
}

fn connect(site: &str) -> Command {
    wire::connect(site, &format!("{site}:7000"), "s3cret")
}

fn result(id: u64, reply: Reply) -> Output {
    wire::result(AGENT, id, Ok(reply))
}

fn telephony(session: &str, epoch: u64, status: ServiceState) -> Output {
    let event = Event::ServiceStatus {
        service: Service::Telephony,
        status,
    };
    wire::event(session, epoch, event)
}

/// A recording's header: `version`, the single agent's `session` (empty in
/// a fleet recording), the fleet's `agents`.
fn header(version: u32, session: &str, agents: &[&str]) -> Header {
    Header {
        format: FORMAT.into(),
        version,
        drctl: "0.1.0".into(),
        backend: "mock".into(),
        started: "2026-11-24T19:00:00Z".into(),
        command: "watch".into(),
        clock: "virtual".into(),
        session: session.into(),
        config: serde_json::json!({}),
        cached_preferred: None,
        agents: agents
            .iter()
            .map(|a| drctl_protocol::recording::RecordedAgent {
                session: (*a).into(),
                username: (*a).into(),
                seed: 0,
                cached_preferred: None,
            })
            .collect(),
    }
}

/// connect site1 (answered 200 ms later, epoch 1), telephony off at 1 s,
/// kill_factory at 31 s (answered at once), connect site2 (answered 250 ms later).
fn recording() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let header = header(VERSION, AGENT, &[]);
    let mut w = RecordWriter::new(Vec::new(), &header).unwrap();
    w.command(0, &cmd(1, connect("site1"))).unwrap();
    w.output(200 * MS, &result(1, Reply::Connected { epoch: 1 }))
        .unwrap();
    w.output(1_000 * MS, &telephony(AGENT, 1, ServiceState::Off))
        .unwrap();
    w.command(31_000 * MS, &cmd(2, Command::KillFactory))
        .unwrap();
    w.output(31_000 * MS, &result(2, Reply::Done)).unwrap();
    w.command(31_000 * MS, &cmd(3, connect("site2"))).unwrap();
    w.operator(31_100 * MS, &OperatorAction::Pause).unwrap();
    w.output(31_250 * MS, &result(3, Reply::Connected { epoch: 2 }))
        .unwrap();
    w.output(31_300 * MS, &telephony(AGENT, 2, ServiceState::On))
        .unwrap();
    file.write_all(&w.into_inner()).unwrap();
    file
}

/// The three commands of [`recording`], in its order, all at 0.
fn send_the_recorded_commands(p: &mut Player) {
    p.handle(0, cmd(1, connect("site1")));
    p.handle(0, cmd(2, Command::KillFactory));
    p.handle(0, cmd(3, connect("site2")));
}

/// Everything the player emits up to `until`, jumping deadline to deadline.
fn drain(p: &mut Player, from: u64, until: u64) -> Vec<(u64, Output)> {
    let mut out = Vec::new();
    let mut now = from;
    loop {
        while let Some(o) = p.poll_output(now) {
            out.push((now, o));
        }
        match p.poll_timeout() {
            Some(t) if t <= until => now = now.max(t),
            _ => return out,
        }
    }
}

#[test]
fn matching_commands_get_the_recorded_results_with_their_latency_and_the_hosts_id() {
    let file = recording();
    let mut p = Player::open(file.path()).unwrap();
    // The host's ids differ from the recorded ones; its times differ too.
    p.handle(0, cmd(10, connect("site1")));
    let out = drain(&mut p, 0, 2_000 * MS);
    assert_eq!(
        out,
        [
            (200 * MS, result(10, Reply::Connected { epoch: 1 })),
            (1_000 * MS, telephony(AGENT, 1, ServiceState::Off)),
        ]
    );
    // A shorter site-timeout: kill_factory at 5 s instead of 31 s still matches.
    p.handle(5_000 * MS, cmd(11, Command::KillFactory));
    assert_eq!(p.poll_output(5_000 * MS), Some(result(11, Reply::Done)));
    p.handle(5_000 * MS, cmd(12, connect("site2")));
    assert_eq!(p.poll_output(5_000 * MS), None);
    assert_eq!(p.poll_timeout(), Some(5_250 * MS));
    assert_eq!(
        p.poll_output(5_250 * MS),
        Some(result(12, Reply::Connected { epoch: 2 }))
    );
    // Events keep their recorded times whatever the host did.
    assert_eq!(p.poll_timeout(), Some(31_300 * MS));
    assert!(p.fault().is_none());
}

#[test]
fn a_command_the_recording_does_not_have_next_is_a_divergence_answered_with_an_error() {
    let file = recording();
    let mut p = Player::open(file.path()).unwrap();
    p.handle(0, cmd(1, connect("site2")));
    let Some(Output::Divergence {
        id, sent, recorded, ..
    }) = p.poll_output(0)
    else {
        panic!("expected a divergence first");
    };
    assert_eq!(id, 1);
    assert_eq!(sent, connect("site2").redacted());
    let recorded = recorded.expect("the recording has a command next");
    assert_eq!((recorded.t, recorded.line), (0, 2));
    assert_eq!(recorded.command, connect("site1").redacted());
    let Some(Output::Result {
        id: 1,
        result: Err(e),
        ..
    }) = p.poll_output(0)
    else {
        panic!("expected an error result");
    };
    assert_eq!(
        e.message,
        "replay: diverged: the recording has connect site1 next (line 2), not connect site2"
    );
    // The recorded command stays next in line.
    p.handle(MS, cmd(2, connect("site1")));
    assert_eq!(
        drain(&mut p, MS, 300 * MS),
        [(201 * MS, result(2, Reply::Connected { epoch: 1 }))]
    );
}

#[test]
fn past_the_last_recorded_command_every_command_diverges() {
    let file = recording();
    let mut p = Player::open(file.path()).unwrap();
    send_the_recorded_commands(&mut p);
    drain(&mut p, 0, 40_000 * MS);
    p.handle(40_000 * MS, cmd(4, Command::Shutdown));
    let out = drain(&mut p, 40_000 * MS, 40_000 * MS);
    assert!(
        matches!(&out[0].1, Output::Divergence { recorded: None, .. }),
        "{out:?}"
    );
    assert!(
        matches!(&out[1].1, Output::Result { result: Err(e), .. }
            if e.message == "replay: diverged: the recording has no command left for shutdown"),
        "{out:?}"
    );
}

#[test]
fn a_command_recorded_without_a_result_is_never_answered() {
    let file = recording();
    let text = std::fs::read_to_string(file.path()).unwrap();
    // Cut after the last connect was sent: its result never made it to disk.
    let cut: String = text
        .lines()
        .take(7)
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "{\"t\":31250000000,\"kind\":\"res";
    std::fs::write(file.path(), cut).unwrap();
    let mut p = Player::open(file.path()).unwrap();
    send_the_recorded_commands(&mut p);
    let out = drain(&mut p, 0, u64::MAX);
    let mut answered: Vec<u64> = out
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Result { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    answered.sort();
    assert_eq!(answered, [1, 2], "connect site2 is never answered");
    assert!(p.fault().is_none());
}

/// A fleet recording (version 2) of `agents`, written by `write`.
fn fleet_recording(
    agents: &[&str],
    write: impl FnOnce(&mut RecordWriter<Vec<u8>>),
) -> tempfile::NamedTempFile {
    let header = header(drctl_protocol::recording::FLEET_VERSION, "", agents);
    let mut w = RecordWriter::new(Vec::new(), &header).unwrap();
    write(&mut w);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&w.into_inner()).unwrap();
    file
}

/// Ann's 5 000 kill-factories (each answered at once), then bob's connect
/// (answered 200 ms later) and an event of bob's.
fn ann_busy_then_bob() -> tempfile::NamedTempFile {
    fleet_recording(&["ann", "bob"], |w| {
        for id in 1..=5_000 {
            w.command(id * MS, &input("ann", id, Command::KillFactory))
                .unwrap();
            let done = wire::result("ann", id, Ok(Reply::Done));
            w.output(id * MS, &done).unwrap();
        }
        w.command(6_000 * MS, &input("bob", 1, connect("site2")))
            .unwrap();
        let connected = wire::result("bob", 1, Ok(Reply::Connected { epoch: 7 }));
        w.output(6_200 * MS, &connected).unwrap();
        w.output(6_300 * MS, &telephony("bob", 7, ServiceState::On))
            .unwrap();
    })
}

#[test]
fn each_session_meets_its_own_next_command_however_far_ahead_it_was_recorded() {
    let file = ann_busy_then_bob();
    let mut p = Player::open(file.path()).unwrap();
    // Bob first, though ann's 5 000 commands come before his in the file.
    p.handle(0, input("bob", 42, connect("site2")));
    let out = drain(&mut p, 0, 250 * MS);
    assert_eq!(
        out,
        [(
            200 * MS,
            wire::result("bob", 42, Ok(Reply::Connected { epoch: 7 }))
        )]
    );
    // Then ann's, each matched in her order.
    for id in 1..=5_000 {
        p.handle(300 * MS, input("ann", id, Command::KillFactory));
    }
    let out = drain(&mut p, 300 * MS, 300 * MS);
    assert_eq!(out.len(), 5_000);
    assert!(out.iter().all(|(_, o)| matches!(
        o,
        Output::Result {
            result: Ok(Reply::Done),
            ..
        }
    )));
    assert!(p.fault().is_none());
}

#[test]
fn a_player_for_some_sessions_plays_only_their_records() {
    let file = ann_busy_then_bob();
    let only_bob = Some(std::iter::once("bob".to_owned()).collect());
    let mut p = Player::open_for(file.path(), only_bob).unwrap();
    p.handle(0, input("bob", 1, connect("site2")));
    // Ann's commands are not played: hers diverge.
    p.handle(0, input("ann", 1, Command::KillFactory));
    let out = drain(&mut p, 0, u64::MAX);
    let brief: Vec<String> = out
        .iter()
        .map(|(t, o)| match o {
            Output::Result {
                session, result, ..
            } => {
                format!("{t} {session} result {}", result.is_ok())
            }
            Output::Event { session, .. } => format!("{t} {session} event"),
            Output::Divergence { session, .. } => format!("{t} {session} divergence"),
            other => format!("{t} {other:?}"),
        })
        .collect();
    assert_eq!(
        brief,
        [
            "0 ann divergence".to_owned(),
            "0 ann result false".to_owned(),
            format!("{} bob result true", 200 * MS),
            format!("{} bob event", 6_300 * MS),
        ]
    );
}

/// connect (answered at once), `events` telephony events a millisecond
/// apart, then `commands` kill-factories (each answered at once) after
/// them: every kind of record in one agent's file, for the one reader.
fn events_then_commands(events: u64, commands: u64) -> tempfile::NamedTempFile {
    fleet_recording(&[AGENT], |w| {
        w.command(0, &cmd(1, connect("site1"))).unwrap();
        w.output(0, &result(1, Reply::Connected { epoch: 1 }))
            .unwrap();
        for i in 0..events {
            let status = if i % 2 == 0 {
                ServiceState::Off
            } else {
                ServiceState::On
            };
            w.output((i + 1) * MS, &telephony(AGENT, 1, status))
                .unwrap();
        }
        for id in 2..2 + commands {
            let t = (events + 1) * MS;
            w.command(t, &cmd(id, Command::KillFactory)).unwrap();
            w.output(t, &result(id, Reply::Done)).unwrap();
        }
    })
}

#[test]
fn a_command_recorded_past_many_events_is_found_and_the_events_still_play_in_order() {
    // 3 000 events between the connect and the kill-factory: more than the
    // one reader holds while it looks for a command, so the commands read
    // on alone from there.
    let file = events_then_commands(3_000, 1);
    let mut p = Player::open(file.path()).unwrap();
    p.handle(0, cmd(10, connect("site1")));
    p.handle(0, cmd(11, Command::KillFactory));
    let out = drain(&mut p, 0, 10_000 * MS);
    assert_eq!(out[0], (0, result(10, Reply::Connected { epoch: 1 })));
    assert_eq!(out[1], (0, result(11, Reply::Done)));
    let events: Vec<_> = out[2..].iter().map(|(t, _)| *t).collect();
    assert_eq!(events, (1..=3_000).map(|i| i * MS).collect::<Vec<_>>());
    assert!(p.fault().is_none());
}

#[test]
fn commands_passed_by_the_events_long_before_the_host_sends_them_still_match_in_order() {
    // The host plays every event first; the 6 000 commands after them pass
    // the one reader before the host sends any: more than it keeps, so
    // the commands read on alone after the last one it kept.
    let file = events_then_commands(10, 6_000);
    let mut p = Player::open(file.path()).unwrap();
    p.handle(0, cmd(1, connect("site1")));
    let out = drain(&mut p, 0, 10_000 * MS);
    assert_eq!(out.len(), 11);
    for id in 2..6_002 {
        p.handle(20 * MS, cmd(id, Command::KillFactory));
    }
    let out = drain(&mut p, 20 * MS, 20 * MS);
    assert_eq!(out.len(), 6_000);
    assert!(
        out.iter()
            .zip(2..)
            .all(|((_, o), id)| *o == result(id, Reply::Done)),
        "a command did not meet its recorded result"
    );
    assert!(p.fault().is_none());
}

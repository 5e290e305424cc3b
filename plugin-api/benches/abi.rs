//! Events per second through the plugin ABI (SPEC §8: ≥ 1 M/s with JSON payloads).
//!
//! `events_through_abi`: the echo fixture (a real cdylib) in `flood` mode;
//! each iteration is one `poll_output` call returning one `service_status`
//! event, serialized to JSON in the plugin and parsed in the host.
//! `commands_through_abi`: one `handle` of a command plus the `poll_output`
//! of its result. `json_only`: the same event's JSON round trip without the
//! ABI, to show what the boundary itself costs.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drctl_plugin_api::loader::{self, LogSink};
use drctl_plugin_api::{Command, Encoding, Event, Input, LogLevel, Output, Service, ServiceState};

fn events_through_abi(c: &mut Criterion) {
    let plugin = loader::load(&support::fixture("echo")).expect("load echo fixture");
    // JSON, the SPEC §8 figure, although the fixture also speaks compact.
    let mut instance = plugin
        .create_with(
            &serde_json::json!({"flood": true}),
            Arc::new(|| {}),
            LogSink::new(LogLevel::Warn, |_, _| {}),
            Encoding::Json,
        )
        .expect("create");
    let mut group = c.benchmark_group("abi");
    group.throughput(Throughput::Elements(1));
    let mut now = 0u64;
    group.bench_function("events_through_abi", |b| {
        b.iter(|| {
            now += 1;
            let output = instance.poll_output(now).expect("poll_output");
            black_box(output.expect("flood mode always has an event"));
        })
    });

    let mut instance = plugin
        .create(
            &serde_json::json!({}),
            Arc::new(|| {}),
            LogSink::new(LogLevel::Warn, |_, _| {}),
        )
        .expect("create");
    let input = Input::Command {
        session: "agent-1".into(),
        id: 1,
        command: Command::ReadPersonSites {
            username: "jdoe".into(),
        },
    };
    group.bench_function("commands_through_abi", |b| {
        b.iter(|| {
            now += 1;
            instance.handle(now, black_box(&input)).expect("handle");
            black_box(instance.poll_output(now).expect("poll_output"));
        })
    });

    let event = Output::Event {
        session: "agent-1".into(),
        epoch: 1,
        event: Event::ServiceStatus {
            service: Service::Telephony,
            status: ServiceState::Off,
        },
    };
    let mut buf = Vec::with_capacity(256);
    group.bench_function("json_only", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&event)).unwrap();
            black_box(serde_json::from_slice::<Output>(&buf).unwrap());
        })
    });
    group.finish();
}

criterion_group!(benches, events_through_abi);
criterion_main!(benches);

//! Engine throughput on steady-state service status events (SPEC §8: ≥ 10 M events/s).
//!
//! `cargo bench -p drctl-policy --bench engine`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use drctl_policy::*;
use std::hint::black_box;

/// An engine watching site1 (epoch 1), as after a clean startup.
fn watching_engine() -> Engine {
    let mut engine = Engine::new(EngineConfig::two_sites("bench")).expect("valid config");
    engine.handle_event(Timestamp::ZERO, Event::Start);
    let t = Timestamp::ZERO;
    while let Some(action) = engine.poll_action() {
        let Action::Command(cmd) = action else {
            continue;
        };
        let result = match cmd.kind {
            CommandKind::Connect { .. } => Reply::Connected { epoch: 1 },
            CommandKind::ReadPersonSites { .. } => Reply::PersonSites {
                preferred_app: "AIL_site1".into(),
                secondary_app: "AIL_site2".into(),
            },
            CommandKind::ReadApplication { app_name } => Reply::Application {
                app_name,
                cs_proxy: "csproxy1:7000".into(),
                site_timeout: Some(std::time::Duration::from_secs(30)),
                site_sip_register_timeout: Some(std::time::Duration::from_secs(60)),
                options: Default::default(),
            },
            _ => Reply::Done,
        };
        engine.handle_event(
            t,
            Event::CommandResult {
                id: cmd.id,
                result: Ok(result),
            },
        );
    }
    assert_eq!(engine.view().phase, PhaseKind::Watching);
    engine
}

fn steady_state(c: &mut Criterion) {
    const N: u64 = 10_000;
    let services = [
        Service::Telephony,
        Service::Configuration,
        Service::Statistic,
    ];
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(N));
    group.bench_function("steady_state_status_events", |b| {
        b.iter_batched_ref(
            watching_engine,
            |engine| {
                for i in 0..N {
                    let event = Event::Backend {
                        epoch: 1,
                        event: BackendEvent::ServiceStatus {
                            service: services[(i % 3) as usize],
                            status: ServiceState::On,
                        },
                    };
                    engine.handle_event(Timestamp::from_nanos(i * 1_000), black_box(event));
                    while let Some(a) = engine.poll_action() {
                        black_box(a);
                    }
                    black_box(engine.poll_timeout());
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// D4 graceful shutdown: from the EventAgentLogout to the kill-factory command
/// in hand (SPEC §8: ≤ 1 ms; the host sends it in the same loop pass).
fn graceful_shutdown_to_kill_factory(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.bench_function("graceful_shutdown_to_kill_factory", |b| {
        b.iter_batched_ref(
            watching_engine,
            |engine| {
                let logout = Event::Backend {
                    epoch: 1,
                    event: BackendEvent::AgentLogout {
                        dn: "7001".into(),
                        reason: Some(GRACEFUL_SHUTDOWN_LOGOUT.into()),
                        extensions: Default::default(),
                    },
                };
                engine.handle_event(Timestamp::from_nanos(1_000), black_box(logout));
                loop {
                    match engine.poll_action() {
                        Some(Action::Command(cmd))
                            if matches!(cmd.kind, CommandKind::KillFactory) =>
                        {
                            break black_box(cmd);
                        }
                        Some(other) => {
                            black_box(other);
                        }
                        None => panic!("no kill-factory after a graceful-shutdown logout"),
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, steady_state, graceful_shutdown_to_kill_factory);
criterion_main!(benches);

//! `drctl watch`: start up, watch, alarm and switch until stopped (SPEC §1),
//! with the control socket, alarm sinks and metrics of a long-running watcher.

use crate::alarms::AlarmSinks;
use crate::args::GlobalArgs;
use crate::control::Server;
use crate::exit::{CliError, CliResult};
use crate::host::observe::Shared;
use crate::host::serve::Identity;
use crate::host::Stop;
use crate::metrics::Metrics;
use crate::session::{
    agent_name, control_socket, prepare, runtime, stop_on_signal, ClockKind, SessionArgs,
    SessionKind,
};
use anyhow::Context;
use clap::Args;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Start up on the preferred site, watch the four listeners, raise alarms and
/// switch sites when the DR policy says so, until SIGINT/SIGTERM.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Stop at the scenario's `end` (mock backend).
    #[arg(long)]
    until_end: bool,
}

/// How long queued alarm notifications may take to go out at shutdown.
const SINK_GRACE: Duration = Duration::from_secs(5);

/// Runs `drctl watch`.
pub fn run(args: WatchArgs, global: &GlobalArgs) -> CliResult {
    let mut prepared = prepare(global, &args.session, SessionKind::Watch)?;
    let end = if args.until_end {
        Some(prepared.end.ok_or_else(|| {
            CliError::bad_input(anyhow::anyhow!(
                "--until-end needs a scenario with deployment.end (backend {})",
                prepared.backend
            ))
        })?)
    } else {
        None
    };
    let cfg = prepared.config.clone();
    let agent = agent_name(&cfg);
    // A live watcher owns the agent's control socket; a virtual-clock run is
    // over in milliseconds and takes none (so drills can run side by side).
    let live = args.session.clock == ClockKind::Real;
    let server = if live {
        let path = control_socket(&cfg);
        Some(std::sync::Arc::new(
            Server::bind(&path, &agent).map_err(CliError::bad_input)?,
        ))
    } else {
        None
    };
    runtime()?.block_on(async {
        let host = &mut prepared.host;
        if let Some(listen) = &cfg.metrics.listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("metrics.listen {listen}"))
                .map_err(CliError::bad_input)?;
            let metrics = Metrics::new(&agent);
            tokio::spawn(crate::metrics::serve(listener, metrics.registry()));
            host.observe(Box::new(metrics));
            tracing::info!("metrics on http://{listen}/metrics");
        }
        let sinks = if cfg.alarms.sinks.is_empty() {
            None
        } else {
            let sinks = AlarmSinks::start(&cfg.alarms.sinks, &agent).map_err(CliError::failed)?;
            let sinks = Rc::new(RefCell::new(sinks));
            host.observe(Box::new(Shared(sinks.clone())));
            Some(sinks)
        };
        let serving = server.as_ref().map(|server| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            host.serve(
                rx,
                Identity {
                    agent: agent.clone(),
                    backend: prepared.backend.clone(),
                    started: std::time::SystemTime::now(),
                },
            );
            tracing::info!("control socket {}", server.path().display());
            let server = server.clone();
            tokio::spawn(async move { server.serve(tx).await })
        });
        host.inject(drctl_policy::Event::Start)
            .map_err(CliError::failed)?;
        let mut stop = stop_on_signal();
        let why = host
            .run(end, &mut stop, |_| false)
            .await
            .map_err(CliError::failed)?;
        tracing::info!(?why, "watch stopped");
        host.shutdown().map_err(CliError::failed)?;
        if why == Stop::Idle {
            tracing::info!("nothing more can happen (virtual clock)");
        }
        if let Some(task) = serving {
            task.abort();
        }
        if let Some(sinks) = sinks {
            let tasks = sinks.borrow_mut().close();
            crate::alarms::drain(tasks, SINK_GRACE).await;
        }
        Ok(())
    })
}

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
    /// Stop after this much session time (e.g. "1h"; on the virtual clock, at once).
    #[arg(long = "for", value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    run_for: Option<Duration>,
    /// Fleet mode: a TOML file of `[[agents]]` entries (like `[agent]`), one
    /// backend session each; replaces the config's `[[agents]]`.
    #[arg(long, value_name = "FILE")]
    agents: Option<std::path::PathBuf>,
}

/// A `--agents FILE`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    agents: Vec<drctl_config::AgentConfig>,
}

/// The `--set agents=[...]` override that puts `file`'s agents in the config.
fn agents_override(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--agents {}", file.display()))?;
    let parsed: AgentsFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim()))?;
    let value = toml::Value::try_from(&parsed.agents)?;
    Ok(("agents".to_owned(), value.to_string()))
}

/// How long queued alarm notifications may take to go out at shutdown.
const SINK_GRACE: Duration = Duration::from_secs(5);

/// Runs `drctl watch`.
pub fn run(args: WatchArgs, global: &GlobalArgs) -> CliResult {
    let mut global = global.clone();
    if let Some(file) = &args.agents {
        global
            .set
            .push(agents_override(file).map_err(CliError::bad_input)?);
    }
    let mut prepared = prepare(&global, &args.session, SessionKind::Watch)?;
    let fleet = prepared.host.len() > 1 || !prepared.config.agents.is_empty();
    let end = if args.until_end {
        Some(prepared.end.ok_or_else(|| {
            CliError::bad_input(anyhow::anyhow!(
                "--until-end needs a scenario with deployment.end (backend {})",
                prepared.backend
            ))
        })?)
    } else {
        args.run_for.map(|d| drctl_policy::Timestamp::ZERO + d)
    };
    let cfg = prepared.config.clone();
    let agent = agent_name(&cfg);
    // A live watcher owns the agent's control socket; a virtual-clock run is
    // over in milliseconds and takes none (so drills can run side by side).
    // Fleet mode has no per-agent control socket or metrics yet (they follow one agent).
    let live = args.session.clock == ClockKind::Real && !fleet;
    if fleet {
        tracing::info!(
            "fleet mode: {} agents; no control socket or metrics endpoint (one-agent features)",
            prepared.host.len()
        );
    }
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
        if let Some(listen) = cfg.metrics.listen.as_ref().filter(|_| !fleet) {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("metrics.listen {listen}"))
                .map_err(CliError::bad_input)?;
            let metrics = Metrics::new(&agent);
            let limits = crate::http::Limits::of(&cfg.metrics);
            tokio::spawn(crate::http::serve(listener, metrics.registry(), limits));
            host.observe(Box::new(metrics));
            tracing::info!("metrics on http://{listen}/metrics");
        }
        let sinks = if cfg.alarms.sinks.is_empty() {
            None
        } else {
            let sinks =
                AlarmSinks::start(&cfg.alarms.sinks, &agent, fleet).map_err(CliError::failed)?;
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
        host.inject_all(drctl_policy::Event::Start)
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

//! `drctl watch`: a session until stopped, with the control socket, alarm
//! sinks and metrics of a long-running watcher.

use crate::alarms::AlarmSinks;
use crate::args::{ClockKind, GlobalArgs, SessionArgs};
use crate::control::Server;
use crate::exit::CliError;
use crate::host::observe::Shared;
use crate::host::session::Session;
use crate::host::shadow::Shadow;
use crate::host::supervise::Supervised;
use crate::host::Stop;
use crate::metrics::Metrics;
use crate::ops::agents::{checked, engine_config, SessionKind};
use crate::ops::backend::agent_name;
use crate::ops::session::{prepare, Prepared};
use crate::report::Identity;
use anyhow::{anyhow, Context};
use drctl_config::Config;
use drctl_policy::Timestamp;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// When the watcher stops by itself.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// On a signal only.
    Stopped,
    /// At the scenario's `deployment.end` (mock).
    ScenarioEnd,
    /// After this much session time.
    For(Duration),
}

/// How long queued alarm notifications may take to go out at shutdown.
const SINK_GRACE: Duration = Duration::from_secs(5);

/// Runs a watcher until `until` or a signal.
pub fn watch(
    global: &GlobalArgs,
    args: &SessionArgs,
    until: Until,
    shadow: &[(String, String)],
) -> Result<(), CliError> {
    let Prepared {
        backend,
        end: scenario_end,
        mut session,
        config: cfg,
        fleet,
    } = prepare(
        global,
        args,
        SessionKind::Watch,
        Box::new(std::io::stdout()),
    )?;
    let end = match until {
        Until::Stopped => None,
        Until::For(d) => Some(Timestamp::ZERO + d),
        Until::ScenarioEnd => Some(scenario_end.ok_or_else(|| {
            CliError::bad_input(anyhow!(
                "--until-end needs a scenario with deployment.end (backend {})",
                backend.name()
            ))
        })?),
    };
    let agent = agent_name(&cfg);
    if !shadow.is_empty() {
        attach_shadow(&mut session, &cfg, shadow, fleet)?;
    }
    // A live watcher owns the agent's control socket; a virtual-clock run is
    // over in milliseconds and takes none (so drills can run side by side).
    // Fleet mode has no per-agent control socket or metrics yet (they follow one agent).
    let live = args.clock == ClockKind::Real && !fleet;
    if fleet {
        tracing::info!(
            "fleet mode: {} agents; no control socket or metrics endpoint (one-agent features)",
            session.host.len()
        );
    }
    let server = if live {
        let path = crate::control::socket_path(cfg.control.socket.as_deref(), &agent);
        Some(Arc::new(
            Server::bind(&path, &agent).map_err(CliError::bad_input)?,
        ))
    } else {
        None
    };
    if !fleet {
        serve_metrics(&mut session, &cfg, &agent)?;
    }
    let sinks = start_sinks(&mut session, &cfg, &agent, fleet)?;
    let serving = server.map(|server| {
        let identity = Identity {
            agent: agent.clone(),
            backend: backend.name().to_owned(),
            started: std::time::SystemTime::now(),
        };
        serve_control(&mut session, server, identity)
    });
    if args.clock == ClockKind::Real {
        // Fleet watchers too: systemd waits for every agent to be watching.
        let agents = session.host.len();
        crate::notify::attach(&mut session, agents);
    }
    session.start().map_err(CliError::failed)?;
    let why = session.run(end, |_| false).map_err(CliError::failed)?;
    tracing::info!(?why, "watch stopped");
    session.shutdown().map_err(CliError::failed)?;
    if why == Stop::Idle {
        tracing::info!("nothing more can happen (virtual clock)");
    }
    if let Some(task) = serving {
        task.abort();
    }
    if let Some(sinks) = sinks {
        let tasks = sinks.borrow_mut().close();
        session.block_on(crate::alarms::drain(tasks, SINK_GRACE));
    }
    Ok(())
}

/// The metrics endpoint (`metrics.listen`), when configured.
fn serve_metrics(
    session: &mut Session<Supervised>,
    cfg: &Config,
    agent: &str,
) -> Result<(), CliError> {
    let Some(listen) = cfg.metrics.listen.as_ref() else {
        return Ok(());
    };
    let listener = session
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("metrics.listen {listen}"))
        .map_err(CliError::bad_input)?;
    let sites: Vec<String> = cfg.sites.iter().map(|s| s.name.clone()).collect();
    let metrics = Metrics::new(agent, &sites);
    let limits = crate::http::Limits::of(&cfg.metrics);
    let endpoint = crate::http::Endpoint {
        registry: metrics.registry(),
        health: metrics.health(),
    };
    session.spawn(crate::http::serve(listener, endpoint, limits));
    session.host.observe(Box::new(metrics));
    tracing::info!("metrics on http://{listen}/metrics (and /livez, /readyz)");
    Ok(())
}

/// The alarm sinks (`[[alarms.sinks]]`), when configured.
fn start_sinks(
    session: &mut Session<Supervised>,
    cfg: &Config,
    agent: &str,
    fleet: bool,
) -> Result<Option<Rc<RefCell<AlarmSinks>>>, CliError> {
    if cfg.alarms.sinks.is_empty() {
        return Ok(None);
    }
    let sinks = session
        .block_on(async { AlarmSinks::start(&cfg.alarms.sinks, agent, fleet) })
        .map_err(CliError::failed)?;
    let sinks = Rc::new(RefCell::new(sinks));
    session.host.observe(Box::new(Shared(sinks.clone())));
    Ok(Some(sinks))
}

/// Answers control requests from inside the loop; the task accepting them.
fn serve_control(
    session: &mut Session<Supervised>,
    server: Arc<Server>,
    identity: Identity,
) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    session.host.serve(rx, identity);
    tracing::info!("control socket {}", server.path().display());
    session.spawn(async move { server.serve(tx).await })
}

/// `--shadow KEY=VALUE…`: a second engine with the effective config and
/// these changes, on the same inputs, never acting.
fn attach_shadow(
    session: &mut Session<Supervised>,
    cfg: &Config,
    overrides: &[(String, String)],
    fleet: bool,
) -> Result<(), CliError> {
    if fleet {
        return Err(CliError::bad_input(anyhow!(
            "--shadow follows one agent: it is not supported in fleet mode ([[agents]])"
        )));
    }
    let candidate = Config::from_recording(&cfg.recordable(), overrides)
        .map_err(|e| CliError::bad_input(anyhow!("--shadow: {e}")))?;
    let engine = checked(engine_config(&candidate, SessionKind::Watch)?)?;
    let session_id = session
        .host
        .session(0)
        .map(str::to_owned)
        .unwrap_or_default();
    let changes: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!("shadow: also running the policy with {}", changes.join(" "));
    session
        .host
        .observe(Box::new(Shadow::new(engine, session_id)));
    Ok(())
}

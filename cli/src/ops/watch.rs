//! `drctl watch`: a session until stopped, with the control socket, alarm
//! sinks and metrics of a long-running watcher.

use crate::alarms::AlarmSinks;
use crate::args::{ClockKind, GlobalArgs, SessionArgs};
use crate::control::Server;
use crate::exit::CliError;
use crate::host::observe::{Observer, Shared};
use crate::host::session::Session;
use crate::host::shadow::Shadow;
use crate::host::supervise::Supervised;
use crate::host::Stop;
use crate::metrics::{FleetMetrics, Handles, Metrics};
use crate::ops::agents::{checked, engine_config, SessionKind};
use crate::ops::backend::watcher_name;
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

/// How long event clients may take to read what is queued for them at shutdown.
const EVENTS_GRACE: Duration = Duration::from_secs(1);

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
        recording,
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
    // A fleet watcher's socket and identity are the fleet's: `agent.username`
    // when the config names one, else `fleet`.
    let agent = watcher_name(&cfg);
    // A live watcher owns the agent's control socket; a virtual-clock run is
    // over in milliseconds and takes none (so drills can run side by side).
    let live = args.clock == ClockKind::Real;
    if fleet {
        tracing::info!("fleet mode: {} agents", session.host.len());
    }
    let server = if live {
        let path = crate::control::socket_path(cfg.control.socket.as_deref(), &agent);
        Some(Server::bind(&path, &agent).map_err(CliError::bad_input)?)
    } else {
        None
    };
    // The event stream, for the socket's and the metrics listener's clients.
    let hub = (live || cfg.metrics.listen.is_some()).then(|| {
        let sessions = session.host.engines().map(|(s, _)| s);
        let names = crate::events::names(sessions, (!fleet).then_some(agent.as_str()));
        Arc::new(crate::events::Hub::new(names))
    });
    if let Some(hub) = &hub {
        session
            .host
            .observe(Box::new(crate::events::Tap(hub.clone())));
    }
    let server = server.map(|s| {
        Arc::new(match &hub {
            Some(hub) => s.with_events(hub.clone()),
            None => s,
        })
    });
    let divergences = serve_metrics(&mut session, &cfg, &agent, fleet, hub.clone())?;
    if !shadow.is_empty() {
        attach_shadow(&mut session, &cfg, shadow, fleet, hub.clone(), divergences)?;
    }
    let sinks = start_sinks(&mut session, &cfg, &agent, fleet)?;
    let serving = server.map(|server| {
        let identity = Identity {
            agent: agent.clone(),
            backend: backend.name().to_owned(),
            started: std::time::SystemTime::now(),
            recording: recording.map(|p| p.display().to_string()),
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
    if let Some(hub) = &hub {
        // The event clients get what is queued for them and the end.
        let flushed = async { tokio::time::timeout(EVENTS_GRACE, hub.flushed()).await };
        let _ = session.block_on(flushed);
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

/// The metrics endpoint (`metrics.listen`), when configured: one agent's
/// metrics, or a fleet's; the shadow divergence counter.
fn serve_metrics(
    session: &mut Session<Supervised>,
    cfg: &Config,
    agent: &str,
    fleet: bool,
    events: Option<Arc<crate::events::Hub>>,
) -> Result<Option<prometheus_client::metrics::counter::Counter>, CliError> {
    let Some(listen) = cfg.metrics.listen.as_ref() else {
        return Ok(None);
    };
    let listener = session
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("metrics.listen {listen}"))
        .map_err(CliError::bad_input)?;
    let sites: Vec<String> = cfg.sites.iter().map(|s| s.name.clone()).collect();
    let limits = crate::http::Limits::of(&cfg.metrics);
    let (handles, observer): (Handles, Box<dyn Observer>) = if fleet {
        let agents: Vec<String> = session.host.engines().map(|(s, _)| s.to_owned()).collect();
        let metrics = FleetMetrics::new(&agents, &sites);
        (metrics.handles(), Box::new(metrics))
    } else {
        let metrics = Metrics::new(agent, &sites);
        (metrics.handles(), Box::new(metrics))
    };
    session.host.observe(observer);
    let endpoint = crate::http::Endpoint {
        registry: handles.registry,
        health: handles.health,
        events,
    };
    session.spawn(crate::http::serve(listener, endpoint, limits));
    tracing::info!("metrics on http://{listen}/metrics (and /livez, /readyz, /events)");
    Ok(Some(handles.shadow_divergences))
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
    events: Option<Arc<crate::events::Hub>>,
    counter: Option<prometheus_client::metrics::counter::Counter>,
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
    // Each divergence on the event stream and in `drctl_shadow_divergences_total`.
    let shadow = Shadow::new(engine, session_id).on_divergence(move |session, d| {
        if let Some(hub) = &events {
            crate::events::Tap::divergence(hub, session, d.t, d.by, &d.decision);
        }
        if let Some(counter) = &counter {
            counter.inc();
        }
    });
    session.host.observe(Box::new(shadow));
    Ok(())
}

//! A `watch`, `startup` or `switch` session made ready: config, agents,
//! backend, clock, recorder and decision printer on one host loop.

use crate::args::{ClockKind, GlobalArgs, OutputFormat, SessionArgs};
use crate::exit::CliError;
use crate::history::{self, Context, HistoryLog};
use crate::host::observe::{DecisionPrinter, Format};
use crate::host::record::Recorder;
use crate::host::session::Session;
use crate::host::supervise::Supervised;
use crate::host::{Clock, Host};
use crate::ops::agents::{is_fleet, session_agents, SessionKind, SESSION};
use crate::ops::backend::agent_name;
use crate::ops::backend::{load_backend, setup, BackendKind, Setup};
use crate::ops::cache::PreferredCache;
use drctl_config::Config;
use drctl_policy::{PhaseKind, Timestamp, View};
use drctl_protocol::recording::{self, Header, RecordedAgent};
use std::sync::Arc;
use tokio::sync::Notify;

/// A prepared session: the host loop on its runtime and what it runs with.
pub struct Prepared {
    /// The backend.
    pub backend: BackendKind,
    /// Where the scenario ends (`--until-end`), for mock runs.
    pub end: Option<Timestamp>,
    /// The session, ready to start.
    pub session: Session<Supervised>,
    /// The effective config (sites and first site resolved).
    pub config: Config,
    /// Whether it runs the config's `[[agents]]` (a fleet watcher).
    pub fleet: bool,
    /// The recording's file (`--record`, or the one `--record-dir` named).
    pub recording: Option<std::path::PathBuf>,
}

/// Loads config and plugin and builds the session (SPEC §4, §7), printing
/// decisions to `out` (stdout, or a progress bar's writer).
pub fn prepare(
    global: &GlobalArgs,
    args: &SessionArgs,
    kind: SessionKind,
    out: Box<dyn std::io::Write>,
) -> Result<Prepared, CliError> {
    let Setup {
        cfg,
        backend,
        plugin_cfg,
        end,
        ..
    } = setup(global, args.backend.as_deref(), args.scenario.as_deref())?;
    let plugin = load_backend(&cfg, &backend, args.clock)?;
    let fleet = is_fleet(&cfg, kind);
    let (agents, caches) = session_agents(&cfg, kind, &backend)?;
    // A recording names the cached site S5 started at (each agent's, in a
    // fleet's), so a replay starts there too.
    let cached = caches.first().and_then(|c| c.3.clone());
    let recorded_agents = if fleet {
        recorded_agents(&agents)
    } else {
        Vec::new()
    };
    let wake = Arc::new(Notify::new());
    let instance = Supervised::start(
        plugin,
        plugin_cfg,
        wake.clone(),
        cfg.backend.command_timeout,
    )
    // A backend refusing its config or scenario is bad input.
    .map_err(CliError::bad_input)?;
    let clock = match args.clock {
        ClockKind::Real => Clock::real(),
        ClockKind::Virtual => Clock::virtual_at_zero(),
    };
    let mut host = Host::fleet(agents, instance, clock, wake);
    if !cfg.switch.gates.is_empty() {
        let gates = crate::gates::Gates::new(&cfg.switch.gates).map_err(CliError::bad_input)?;
        host.run_gates(gates);
    }
    // Before the session starts: a recording refused is refused before
    // anything connects anywhere.
    // A fleet's recordings are named after the watcher (`fleet` unless the
    // config names `agent.username`), one agent's after the agent.
    let record_name = if fleet {
        crate::ops::backend::watcher_name(&cfg)
    } else {
        agent_name(&cfg)
    };
    let mut recording = None;
    if let Some(target) = args.record_target(&record_name) {
        let mut header = recording_header(&cfg, &backend, kind, args.clock, cached);
        if fleet {
            header.version = recording::FLEET_VERSION;
            header.session = String::new();
            header.cached_preferred = None;
            header.agents = recorded_agents;
        }
        let recorder = Recorder::open(&target, &header).map_err(CliError::bad_input)?;
        recording = Some(recorder.path().to_owned());
        host.observe(Box::new(recorder));
    }
    if !caches.is_empty() {
        host.observe(Box::new(PreferredCache::new(caches)));
    }
    if args.clock == ClockKind::Real {
        let names = host
            .engines()
            .map(|(session, _)| {
                let name = if session == SESSION && !fleet {
                    agent_name(&cfg)
                } else {
                    session.to_owned()
                };
                (session.to_owned(), name)
            })
            .collect();
        if let Some(log) = open_history(&cfg, kind, names) {
            host.observe(Box::new(log));
        }
    }
    // `out` is stdout, or a spinner's writer to it: stdout's own terminal decides.
    let colour = crate::logging::colours(&std::io::stdout());
    let printer = DecisionPrinter::new(out, format(args.output)).coloured(colour);
    host.observe(Box::new(if fleet {
        printer.with_agents()
    } else {
        printer
    }));
    Ok(Prepared {
        backend,
        end,
        session: Session::new(host).map_err(CliError::failed)?,
        config: cfg,
        fleet,
        recording,
    })
}

/// The printer's format for `--output`.
pub fn format(f: OutputFormat) -> Format {
    match f {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
    }
}

/// Starts the session and runs it until every agent watches a site or gives
/// up (S1-S4); the first agent's view then (`startup` and `switch` run one).
pub fn start_up(session: &mut Session<Supervised>) -> Result<View, CliError> {
    session.start().map_err(CliError::failed)?;
    session
        .run(None, |host| {
            host.engines()
                .all(|(_, e)| matches!(e.view().phase, PhaseKind::Watching | PhaseKind::GaveUp))
        })
        .map_err(CliError::failed)?;
    session
        .host
        .engine(0)
        .map(|e| e.view())
        .ok_or_else(|| CliError::failed(anyhow::anyhow!("no agent to start")))
}

/// The host's history log for a live session (`[history]`); a log that
/// cannot be opened is a warning, never a reason not to watch.
fn open_history(
    cfg: &Config,
    kind: SessionKind,
    names: std::collections::HashMap<String, String>,
) -> Option<HistoryLog> {
    if !cfg.history.enabled {
        return None;
    }
    let Some(path) = history::path(&cfg.history) else {
        tracing::warn!("history: no state directory (no $STATE_DIRECTORY, no home): decisions are not logged; set history.file");
        return None;
    };
    let context =
        Context::this_process(kind.as_str(), history::config_hash(&cfg.recordable()), None);
    HistoryLog::open(&path, &cfg.history, context, names)
        .map_err(|e| tracing::warn!("{e}: decisions are not logged"))
        .ok()
}

/// A fleet recording's agents: each one's session, username, seed and S5
/// site, as its engine was started (what a replay starts it with again).
pub fn recorded_agents(agents: &[crate::ops::agents::AgentSpec]) -> Vec<RecordedAgent> {
    agents
        .iter()
        .map(|(session, _, engine)| RecordedAgent {
            session: session.clone(),
            username: engine.username().to_owned(),
            seed: engine.seed(),
            cached_preferred: engine
                .config()
                .cached_preferred
                .as_ref()
                .map(|s| s.to_string()),
        })
        .collect()
}

/// The header of a recording of this session.
fn recording_header(
    cfg: &Config,
    backend: &BackendKind,
    kind: SessionKind,
    clock: ClockKind,
    cached_preferred: Option<String>,
) -> Header {
    Header {
        format: recording::FORMAT.to_owned(),
        version: recording::VERSION,
        drctl: env!("CARGO_PKG_VERSION").to_owned(),
        backend: backend.name().to_owned(),
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        command: kind.as_str().to_owned(),
        clock: clock.as_str().to_owned(),
        session: SESSION.to_owned(),
        config: cfg.recordable(),
        cached_preferred,
        agents: Vec::new(),
    }
}

//! Wiring for the commands that run the DR procedure: config -> engine
//! config, plugin loading, and the host loop with its observers.

use crate::exit::CliError;
use crate::host::observe::{DecisionPrinter, Format};
use crate::host::record::Recorder;
use crate::host::supervise::Supervised;
use crate::host::{Clock, Host};
use anyhow::{anyhow, Context};
use clap::{Args, ValueEnum};
use drctl_config::{Config, FailbackMode};
use drctl_plugin_api::abi::Capabilities;
use drctl_plugin_api::loader::{self, Instance, Plugin};
use drctl_plugin_api::messages::Password;
use drctl_plugin_api::recording::{self, Header};
use drctl_policy::{BackoffConfig, Engine, EngineConfig, Failback, SiteConfig, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

/// Which clock runs the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// Wall-clock time.
    Real,
    /// Jump to the next deadline (scenarios at full speed; DETERMINISTIC backends only).
    Virtual,
}

/// How decisions are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line a decision, for people.
    Text,
    /// One JSON object a line: exactly the decision records (SPEC §6).
    Json,
}

/// Options shared by `watch`, `startup` and `switch`.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Backend plugin to use (overrides `backend.name`).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Scenario file for the mock backend (sets `backend.mock.scenario`).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The clock: `real`, or `virtual` to run a scenario at full speed.
    #[arg(long, value_enum, default_value_t = ClockKind::Real)]
    pub clock: ClockKind,
    /// Decisions on stdout as text or JSON lines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Record the session (JSON Lines, SPEC §6) for `drctl replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// Which subcommand runs the session (recorded in the header; `startup` gives
/// up after `startup.timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// `drctl watch`.
    Watch,
    /// `drctl startup`.
    Startup,
    /// `drctl switch`.
    Switch,
}

impl SessionKind {
    /// The subcommand's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Watch => "watch",
            SessionKind::Startup => "startup",
            SessionKind::Switch => "switch",
        }
    }

    /// The kind a recording header names.
    pub fn from_name(name: &str) -> Option<SessionKind> {
        [
            SessionKind::Watch,
            SessionKind::Startup,
            SessionKind::Switch,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether S1 gives up after `startup.timeout` (a one-shot command) or retries forever.
    fn gives_up(self) -> bool {
        self != SessionKind::Watch
    }
}

/// The session id of the one agent a single-agent command runs.
pub const SESSION: &str = "agent-1";

/// The two sites a mock scenario assumes when the config names none.
fn default_mock_sites() -> [drctl_config::SiteConfig; 2] {
    [1, 2].map(|n| drctl_config::SiteConfig {
        name: format!("site{n}"),
        cs_proxy: format!("csproxy{n}.mock:7000"),
        app_name: format!("AIL_site{n}"),
    })
}

/// A prepared session: the engine config, the plugin instance and what the
/// host needs to run it.
pub struct Prepared {
    /// The backend's name.
    pub backend: String,
    /// Where the scenario ends (`--until-end`), for mock runs.
    pub end: Option<Timestamp>,
    /// The host loop, ready to run.
    pub host: Host<Supervised>,
    /// The effective config (sites and first site resolved).
    pub config: Config,
}

/// What a session runs with before anything starts: the effective config
/// (sites and first site resolved), the backend and its JSON config, and what
/// a mock scenario says about its end and its fleet.
pub struct Setup {
    /// The effective config.
    pub cfg: Config,
    /// The backend's name.
    pub backend: String,
    /// The backend's JSON config.
    pub plugin_cfg: serde_json::Value,
    /// Where the scenario ends (mock).
    pub end: Option<Timestamp>,
    /// How many agents the scenario is written for (mock `deployment.agents`).
    pub agents: Option<u32>,
}

/// Loads the config layers and, for the mock, the scenario's own settings (SPEC §6, §7).
pub fn setup(
    global: &crate::args::GlobalArgs,
    backend: Option<&str>,
    scenario: Option<&std::path::Path>,
) -> Result<Setup, CliError> {
    let mut opts = global.load_options();
    if let Some(b) = backend {
        opts.overrides.push(("backend.name".into(), b.to_owned()));
    }
    let mut cfg: Config = Config::load(&opts).or_else(|e| {
        // A mock drill needs no site config: it brings its own deployment.
        if scenario.is_some() && e.key() == Some("sites") {
            Config::load(&mock_sites_options(opts.clone()))
        } else {
            Err(e)
        }
    })?;
    let backend = cfg.backend.name.clone();
    if cfg.sites.len() != 2 {
        cfg.sites = default_mock_sites().to_vec();
    }
    let mut plugin_cfg = cfg.backend.table_json(&backend);
    let mut end = None;
    let mut agents = None;
    if backend == "mock" {
        let scenario = match scenario {
            Some(p) => p.to_owned(),
            None => plugin_cfg
                .get("scenario")
                .and_then(|v| v.as_str())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    CliError::bad_input(anyhow!(
                        "the mock backend needs a scenario: --scenario FILE or backend.mock.scenario"
                    ))
                })?,
        };
        let scenario = std::fs::canonicalize(&scenario)
            .with_context(|| format!("scenario {}", scenario.display()))
            .map_err(CliError::bad_input)?;
        let meta = scenario_meta(&scenario).map_err(CliError::bad_input)?;
        end = meta.end.map(|d| Timestamp::ZERO + d);
        agents = meta.agents;
        if meta.first_site.is_some() {
            cfg.startup.first_site = meta.first_site;
        }
        plugin_cfg = serde_json::json!({
            "scenario": scenario,
            "sites": cfg.sites.iter().map(|s| serde_json::json!({
                "name": s.name, "cs_proxy": s.cs_proxy, "app_name": s.app_name
            })).collect::<Vec<_>>(),
            "dn": cfg.agent.dn.clone().unwrap_or_else(|| "7001".into()),
        });
    }
    if backend == "ail-bridge" {
        // The bridge reads the Person and Application objects itself (S2, S3):
        // it needs the [genesys] names and the agent's DN from the main config.
        if let Some(table) = plugin_cfg.as_object_mut() {
            if let Ok(genesys) = serde_json::to_value(&cfg.genesys) {
                table.entry("genesys").or_insert(genesys);
            }
            if let Some(dn) = &cfg.agent.dn {
                table.entry("dn").or_insert_with(|| dn.clone().into());
            }
        }
    }
    // What the engine runs with is exactly what a recording keeps.
    if cfg.startup.first_site.is_none() {
        cfg.startup.first_site = cfg.sites.first().map(|s| s.name.clone());
    }
    Ok(Setup {
        cfg,
        backend,
        plugin_cfg,
        end,
        agents,
    })
}

/// Loads config and plugin and builds the host (SPEC §4, §7).
pub fn prepare(
    global: &crate::args::GlobalArgs,
    args: &SessionArgs,
    kind: SessionKind,
) -> Result<Prepared, CliError> {
    prepare_to(global, args, kind, Box::new(std::io::stdout()))
}

/// [`prepare`], printing decisions to `out` (a progress bar's writer, say).
pub fn prepare_to(
    global: &crate::args::GlobalArgs,
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
    let fleet = kind == SessionKind::Watch && !cfg.agents.is_empty();
    let agents = if fleet {
        if args.record.is_some() {
            return Err(CliError::bad_input(anyhow!(
                "--record is not supported in fleet mode ([[agents]]) yet: record one agent at a time"
            )));
        }
        crate::fleet::configured_agents(&cfg, kind, &backend)?
    } else {
        vec![(
            SESSION.to_owned(),
            password_for(&cfg, &backend)?,
            new_engine(&cfg, kind)?,
        )]
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
    if let Some(path) = &args.record {
        let header = recording_header(&cfg, &backend, kind, args.clock, SESSION);
        let recorder = Recorder::create(path, &header).map_err(CliError::bad_input)?;
        host.observe(Box::new(recorder));
    }
    let printer = DecisionPrinter::new(out, args.output.into());
    host.observe(Box::new(if fleet {
        printer.with_agents()
    } else {
        printer
    }));
    Ok(Prepared {
        backend,
        end,
        host,
        config: cfg,
    })
}

/// The password for `cfg`'s `[agent]`: the mock needs none (it takes one if
/// configured); a real backend does.
pub fn password_for(cfg: &Config, backend: &str) -> Result<Password, CliError> {
    if backend == "mock" && !cfg.has_password_source() {
        Ok(Password::new(""))
    } else {
        Ok(Password::new(cfg.resolve_password()?.expose()))
    }
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// The engine for `cfg` (sites and first site resolved), as `kind` runs it.
pub fn new_engine(cfg: &Config, kind: SessionKind) -> Result<Engine, CliError> {
    Engine::new(engine_config(cfg, kind)?).map_err(|e| CliError::bad_input(anyhow!("config: {e}")))
}

/// The engine config for `cfg` (sites and first site resolved), as `kind` runs it.
pub fn engine_config(cfg: &Config, kind: SessionKind) -> Result<EngineConfig, CliError> {
    let sites: [SiteConfig; 2] = match cfg.sites.as_slice() {
        [a, b] => [a, b].map(|s| SiteConfig {
            name: s.name.as_str().into(),
            cs_proxy: s.cs_proxy.clone(),
            app_name: s.app_name.clone(),
        }),
        _ => {
            return Err(CliError::bad_input(anyhow!(
                "config: expected exactly two [[sites]], found {}",
                cfg.sites.len()
            )))
        }
    };
    let engine_cfg = EngineConfig {
        username: cfg.agent.username.clone().unwrap_or_else(|| "agent".into()),
        first_site: cfg
            .first_site()
            .map(|s| s.name.as_str().into())
            .unwrap_or_else(|| sites[0].name.clone()),
        sites,
        cached_preferred: None,
        startup_timeout: kind.gives_up().then_some(cfg.startup.timeout),
        backoff: BackoffConfig {
            initial: cfg.startup.backoff.initial,
            factor: cfg.startup.backoff.factor,
            max: cfg.startup.backoff.max,
            jitter: cfg.startup.backoff.jitter,
        },
        site_timeout: cfg.policy.site_timeout,
        site_sip_register_timeout: cfg.policy.site_sip_register_timeout,
        supervisor_logout_reasons: cfg.policy.supervisor_logout_reasons.clone(),
        embedded_endpoint: cfg.agent.embedded_endpoint,
        hold_down: cfg.policy.hold_down,
        failback: match cfg.policy.failback {
            FailbackMode::Manual => Failback::Manual,
            FailbackMode::Auto => Failback::Auto {
                after: cfg.policy.failback_after,
            },
        },
        switchover_jitter: cfg.policy.switchover_jitter,
        seed: cfg.policy.seed,
    };
    Ok(engine_cfg)
}

/// Finds and loads the backend plugin `name`; refuses a virtual clock for a
/// backend driven by real I/O.
pub fn load_backend(cfg: &Config, name: &str, clock: ClockKind) -> Result<Plugin, CliError> {
    let path = loader::find_plugin(name, &cfg.backend.plugin_dirs).map_err(CliError::bad_input)?;
    let plugin = loader::load(&path).map_err(CliError::bad_input)?;
    let deterministic = plugin.capabilities().contains(Capabilities::DETERMINISTIC);
    if clock == ClockKind::Virtual && !deterministic {
        return Err(CliError::bad_input(anyhow!(
            "--clock virtual needs a DETERMINISTIC backend; {} ({}) is driven by real I/O",
            name,
            path.display()
        )));
    }
    Ok(plugin)
}

/// Starts an instance of `plugin` with its JSON config; its wakes notify the returned `Notify`.
pub fn start_backend(
    plugin: &Plugin,
    plugin_cfg: &serde_json::Value,
) -> Result<(Instance, Arc<Notify>), CliError> {
    let wake = Arc::new(Notify::new());
    let instance = crate::host::supervise::create_instance(plugin, plugin_cfg, &wake)
        // A backend refusing its config or scenario is bad input.
        .map_err(CliError::bad_input)?;
    Ok((instance, wake))
}

/// The header of a recording of this session.
fn recording_header(
    cfg: &Config,
    backend: &str,
    kind: SessionKind,
    clock: ClockKind,
    session: &str,
) -> Header {
    Header {
        format: recording::FORMAT.to_owned(),
        version: recording::VERSION,
        drctl: env!("CARGO_PKG_VERSION").to_owned(),
        backend: backend.to_owned(),
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        command: kind.as_str().to_owned(),
        clock: match clock {
            ClockKind::Real => "real",
            ClockKind::Virtual => "virtual",
        }
        .to_owned(),
        session: session.to_owned(),
        config: cfg.recordable(),
    }
}

/// The config for a client of a running watcher (`status`, `pause`, …): only
/// the agent and the control socket matter, so missing sites are no error.
pub fn client_config(global: &crate::args::GlobalArgs) -> Result<Config, CliError> {
    let opts = global.load_options();
    Ok(Config::load(&opts).or_else(|e| {
        if e.key() == Some("sites") {
            Config::load(&mock_sites_options(opts.clone()))
        } else {
            Err(e)
        }
    })?)
}

/// The agent's name as the control socket and metrics know it.
pub fn agent_name(cfg: &Config) -> String {
    cfg.agent.username.clone().unwrap_or_else(|| "agent".into())
}

/// The control socket for `cfg`'s agent.
pub fn control_socket(cfg: &Config) -> PathBuf {
    crate::control::socket_path(cfg.control.socket.as_deref(), &agent_name(cfg))
}

/// The layers of `opts` plus the two default mock sites.
fn mock_sites_options(mut opts: drctl_config::LoadOptions) -> drctl_config::LoadOptions {
    let sites = default_mock_sites()
        .iter()
        .map(|s| {
            format!(
                "{{ name = \"{}\", cs-proxy = \"{}\", app-name = \"{}\" }}",
                s.name, s.cs_proxy, s.app_name
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    opts.overrides
        .insert(0, ("sites".into(), format!("[{sites}]")));
    opts
}

/// What the host itself needs from a scenario: where it starts and ends.
/// The plugin validates the rest (with line numbers) when it loads it.
struct ScenarioMeta {
    first_site: Option<String>,
    end: Option<std::time::Duration>,
    agents: Option<u32>,
}

fn scenario_meta(path: &std::path::Path) -> anyhow::Result<ScenarioMeta> {
    let text = drctl_plugin_mock::scenario::read_text(path)?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let deployment = value.get("deployment").and_then(|d| d.as_table());
    let get = |k: &str| deployment.and_then(|d| d.get(k)).and_then(|v| v.as_str());
    let end = get("end")
        .map(|s| {
            drctl_plugin_api::duration::parse(s)
                .map_err(|e| anyhow!("{}: deployment.end: {e}", path.display()))
        })
        .transpose()?;
    let agents = deployment
        .and_then(|d| d.get("agents"))
        .and_then(|v| v.as_integer())
        .and_then(|n| u32::try_from(n).ok());
    Ok(ScenarioMeta {
        first_site: get("first-site").map(str::to_owned),
        end,
        agents,
    })
}

/// The single-threaded runtime the host loop runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)
}

/// A stop future for [`Host::run`](crate::host::Host::run): SIGINT, SIGTERM
/// or SIGHUP (a closed terminal or ssh session stops as cleanly as SIGTERM).
/// Call it inside the runtime: the handlers are installed at once, so a
/// signal from then on is never the default (death without a clean stop).
pub fn stop_on_signal() -> crate::host::StopFuture<'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, number: i32| match signal(kind) {
        Ok(stream) => Some((stream, number)),
        Err(e) => {
            tracing::warn!("cannot handle {}: {e}", signal_name(number));
            None
        }
    };
    let streams = [
        install(SignalKind::interrupt(), libc::SIGINT),
        install(SignalKind::terminate(), libc::SIGTERM),
        install(SignalKind::hangup(), libc::SIGHUP),
    ];
    Box::pin(shutdown_signal(streams))
}

/// The signal that stopped the session, once one did.
pub fn received_signal() -> Option<i32> {
    match RECEIVED.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// A signal's name, for messages.
pub fn signal_name(number: i32) -> &'static str {
    match number {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The signal [`stop_on_signal`] saw (0: none yet).
static RECEIVED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Resolves on the first of `streams` to deliver, noting which.
async fn shutdown_signal(streams: [Option<(tokio::signal::unix::Signal, i32)>; 3]) {
    async fn next(stream: Option<(tokio::signal::unix::Signal, i32)>) -> i32 {
        match stream {
            Some((mut s, number)) => {
                // `None`: no more signals can come; wait for the others.
                match s.recv().await {
                    Some(()) => number,
                    None => std::future::pending().await,
                }
            }
            None => std::future::pending().await,
        }
    }
    let [a, b, c] = streams;
    let number = tokio::select! {
        n = next(a) => n,
        n = next(b) => n,
        n = next(c) => n,
    };
    tracing::info!("{} received: stopping", signal_name(number));
    RECEIVED.store(number, std::sync::atomic::Ordering::Relaxed);
}

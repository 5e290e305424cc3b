//! The backends drctl knows by name and what each needs from the config:
//! the one place that knows plugin names (`mock`, `ail-bridge`, `replay`).

use crate::args::{ClockKind, GlobalArgs};
use crate::exit::CliError;
use crate::host::supervise::create_instance;
use anyhow::{anyhow, Context};
use drctl_config::{Config, LoadOptions};
use drctl_plugin_api::abi::Capabilities;
use drctl_plugin_api::loader::{self, Instance, Plugin};
use drctl_policy::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

/// A backend plugin, by what drctl knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `mock`: a scenario file, its own sites; no password needed.
    Mock,
    /// `ail-bridge`: reads the Person and Application objects itself.
    AilBridge,
    /// `replay`: a recording.
    Replay,
    /// Any other plugin: its `[backend.NAME]` table as is.
    Other(String),
}

impl BackendKind {
    /// The kind of the plugin `name`.
    pub fn from_name(name: &str) -> BackendKind {
        match name {
            "mock" => BackendKind::Mock,
            "ail-bridge" => BackendKind::AilBridge,
            "replay" => BackendKind::Replay,
            other => BackendKind::Other(other.to_owned()),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        match self {
            BackendKind::Mock => "mock",
            BackendKind::AilBridge => "ail-bridge",
            BackendKind::Replay => "replay",
            BackendKind::Other(name) => name,
        }
    }

    /// Whether the agent must have a password (the mock takes one if configured).
    pub fn needs_password(&self) -> bool {
        *self != BackendKind::Mock
    }
}

/// What a session runs with before anything starts: the effective config
/// (sites and first site resolved), the backend and its JSON config, and what
/// a mock scenario says about its end and its fleet.
pub struct Setup {
    /// The effective config.
    pub cfg: Config,
    /// The backend.
    pub backend: BackendKind,
    /// The backend's JSON config.
    pub plugin_cfg: serde_json::Value,
    /// Where the scenario ends (mock).
    pub end: Option<Timestamp>,
    /// How many agents the scenario is written for (mock `deployment.agents`).
    pub agents: Option<u32>,
}

/// Loads the config layers and, for the mock, the scenario's own settings (SPEC §6, §7).
pub fn setup(
    global: &GlobalArgs,
    backend: Option<&str>,
    scenario: Option<&Path>,
) -> Result<Setup, CliError> {
    let mut opts = global.load_options();
    if let Some(b) = backend {
        opts.overrides.push(("backend.name".into(), b.to_owned()));
    }
    let mut cfg: Config = Config::load(&opts).or_else(|e| {
        if e.key() != Some("sites") {
            return Err(e);
        }
        // A mock drill needs no site config: it brings its own deployment,
        // whether its scenario comes from --scenario or backend.mock.scenario.
        let with_sites = Config::load(&mock_sites_options(opts.clone()))?;
        let mock = BackendKind::from_name(&with_sites.backend.name) == BackendKind::Mock;
        let configured = with_sites
            .backend
            .table_json("mock")
            .get("scenario")
            .is_some();
        if scenario.is_some() || (mock && configured) {
            Ok(with_sites)
        } else {
            Err(e)
        }
    })?;
    if cfg.sites.len() != 2 {
        cfg.sites = default_mock_sites().to_vec();
    }
    let backend = BackendKind::from_name(&cfg.backend.name);
    let mut s = Setup {
        plugin_cfg: cfg.backend.table_json(backend.name()),
        cfg,
        backend,
        end: None,
        agents: None,
    };
    match s.backend {
        BackendKind::Mock => mock_setup(&mut s, scenario)?,
        BackendKind::AilBridge => bridge_setup(&mut s),
        BackendKind::Replay | BackendKind::Other(_) => {}
    }
    // What the engine runs with is exactly what a recording keeps.
    if s.cfg.startup.first_site.is_none() {
        s.cfg.startup.first_site = s.cfg.sites.first().map(|x| x.name.clone());
    }
    Ok(s)
}

/// The mock's config: the scenario (`--scenario` or `backend.mock.scenario`),
/// the sites and the DN; the scenario's end, fleet size and first site.
fn mock_setup(s: &mut Setup, scenario: Option<&Path>) -> Result<(), CliError> {
    let scenario = match scenario {
        Some(p) => p.to_owned(),
        None => s
            .plugin_cfg
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
    s.end = meta.end.map(|d| Timestamp::ZERO + d);
    s.agents = meta.agents;
    if meta.first_site.is_some() {
        s.cfg.startup.first_site = meta.first_site;
    }
    let cfg = &s.cfg;
    s.plugin_cfg = serde_json::json!({
        "scenario": scenario,
        "sites": cfg.sites.iter().map(|s| serde_json::json!({
            "name": s.name, "cs_proxy": s.cs_proxy, "app_name": s.app_name
        })).collect::<Vec<_>>(),
        "dn": cfg.agent.dn.clone().unwrap_or_else(|| "7001".into()),
    });
    Ok(())
}

/// The bridge reads the Person and Application objects itself (S2, S3): it
/// needs the `[genesys]` names and the agent's DN from the main config; its
/// jar cache defaults to drctl's cache dir.
fn bridge_setup(s: &mut Setup) {
    if let Some(table) = s.plugin_cfg.as_object_mut() {
        if let Ok(genesys) = serde_json::to_value(&s.cfg.genesys) {
            table.entry("genesys").or_insert(genesys);
        }
        if let Some(dn) = &s.cfg.agent.dn {
            table.entry("dn").or_insert_with(|| dn.clone().into());
        }
        // The sidecar jar goes to drctl's cache dir: the unit's
        // CacheDirectory= ($CACHE_DIRECTORY) when set, since its
        // ProtectHome=yes hides ~/.cache.
        if let Some(dir) = crate::paths::cache_dir().and_then(|d| serde_json::to_value(d).ok()) {
            table.entry("cache-dir").or_insert(dir);
        }
    }
}

/// The two sites a mock scenario assumes when the config names none.
fn default_mock_sites() -> [drctl_config::SiteConfig; 2] {
    [1, 2].map(|n| drctl_config::SiteConfig {
        name: format!("site{n}"),
        cs_proxy: format!("csproxy{n}.mock:7000"),
        app_name: format!("AIL_site{n}"),
    })
}

/// The layers of `opts` plus the two default mock sites.
fn mock_sites_options(mut opts: LoadOptions) -> LoadOptions {
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

/// The config for a client of a running watcher (`status`, `pause`, …): only
/// the agent and the control socket matter, so missing sites are no error.
pub fn client_config(global: &GlobalArgs) -> Result<Config, CliError> {
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

/// The name `cfg`'s watcher goes by (its socket `<name>.sock`): the agent's,
/// or for a fleet (`[[agents]]`) without `agent.username`, `fleet`.
pub fn watcher_name(cfg: &Config) -> String {
    match &cfg.agent.username {
        None if !cfg.agents.is_empty() => "fleet".to_owned(),
        _ => agent_name(cfg),
    }
}

/// The control socket a client uses for `cfg`'s agent (the watcher binds
/// [`crate::control::socket_path`]).
pub fn control_socket(cfg: &Config) -> PathBuf {
    crate::control::client_socket_path(cfg.control.socket.as_deref(), &watcher_name(cfg))
}

/// What the host itself needs from a scenario: where it starts and ends.
/// The plugin validates the rest (with line numbers) when it loads it.
struct ScenarioMeta {
    first_site: Option<String>,
    end: Option<std::time::Duration>,
    agents: Option<u32>,
}

/// A mock scenario's DR options as written (`deployment.site-timeout`,
/// `deployment.site-sip-register-timeout`), for `config show --origin`;
/// `None` when the file cannot be read.
pub fn scenario_dr_options(path: &Path) -> Option<[Option<String>; 2]> {
    let text = drctl_plugin_mock::scenario::read_text(path).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let deployment = value.get("deployment").and_then(|d| d.as_table());
    let get = |k: &str| {
        deployment
            .and_then(|d| d.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Some([get("site-timeout"), get("site-sip-register-timeout")])
}

fn scenario_meta(path: &Path) -> anyhow::Result<ScenarioMeta> {
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

/// Finds and loads the backend plugin; refuses a virtual clock for a backend
/// driven by real I/O.
pub fn load_backend(
    cfg: &Config,
    backend: &BackendKind,
    clock: ClockKind,
) -> Result<Plugin, CliError> {
    let name = backend.name();
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
    let instance = create_instance(plugin, plugin_cfg, &wake)
        // A backend refusing its config or scenario is bad input.
        .map_err(CliError::bad_input)?;
    Ok((instance, wake))
}

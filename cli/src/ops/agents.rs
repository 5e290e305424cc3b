//! The agents a session runs: engine config from the config file, one engine
//! and password per agent, alone or as a fleet.

use crate::exit::CliError;
use crate::ops::backend::BackendKind;
use crate::ops::cache;
use anyhow::anyhow;
use drctl_config::{Config, FailbackMode};
use drctl_plugin_api::messages::Password;
use drctl_policy::{DirectiveNames, Engine, EngineConfig, Failback, LoginConfig, SiteConfig};

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

/// One agent as the host runs it: session id, password, engine.
pub type AgentSpec = (String, Password, Engine);

/// One agent's S5 cache: session id, username, file, the site read from it.
pub type CacheSpec = (String, String, std::path::PathBuf, Option<String>);

/// The session id of fleet agent `i` (0-based): `agent-1`, `agent-2`, …
pub fn session_id(i: usize) -> String {
    format!("agent-{}", i + 1)
}

/// The password for `cfg`'s `[agent]`: a backend that needs none takes one
/// if configured; any other needs one.
pub fn password_for(cfg: &Config, backend: &BackendKind) -> Result<Password, CliError> {
    if !backend.needs_password() && !cfg.has_password_source() {
        Ok(Password::new(""))
    } else {
        Ok(Password::new(cfg.resolve_password()?.expose()))
    }
}

/// The engine for `c`, its errors as bad input.
pub fn checked(c: EngineConfig) -> Result<Engine, CliError> {
    Engine::new(c).map_err(|e| CliError::bad_input(anyhow!("config: {e}")))
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
        backoff: cfg.startup.backoff.clone(),
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
        failback_probe_interval: cfg.policy.failback_probe_interval,
        // W5: config validation makes sure a login has its DN.
        login: cfg.agent.login.then(|| LoginConfig {
            dn: cfg.agent.dn.clone().unwrap_or_default(),
            queue: cfg.agent.login_queue.clone(),
            workmode: cfg.agent.login_workmode.clone(),
            reasons: cfg.agent.login_reasons.clone(),
        }),
        switchover_jitter: cfg.policy.switchover_jitter,
        directives: cfg.policy.directives.then(|| DirectiveNames {
            person_section: cfg.genesys.person_annex_section.clone(),
            preferred_option: cfg.genesys.preferred_app_option.clone(),
            application_section: cfg.genesys.dr_options_section.clone(),
            evacuate_option: cfg.genesys.evacuate_option.clone(),
        }),
        seed: cfg.policy.seed,
        gated: crate::gates::Gates::gated(&cfg.switch.gates),
    };
    Ok(engine_cfg)
}

/// The agents of a `watch`, `startup` or `switch`: the config's `[[agents]]`
/// for a fleet watcher, else the one `[agent]` as [`SESSION`]; with
/// `startup.cache-preferred`, each one's S5 cache (read here: the site it
/// names is tried first).
pub fn session_agents(
    cfg: &Config,
    kind: SessionKind,
    backend: &BackendKind,
) -> Result<(Vec<AgentSpec>, Vec<CacheSpec>), CliError> {
    let fleet = is_fleet(cfg, kind);
    let mut caches = Vec::new();
    let mut cached = |session: &str, one: &Config, c: &mut EngineConfig| {
        if !one.startup.cache_preferred {
            return;
        }
        let Some(path) = cache::path(one, &c.username, fleet) else {
            tracing::warn!("S5: no state directory (no $STATE_DIRECTORY, no home): the preferred-site cache is off");
            return;
        };
        let sites = c.sites.each_ref().map(|s| &*s.name);
        let site = cache::read(&path, &c.username, &sites);
        c.cached_preferred = site.as_deref().map(Into::into);
        caches.push((session.to_owned(), c.username.clone(), path, site));
    };
    let agents = if fleet {
        configured_agents(cfg, kind, backend, &mut cached)?
    } else {
        let mut c = engine_config(cfg, kind)?;
        cached(SESSION, cfg, &mut c);
        vec![(SESSION.to_owned(), password_for(cfg, backend)?, checked(c)?)]
    };
    Ok((agents, caches))
}

/// Whether `kind` runs `cfg`'s `[[agents]]` (a fleet watcher).
pub fn is_fleet(cfg: &Config, kind: SessionKind) -> bool {
    kind == SessionKind::Watch && !cfg.agents.is_empty()
}

/// `n` identical agents `agent-1..n`: each its own engine (username = session
/// id) with its own RNG seed, so E4 jitter and backoff spread across the fleet.
pub fn identical_agents(
    cfg: &Config,
    kind: SessionKind,
    n: usize,
) -> Result<Vec<AgentSpec>, CliError> {
    // Sized once: a collected `Result` would grow the vector by doubling,
    // holding two copies of a large fleet's engines at the last step.
    let mut all = Vec::with_capacity(n);
    for agent in identical_agents_lazy(cfg, kind, n)? {
        all.push(agent?);
    }
    Ok(all)
}

/// [`identical_agents`], each agent built when it is taken, so that a host
/// can take 100 000 engines without a second copy of them all; the
/// config is checked once before (the same error as the first agent's).
pub fn identical_agents_lazy(
    cfg: &Config,
    kind: SessionKind,
    n: usize,
) -> Result<impl ExactSizeIterator<Item = Result<AgentSpec, CliError>>, CliError> {
    let base = std::sync::Arc::new(engine_config(cfg, kind)?);
    base.validate()
        .map_err(|e| CliError::bad_input(anyhow!("config: {e}")))?;
    // One config for the whole fleet: each engine has its own username
    // and seed only (100 000 copies of the config were ~80 MB).
    Ok((0..n).map(move |i| {
        let session = session_id(i);
        let seed = splitmix(base.seed ^ (i as u64));
        let engine = Engine::for_agent(base.clone(), &session, seed)
            .map_err(|e| CliError::bad_input(anyhow!("config: {e}")))?;
        Ok((session, Password::new(""), engine))
    }))
}

/// The `[[agents]]` of `cfg`: one engine each (session id = username), a
/// password each (its own source, else `[agent]`'s), seeds spread like
/// [`identical_agents`]; `adjust` sees each engine config before its engine.
fn configured_agents(
    cfg: &Config,
    kind: SessionKind,
    backend: &BackendKind,
    adjust: &mut dyn FnMut(&str, &Config, &mut EngineConfig),
) -> Result<Vec<AgentSpec>, CliError> {
    cfg.agents
        .iter()
        .enumerate()
        .map(|(i, agent)| {
            let mut one = cfg.clone();
            let mut a = agent.clone();
            if a.password_env.is_none()
                && a.password_file.is_none()
                && a.password_credential.is_none()
                && a.password.is_none()
            {
                a.password_env.clone_from(&cfg.agent.password_env);
                a.password_file.clone_from(&cfg.agent.password_file);
                a.password_credential
                    .clone_from(&cfg.agent.password_credential);
                a.password.clone_from(&cfg.agent.password);
            }
            one.agent = a;
            let mut c = engine_config(&one, kind)?;
            let session = c.username.clone();
            c.seed = splitmix(cfg.policy.seed ^ (i as u64));
            adjust(&session, &one, &mut c);
            let engine = checked(c)?;
            let password = password_for(&one, backend)?;
            Ok((session, password, engine))
        })
        .collect()
}

/// A well-mixed seed per agent from the fleet's seed (SplitMix64's finaliser).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_agent_and_are_stable() {
        let seeds: std::collections::HashSet<u64> = (0..1000).map(splitmix).collect();
        assert_eq!(seeds.len(), 1000);
        assert_eq!(splitmix(7), splitmix(7));
    }
}

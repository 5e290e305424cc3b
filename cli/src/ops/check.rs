//! `drctl config check`: everything `drctl watch` would refuse before
//! connecting anywhere, checked without connecting, binding or starting
//! anything.

use crate::args::{ClockKind, GlobalArgs};
use crate::exit::CliError;
use crate::ops::agents::{session_agents, SessionKind};
use crate::ops::backend::{client_config, load_backend, setup, watcher_name, Setup};
use drctl_config::Config;

/// A configuration `watch` would start with, and what is worth knowing.
pub struct Checked {
    /// The effective configuration.
    pub config: Config,
    /// Not refusals: e.g. a watcher already answers on the control socket.
    pub notes: Vec<String>,
}

/// Checks the config layers, the agent and its password source (readable,
/// private; then every fleet agent's), the backend's own settings (a mock
/// scenario), the plugin (found, safe, loadable), the alarm sinks' commands
/// (executable), the control socket's directory.
pub fn check(global: &GlobalArgs) -> Result<Checked, CliError> {
    // The agent and its password first: what every backend needs.
    let base = client_config(global)?;
    base.validate_agent()?;
    base.resolve_password()?;
    let Setup { cfg, backend, .. } = setup(global, None, None)?;
    session_agents(&cfg, SessionKind::Watch, &backend)?;
    load_backend(&cfg, &backend, ClockKind::Real)?;
    crate::alarms::check(&cfg.alarms.sinks).map_err(CliError::bad_input)?;
    let mut notes = Vec::new();
    // Where the watcher binds (a client may look in more places); a fleet
    // watcher's is the fleet's (see `ops::watch`).
    let socket = crate::control::socket_path(cfg.control.socket.as_deref(), &watcher_name(&cfg));
    notes.extend(crate::control::check_socket(&socket).map_err(CliError::bad_input)?);
    Ok(Checked { config: cfg, notes })
}

//! `drctl simulate`: one fleet run of identical agents through a mock
//! scenario on the virtual clock.

use crate::args::{ClockKind, GlobalArgs};
use crate::exit::CliError;
use crate::fleet::{FleetStats, Report};
use crate::host::observe::Shared;
use crate::host::session::Session;
use crate::host::{Clock, Host};
use crate::ops::agents::{identical_agents, SessionKind};
use crate::ops::backend::{load_backend, setup, start_backend, BackendKind};
use anyhow::anyhow;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// What one fleet run gives: the report, agents in service per site per
/// second, and the site names.
pub type Run = (Report, Vec<Vec<u32>>, Vec<String>);

/// One fleet run; `set` is an extra `--set KEY=VALUE` for `--compare`.
pub fn simulate(
    global: &GlobalArgs,
    scenario: &Path,
    agents: Option<usize>,
    set: Option<&(String, String)>,
) -> Result<Run, CliError> {
    let mut global = global.clone();
    global.set.extend(set.cloned());
    let s = setup(&global, Some("mock"), Some(scenario))?;
    let n = agents.or(s.agents.map(|a| a as usize)).unwrap_or(1);
    if n == 0 {
        return Err(CliError::bad_input(anyhow!("--agents must be at least 1")));
    }
    let end = s.end.ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "{}: simulate needs deployment.end (where the simulation stops)",
            scenario.display()
        ))
    })?;
    let agents = identical_agents(&s.cfg, SessionKind::Watch, n)?;
    let plugin = load_backend(&s.cfg, &BackendKind::Mock, ClockKind::Virtual)?;
    let (instance, wake) = start_backend(&plugin, &s.plugin_cfg)?;
    let sites: Vec<String> = s.cfg.sites.iter().map(|x| x.name.clone()).collect();
    let stats = Rc::new(RefCell::new(FleetStats::new(sites.clone(), n)));
    let mut host = Host::fleet(agents, instance, Clock::virtual_at_zero(), wake);
    host.observe(Box::new(Shared(stats.clone())));
    let mut session = Session::new(host).map_err(CliError::failed)?;
    session.start().map_err(CliError::failed)?;
    session
        .run(Some(end), |_| false)
        .map_err(CliError::failed)?;
    let stats = stats.borrow();
    Ok((stats.report(end), stats.series().to_vec(), sites))
}

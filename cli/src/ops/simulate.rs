//! `drctl simulate`: one fleet run of identical agents through a mock
//! scenario on the virtual clock.

use crate::args::{ClockKind, GlobalArgs};
use crate::exit::CliError;
use crate::fleet::plot::Marks;
use crate::fleet::{FleetStats, Report};
use crate::host::observe::Shared;
use crate::host::session::Session;
use crate::host::{Clock, Host};
use crate::ops::agents::{identical_agents_lazy, SessionKind};
use crate::ops::backend::{load_backend, setup, start_backend, BackendKind};
use anyhow::anyhow;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// What one fleet run gives.
pub struct Run {
    /// The statistics.
    pub report: Report,
    /// Agents in service per site, each second from 0 to the end.
    pub series: Vec<Vec<u32>>,
    /// The site names, in the order of `series`' counts.
    pub sites: Vec<String>,
    /// The scenario's outage and when `site-timeout` ran out after it.
    pub marks: Marks,
}

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
    let agents = identical_agents_lazy(&s.cfg, SessionKind::Watch, n)?;
    let plugin = load_backend(&s.cfg, &BackendKind::Mock, ClockKind::Virtual)?;
    let (instance, wake) = start_backend(&plugin, &s.plugin_cfg)?;
    let sites: Vec<String> = s.cfg.sites.iter().map(|x| x.name.clone()).collect();
    let stats = Rc::new(RefCell::new(FleetStats::new(sites.clone(), n)));
    let mut host = Host::try_fleet(agents, instance, Clock::virtual_at_zero(), wake)?;
    host.observe(Box::new(Shared(stats.clone())));
    let mut session = Session::new(host).map_err(CliError::failed)?;
    session.start().map_err(CliError::failed)?;
    session
        .run(Some(end), |_| false)
        .map_err(CliError::failed)?;
    let stats = stats.borrow();
    let scenario = s
        .plugin_cfg
        .get("scenario")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let marks = marks(Path::new(scenario), &sites, s.cfg.policy.site_timeout, end);
    Ok(Run {
        report: stats.report(end),
        series: stats.series_until(end),
        sites,
        marks,
    })
}

/// The scenario's first outage (a site whose telephony goes off or whose CS
/// Proxy becomes unreachable, until both are back) and when the effective
/// `site-timeout` (`policy.site-timeout`, else the scenario's) ran out
/// after its start; none for a scenario without one.
fn marks(
    path: &Path,
    sites: &[String],
    policy_timeout: Option<std::time::Duration>,
    end: drctl_policy::Timestamp,
) -> Marks {
    use drctl_plugin_mock::scenario::ServiceState;
    use drctl_plugin_mock::scenario::{Happening, Scenario};
    // The plugin already loaded it: an error here only leaves the marks out.
    let Ok(scenario) = Scenario::load(path, sites) else {
        return Marks::default();
    };
    let end_s = end.as_nanos() as f64 / 1e9;
    let mut outage: Option<(String, f64, f64)> = None;
    let mut down = std::collections::HashMap::new();
    for h in &scenario.timeline {
        let Happening::Set { site, patch } = &h.what else {
            continue;
        };
        let state = down.entry(site.clone()).or_insert((false, false));
        if let Some(t) = patch.telephony {
            state.0 = t == ServiceState::Off;
        }
        if let Some(r) = patch.reachable {
            state.1 = !r;
        }
        let at = h.at.as_secs_f64();
        let is_down = state.0 || state.1;
        match &mut outage {
            None if is_down => outage = Some((site.clone(), at, end_s)),
            Some((s, _, to)) if s == site && !is_down && *to == end_s => *to = at.min(end_s),
            _ => {}
        }
    }
    let timeout = policy_timeout
        .or(scenario.deployment.site_timeout)
        .filter(|d| !d.is_zero());
    Marks {
        timeout: outage
            .as_ref()
            .zip(timeout)
            .map(|((_, from, _), d)| from + d.as_secs_f64())
            .filter(|t| *t <= end_s),
        outage,
    }
}

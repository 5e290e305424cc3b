//! `drctl switch` run locally: start up, switch, verify at the target.

use crate::args::{GlobalArgs, SessionArgs};
use crate::exit::CliError;
use crate::host::drill::Drill;
use crate::host::gate::OperatorIntent;
use crate::host::observe::Shared;
use crate::host::Host;
use crate::ops::agents::{SessionKind, SESSION};
use crate::ops::backend::{agent_name, load_backend, setup};
use crate::ops::session::{prepare, start_up};
use crate::report::SwitchReport;
use anyhow::anyhow;
use drctl_policy::{Event, PhaseKind};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The one agent a local drill runs (index in the host).
const AGENT: usize = 0;

/// Says what the drill is doing (a spinner, say).
pub type Say<'a> = &'a dyn Fn(&str);

/// What a local drill will do, checked before anything starts: the
/// config, the backend's settings and plugin, and the target.
pub struct LocalPlan {
    /// The agent's login name.
    pub agent: String,
}

/// Checks what a local `drctl switch` runs with (config, scenario, plugin)
/// and that `to`, if given, is one of its sites (exit 2 naming them).
pub fn plan(
    global: &GlobalArgs,
    args: &SessionArgs,
    to: Option<&str>,
) -> Result<LocalPlan, CliError> {
    let s = setup(global, args.backend.as_deref(), args.scenario.as_deref())?;
    load_backend(&s.cfg, &s.backend, args.clock)?;
    let sites: Vec<String> = s.cfg.sites.iter().map(|x| x.name.clone()).collect();
    known_site(to, &sites)?;
    Ok(LocalPlan {
        agent: agent_name(&s.cfg),
    })
}

/// `to` is one of `sites` (or not given); else bad input naming the sites.
pub fn known_site(to: Option<&str>, sites: &[String]) -> Result<(), CliError> {
    match to {
        Some(t) if !sites.is_empty() && !sites.iter().any(|s| s == t) => {
            Err(CliError::bad_input(anyhow!(
                "--to {}: unknown site; expected one of: {}",
                crate::logging::escape(t),
                sites.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// Starts up, switches to `to` (any other site: `None`) and verifies within
/// `timeout`; decisions go to `out`. The report whether verified or not, and
/// the verdict.
pub fn switch(
    global: &GlobalArgs,
    args: &SessionArgs,
    to: Option<&str>,
    intent: OperatorIntent,
    timeout: Duration,
    out: Box<dyn std::io::Write>,
    say: Say<'_>,
) -> Result<(SwitchReport, Result<(), CliError>), CliError> {
    say("starting up (S1-S4)");
    let mut prepared = prepare(global, args, SessionKind::Switch, out)?;
    let gate_names: Vec<String> = prepared
        .config
        .switch
        .gates
        .iter()
        .map(|g| g.name.clone())
        .collect();
    crate::gates::check_skips(&gate_names, &intent.skip).map_err(CliError::bad_input)?;
    let sites: Vec<String> = prepared
        .config
        .sites
        .iter()
        .map(|x| x.name.clone())
        .collect();
    known_site(to, &sites)?;
    let drill = Rc::new(RefCell::new(Drill::new(
        SESSION.to_owned(),
        String::new(),
        to.map(str::to_owned),
        None,
    )));
    let s = &mut prepared.session;
    s.host.observe(Box::new(Shared(drill.clone())));
    let view = start_up(s)?;
    if view.phase != PhaseKind::Watching {
        return Err(CliError::failed(anyhow!("startup failed: no site reached")));
    }
    let landed = view.site.as_deref().unwrap_or_default().to_owned();
    drill.borrow_mut().from.clone_from(&landed);
    say(&format!(
        "switching from {landed}: kill factory, connect, listeners"
    ));
    s.host.before_operator_switch(AGENT, intent, None);
    s.inject(
        AGENT,
        Event::OperatorSwitch {
            to: to.map(Into::into),
        },
    )
    .map_err(CliError::failed)?;
    s.host.set_intent(AGENT, None);
    let waiting = |host: &Host<_>| host.engine(AGENT).is_some_and(|e| e.waiting_on_gates());
    if waiting(&s.host) {
        say("running the switchover gates");
        let deadline = s.host.now() + timeout;
        s.run(Some(deadline), |h| !waiting(h))
            .map_err(CliError::failed)?;
    }
    let refused = drill.borrow().times.borrow().refused.clone();
    if let Some(why) = refused {
        s.shutdown().map_err(CliError::failed)?;
        return Err(CliError::failed(anyhow!("{why}; nothing was changed")));
    }
    if drill.borrow().times.borrow().started.is_none() {
        return Err(CliError::bad_input(anyhow!(
            "no switchover from {landed}: see the switchover-suppressed record"
        )));
    }
    // Where the agent was when the operator switchover started.
    let from = drill.borrow().origin();
    say("verifying: telephony ON and DN back in service");
    let deadline = s.host.now() + timeout;
    let in_service = |host: &Host<_>| {
        host.engine(AGENT)
            .is_some_and(|e| drill.borrow().in_service(e))
    };
    s.run(Some(deadline), in_service)
        .map_err(CliError::failed)?;
    let ok = in_service(&s.host);
    let view = s
        .host
        .engine(AGENT)
        .map(|e| e.view())
        .ok_or_else(|| CliError::failed(anyhow!("the drill has no agent")))?;
    s.shutdown().map_err(CliError::failed)?;
    let drill = drill.borrow();
    let report = drill.report().unwrap_or_else(|| SwitchReport {
        from: from.clone(),
        to: String::new(),
        phases: drill.phases(),
    });
    let verdict = match drill.times.borrow().completed.as_ref() {
        Some((_, landed)) if ok && to.is_none_or(|t| t == landed) && *landed != from => Ok(()),
        _ => Err(CliError::failed(anyhow!(
            "switchover from {from} not verified: the agent is on {}, telephony {:?}, DN {:?}",
            view.site.as_deref().unwrap_or("-"),
            view.telephony,
            view.dn
        ))),
    };
    Ok((report, verdict))
}

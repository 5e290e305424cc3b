//! `drctl switch` run locally: start up, switch, verify at the target.

use crate::args::{GlobalArgs, SessionArgs};
use crate::drill_report::DrillReport;
use crate::exit::CliError;
use crate::host::drill::{back_already, no_site_watched, return_intent, Drill, Experiment, Limits};
use crate::host::gate::OperatorIntent;
use crate::host::observe::Shared;
use crate::host::Host;
use crate::ops::agents::{SessionKind, SESSION};
use crate::ops::backend::{agent_name, load_backend, setup};
use crate::ops::session::{prepare, start_up};
use crate::report::SwitchReport;
use anyhow::anyhow;
use drctl_policy::{Event, ListenerStatus, PhaseKind, Reason, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The one agent a local drill runs (index in the host).
const AGENT: usize = 0;

/// How long the steady state before waits to hear the origin's telephony: a
/// real backend reports the services after it answers the subscribe (the
/// mock, in the same instant).
const STATUS_GRACE: Duration = Duration::from_secs(5);

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

/// What a local drill is asked to do.
#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// The target (any other site: `None`).
    pub to: Option<String>,
    /// Gates to skip and why (`--skip-gate`, `--reason`).
    pub intent: OperatorIntent,
    /// How long verifying (and a return's verifying) may take.
    pub timeout: Duration,
    /// `--abort-after`: not verified this long after the trigger, switch back.
    pub abort_after: Option<Duration>,
    /// `--lifetime`: return to the origin this long after the trigger.
    pub lifetime: Option<Duration>,
    /// `--rto`: the expected recovery time.
    pub rto: Option<Duration>,
}

/// What a drill found: the timing table, the experiment's report and the
/// verdict (an error on FAIL).
pub struct DrillOutcome {
    /// The switchover's timing table.
    pub table: SwitchReport,
    /// The experiment (`--report`).
    pub report: DrillReport,
    /// `Ok` on PASS.
    pub verdict: Result<(), CliError>,
}

impl DrillOptions {
    /// What the drill asks beyond the switchover.
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            abort_after: self.abort_after,
            lifetime: self.lifetime,
            rto: self.rto,
        }
    }
}

/// The host loop of a local drill.
type Loop = crate::host::session::Session<crate::host::supervise::Supervised>;

/// Runs a drill as an experiment: start up; the steady state before (the
/// origin's telephony ON, the gates passing); the operator switchover; its
/// verification at the target within `--abort-after` (else back to the
/// origin) or `--timeout`; the steady state after (target telephony ON, DN
/// in service, the gates passing); with `--lifetime`, the return to the
/// origin at its end. Decisions go to `out`.
pub fn switch(
    global: &GlobalArgs,
    args: &SessionArgs,
    opts: DrillOptions,
    out: Box<dyn std::io::Write>,
    say: Say<'_>,
) -> Result<DrillOutcome, CliError> {
    say("starting up (S1-S4)");
    let to = opts.to.as_deref();
    let mut prepared = prepare(global, args, SessionKind::Switch, out)?;
    let agent = agent_name(&prepared.config);
    let s = &mut prepared.session;
    crate::gates::check_skips(&s.host.gate_names(), &opts.intent.skip)
        .map_err(CliError::bad_input)?;
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
    s.host.observe(Box::new(Shared(drill.clone())));
    let mut view = start_up(s)?;
    if view.phase != PhaseKind::Watching {
        return Err(CliError::failed(anyhow!("startup failed: no site reached")));
    }
    if view.telephony == ListenerStatus::Unknown {
        let until = s.host.now() + STATUS_GRACE.min(opts.timeout);
        let heard = |host: &Host<_>| {
            host.engine(AGENT)
                .is_some_and(|e| e.view().telephony != ListenerStatus::Unknown)
        };
        s.run(Some(until), heard).map_err(CliError::failed)?;
        view = engine_view(s)?;
    }
    let landed = view.site.as_deref().unwrap_or_default().to_owned();
    let target = to.map(str::to_owned).unwrap_or_else(|| {
        sites
            .iter()
            .find(|x| **x != landed)
            .cloned()
            .unwrap_or_default()
    });
    let limits = opts.limits();
    let mut exp = Experiment::new(
        agent,
        opts.intent.why.clone(),
        (&landed, &target),
        &view,
        limits,
        prepared.recording.as_ref().map(|p| p.display().to_string()),
    );
    drill.borrow_mut().from.clone_from(&landed);
    if !exp.origin_healthy(&view) {
        return finish(s, drill, exp, false);
    }
    say(&format!(
        "switching from {landed}: gates, kill factory, connect, listeners"
    ));
    s.host
        .before_operator_switch(AGENT, opts.intent.clone(), None);
    s.inject(
        AGENT,
        Event::OperatorSwitch {
            to: to.map(Into::into),
        },
    )
    .map_err(CliError::failed)?;
    s.host.set_intent(AGENT, None);
    wait_for_gates(s, opts.timeout, say)?;
    let (refused, gates_before) = {
        let d = drill.borrow();
        let t = d.times.borrow();
        (t.refused.clone(), t.gates.clone())
    };
    if !exp.before(&view, gates_before, refused) {
        return finish(s, drill, exp, false);
    }
    let Some(trigger) = drill.borrow().times.borrow().started else {
        return Err(CliError::bad_input(anyhow!(
            "no switchover from {landed}: see the switchover-suppressed record"
        )));
    };
    // Where the agent was when the operator switchover started.
    let from = drill.borrow().origin();
    say("verifying: telephony ON and DN back in service");
    let in_service = |host: &Host<_>| {
        host.engine(AGENT)
            .is_some_and(|e| drill.borrow().in_service(e))
    };
    s.run(Some(trigger + limits.verify_for()), in_service)
        .map_err(CliError::failed)?;
    let verified = in_service(&s.host) && drill.borrow().verdict_ok(to);
    let view = engine_view(s)?;
    if let Some(dn_back) = drill.borrow().times.borrow().dn_back.filter(|_| verified) {
        exp.measured(trigger, dn_back);
    }
    if !verified {
        if let Some(why) = exp.not_verified(&from, &view) {
            go_back(s, &from, trigger, &why, &opts, say, &mut exp)?;
        }
    } else {
        let landed = view.site.as_deref().unwrap_or_default().to_owned();
        say("steady state after: running the gates");
        let gates = s
            .host
            .gates_now(AGENT, Reason::Operator, &from, &landed, &opts.intent);
        exp.after(&landed, &view, gates);
        if let Some(lifetime) = opts.lifetime {
            say("holding the drill until --lifetime ends");
            s.run(Some(trigger + lifetime), |_| false)
                .map_err(CliError::failed)?;
            if let Some(why) = exp.lifetime_ended() {
                go_back(s, &from, trigger, &why, &opts, say, &mut exp)?;
            }
        }
    }
    exp.timeline(&drill.borrow(), trigger);
    let ok = exp.report.failures.is_empty();
    finish(s, drill, exp, ok)
}

/// The engine's view of the drill's agent.
fn engine_view(s: &Loop) -> Result<drctl_policy::View, CliError> {
    s.host
        .engine(AGENT)
        .map(|e| e.view())
        .ok_or_else(|| CliError::failed(anyhow!("the drill has no agent")))
}

/// Runs the loop while the engine waits on its gates (at most `timeout`).
fn wait_for_gates(s: &mut Loop, timeout: Duration, say: Say<'_>) -> Result<(), CliError> {
    let waiting = |host: &Host<_>| host.engine(AGENT).is_some_and(|e| e.waiting_on_gates());
    if waiting(&s.host) {
        say("running the switchover gates");
        let deadline = s.host.now() + timeout;
        s.run(Some(deadline), |h| !waiting(h))
            .map_err(CliError::failed)?;
    }
    Ok(())
}

/// Switches the agent back to `origin` (`why`: `--abort-after 10s`), its
/// gates skipped and recorded so; verified like the drill's own switchover.
fn go_back(
    s: &mut Loop,
    origin: &str,
    trigger: Timestamp,
    why: &str,
    opts: &DrillOptions,
    say: Say<'_>,
    exp: &mut Experiment,
) -> Result<(), CliError> {
    say(&format!("{why}: switching back to {origin}"));
    let watching = |h: &Host<_>| {
        h.engine(AGENT)
            .is_some_and(|e| e.view().phase == PhaseKind::Watching)
    };
    // A switchover still in flight (W4 retrying) is let finish first.
    let deadline = s.host.now() + opts.timeout;
    s.run(Some(deadline), watching).map_err(CliError::failed)?;
    let at_s = s
        .host
        .now()
        .saturating_duration_since(trigger)
        .as_secs_f64();
    let view = engine_view(s)?;
    let here = view.site.as_deref().unwrap_or_default().to_owned();
    if here == origin {
        let ok = view.telephony == ListenerStatus::On;
        exp.returned_without_switch(why, at_s, back_already(origin, &view), ok);
        return Ok(());
    }
    if !watching(&s.host) {
        exp.returned_without_switch(why, at_s, no_site_watched(opts.timeout), false);
        return Ok(());
    }
    let back = Rc::new(RefCell::new(Drill::new(
        SESSION.to_owned(),
        here.clone(),
        Some(origin.to_owned()),
        None,
    )));
    s.host.observe(Box::new(Shared(back.clone())));
    let intent = return_intent(s.host.gate_names(), why);
    s.host.before_operator_switch(AGENT, intent, None);
    s.inject(
        AGENT,
        Event::OperatorSwitch {
            to: Some(origin.into()),
        },
    )
    .map_err(CliError::failed)?;
    s.host.set_intent(AGENT, None);
    wait_for_gates(s, opts.timeout, say)?;
    let Some(started) = back.borrow().times.borrow().started else {
        exp.returned_without_switch(
            why,
            at_s,
            format!("refused: no switchover from {here} to {origin}"),
            false,
        );
        return Ok(());
    };
    let in_service = |host: &Host<_>| {
        host.engine(AGENT)
            .is_some_and(|e| back.borrow().in_service(e))
    };
    s.run(Some(started + opts.timeout), in_service)
        .map_err(CliError::failed)?;
    let ok = in_service(&s.host) && back.borrow().verdict_ok(Some(origin));
    exp.returned(why, origin, trigger, started, &back.borrow(), ok);
    Ok(())
}

/// Ends the session and builds the outcome: the timing table, the report
/// with its verdict, and the exit (an error naming the first failure).
fn finish(
    s: &mut Loop,
    drill: Rc<RefCell<Drill>>,
    exp: Experiment,
    pass: bool,
) -> Result<DrillOutcome, CliError> {
    s.shutdown().map_err(CliError::failed)?;
    let table = drill.borrow().table();
    let (report, first) = exp.finish(pass);
    let verdict = match first {
        None => Ok(()),
        Some(first) => Err(CliError::failed(anyhow!("drill FAIL: {first}"))),
    };
    Ok(DrillOutcome {
        table,
        report,
        verdict,
    })
}

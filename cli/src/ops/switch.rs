//! `drctl switch` run locally: start up, switch, verify at the target.

use crate::args::{GlobalArgs, SessionArgs};
use crate::drill_report::{Condition, DrillReport, Hypothesis, Rollback, Rto, Span, SteadyState};
use crate::exit::CliError;
use crate::gates::Outcome;
use crate::host::drill::Drill;
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
    /// `--record`'s file, for the report.
    pub recording: Option<String>,
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
    let mut report = DrillReport {
        agent,
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        drctl: env!("CARGO_PKG_VERSION"),
        reason: opts.intent.why.clone(),
        hypothesis: Hypothesis {
            origin: landed.clone(),
            target: target.clone(),
            rto_s: opts.rto.map(|d| d.as_secs_f64()),
            statement: format!(
                "the agent switches from {landed} to {target} and is back in service there \
                 (telephony ON, DN in service){}",
                opts.rto
                    .map(|d| format!(" within {}", humantime::format_duration(d)))
                    .unwrap_or_default()
            ),
        },
        steady_state_before: steady(&landed, &view, Vec::new(), false),
        steady_state_after: None,
        abort_conditions: abort_conditions(&opts),
        timeline: Vec::new(),
        rto: Rto {
            measured_s: None,
            expected_s: opts.rto.map(|d| d.as_secs_f64()),
            met: None,
        },
        rollback: None,
        recording: opts.recording.clone(),
        verdict: "FAIL",
        failures: Vec::new(),
    };
    drill.borrow_mut().from.clone_from(&landed);
    if view.telephony != ListenerStatus::On {
        report.failures.push(format!(
            "steady state before: {landed}'s telephony is {}, not on: no drill from an unhealthy origin",
            view.telephony.as_str()
        ));
        return finish(s, drill, report, Err(()));
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
    report.steady_state_before = steady(&landed, &view, gates_before, refused.is_none());
    if let Some(why) = refused {
        report.failures.push(format!("steady state before: {why}"));
        return finish(s, drill, report, Err(()));
    }
    let Some(trigger) = drill.borrow().times.borrow().started else {
        return Err(CliError::bad_input(anyhow!(
            "no switchover from {landed}: see the switchover-suppressed record"
        )));
    };
    // Where the agent was when the operator switchover started.
    let from = drill.borrow().origin();
    say("verifying: telephony ON and DN back in service");
    let verify_for = opts.abort_after.unwrap_or(opts.timeout);
    let in_service = |host: &Host<_>| {
        host.engine(AGENT)
            .is_some_and(|e| drill.borrow().in_service(e))
    };
    s.run(Some(trigger + verify_for), in_service)
        .map_err(CliError::failed)?;
    let verified = in_service(&s.host) && drill.borrow().verdict_ok(to);
    let view = engine_view(s)?;
    if let Some(dn_back) = drill.borrow().times.borrow().dn_back.filter(|_| verified) {
        let rto = dn_back.saturating_duration_since(trigger).as_secs_f64();
        report.rto.measured_s = Some(rto);
        report.rto.met = opts.rto.map(|e| rto <= e.as_secs_f64());
    }
    if !verified {
        report.failures.push(format!(
            "switchover from {from} not verified within {}: the agent is on {}, telephony {}, DN {}",
            humantime::format_duration(verify_for),
            view.site.as_deref().unwrap_or("-"),
            view.telephony.as_str(),
            view.dn.as_str()
        ));
        if let Some(after) = opts.abort_after {
            if let Some(c) = report.abort_conditions.first_mut() {
                c.triggered = true;
            }
            let why = format!("--abort-after {}", humantime::format_duration(after));
            report.rollback = Some(go_back(s, &from, trigger, &why, &opts, say, &mut report)?);
        }
    } else {
        let landed = view.site.as_deref().unwrap_or_default().to_owned();
        say("steady state after: running the gates");
        let gates = s
            .host
            .gates_now(AGENT, Reason::Operator, &from, &landed, &opts.intent);
        let gates_ok = gates.iter().all(|g| !g.vetoed());
        if !gates_ok {
            report
                .failures
                .push("steady state after: a gate vetoes at the target".to_owned());
        }
        report.steady_state_after = Some(steady(&landed, &view, gates, gates_ok));
        if report.rto.met == Some(false) {
            report.failures.push(format!(
                "RTO {:.3}s missed the expected {}",
                report.rto.measured_s.unwrap_or_default(),
                humantime::format_duration(opts.rto.unwrap_or_default())
            ));
        }
        if let Some(lifetime) = opts.lifetime {
            say("holding the drill until --lifetime ends");
            s.run(Some(trigger + lifetime), |_| false)
                .map_err(CliError::failed)?;
            if let Some(c) = report.abort_conditions.get_mut(1) {
                c.triggered = true;
            }
            let why = format!("--lifetime {}", humantime::format_duration(lifetime));
            report.rollback = Some(go_back(s, &from, trigger, &why, &opts, say, &mut report)?);
        }
    }
    report
        .timeline
        .splice(0..0, spans(&drill.borrow().times.borrow(), trigger, ""));
    let ok = report.failures.is_empty();
    finish(s, drill, report, if ok { Ok(()) } else { Err(()) })
}

/// The abort conditions `opts` set.
fn abort_conditions(opts: &DrillOptions) -> Vec<Condition> {
    let verify = match opts.abort_after {
        Some(d) => format!(
            "not verified within --abort-after {}: switch back to the origin",
            humantime::format_duration(d)
        ),
        None => format!(
            "not verified within --timeout {}: the drill fails (no rollback)",
            humantime::format_duration(opts.timeout)
        ),
    };
    let mut out = vec![Condition {
        condition: verify,
        triggered: false,
    }];
    if let Some(l) = opts.lifetime {
        out.push(Condition {
            condition: format!(
                "--lifetime {} ends: return to the origin",
                humantime::format_duration(l)
            ),
            triggered: false,
        });
    }
    out
}

/// A steady-state row from the engine's view.
fn steady(site: &str, view: &drctl_policy::View, gates: Vec<Outcome>, ok: bool) -> SteadyState {
    SteadyState {
        site: site.to_owned(),
        telephony: view.telephony.as_str().to_owned(),
        dn: view.dn.as_str().to_owned(),
        gates,
        ok,
    }
}

/// The phases of `times`, from `trigger`, named with `prefix`.
fn spans(times: &crate::host::observe::PhaseTimes, trigger: Timestamp, prefix: &str) -> Vec<Span> {
    times
        .spans()
        .into_iter()
        .map(|(phase, a, b)| Span {
            phase: format!("{prefix}{phase}"),
            start_s: a.saturating_duration_since(trigger).as_secs_f64(),
            seconds: b.saturating_duration_since(a).as_secs_f64(),
        })
        .collect()
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
    report: &mut DrillReport,
) -> Result<Rollback, CliError> {
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
        return Ok(Rollback {
            why: why.to_owned(),
            at_s,
            outcome: format!(
                "already back on {origin} (W4 fell back there), telephony {}",
                view.telephony.as_str()
            ),
            ok,
        });
    }
    if !watching(&s.host) {
        return Ok(Rollback {
            why: why.to_owned(),
            at_s,
            outcome: format!(
                "not possible: no site is watched within {}",
                humantime::format_duration(opts.timeout)
            ),
            ok: false,
        });
    }
    let back = Rc::new(RefCell::new(Drill::new(
        SESSION.to_owned(),
        here.clone(),
        Some(origin.to_owned()),
        None,
    )));
    s.host.observe(Box::new(Shared(back.clone())));
    let intent = OperatorIntent {
        skip: s.host.gate_names(),
        why: Some(format!("drill return ({why})")),
    };
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
        return Ok(Rollback {
            why: why.to_owned(),
            at_s,
            outcome: format!("refused: no switchover from {here} to {origin}"),
            ok: false,
        });
    };
    let in_service = |host: &Host<_>| {
        host.engine(AGENT)
            .is_some_and(|e| back.borrow().in_service(e))
    };
    s.run(Some(started + opts.timeout), in_service)
        .map_err(CliError::failed)?;
    let ok = in_service(&s.host) && back.borrow().verdict_ok(Some(origin));
    report
        .timeline
        .extend(spans(&back.borrow().times.borrow(), trigger, "return: "));
    let took = back
        .borrow()
        .times
        .borrow()
        .dn_back
        .map(|t| t.saturating_duration_since(started).as_secs_f64());
    let outcome = match (ok, took) {
        (true, Some(t)) => format!(
            "back on {origin}: telephony ON, DN in service {t:.3}s after the return started"
        ),
        _ => format!(
            "not verified on {origin} within {}",
            humantime::format_duration(opts.timeout)
        ),
    };
    if !ok {
        report
            .failures
            .push(format!("return to {origin}: {outcome}"));
    }
    Ok(Rollback {
        why: why.to_owned(),
        at_s: started.saturating_duration_since(trigger).as_secs_f64(),
        outcome,
        ok,
    })
}

/// Ends the session and builds the outcome: the timing table, the report
/// with its verdict, and the exit (an error naming the first failure).
fn finish(
    s: &mut Loop,
    drill: Rc<RefCell<Drill>>,
    mut report: DrillReport,
    verdict: Result<(), ()>,
) -> Result<DrillOutcome, CliError> {
    s.shutdown().map_err(CliError::failed)?;
    let drill = drill.borrow();
    let table = drill.report().unwrap_or_else(|| SwitchReport {
        from: drill.origin(),
        to: String::new(),
        phases: drill.phases(),
    });
    report.verdict = if verdict.is_ok() { "PASS" } else { "FAIL" };
    let verdict = match report.failures.first() {
        None => Ok(()),
        Some(first) => Err(CliError::failed(anyhow!("drill FAIL: {first}"))),
    };
    Ok(DrillOutcome {
        table,
        report,
        verdict,
    })
}

//! `drctl switch` run locally: start up, switch, verify at the target.

use crate::args::{GlobalArgs, SessionArgs};
use crate::drill_report::DrillReport;
use crate::exit::CliError;
use crate::host::drill::Limits;
use crate::host::gate::OperatorIntent;
use crate::host::plans::DrillOrder;
use crate::host::Host;
use crate::ops::agents::SessionKind;
use crate::ops::backend::{agent_name, load_backend, setup};
use crate::ops::session::{prepare, start_up};
use crate::report::SwitchReport;
use anyhow::anyhow;
use drctl_policy::{ListenerStatus, PhaseKind};
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

/// Runs a drill as an experiment: start up, then the drill a watcher runs
/// for a client ([`Host::start_drill`], one driver for both): the steady
/// state before (the origin's telephony ON, the gates passing); the operator
/// switchover; its verification at the target within `--abort-after` (else
/// back to the origin) or `--timeout`; the steady state after (target
/// telephony ON, DN in service, the gates passing); with `--lifetime`, the
/// return to the origin at its end. Decisions go to `out`.
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
    let recording = prepared.recording.as_ref().map(|p| p.display().to_string());
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
    let view = start_up(s)?;
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
    }
    let landed = view.site.as_deref().unwrap_or("-");
    if to == Some(landed) {
        // Asked for where the agent is: nothing to drill (the engine would
        // suppress the switchover).
        return Err(CliError::bad_input(anyhow!(
            "--to {}: the agent is on {landed} already: nothing to switch",
            crate::logging::escape(landed)
        )));
    }
    say(&format!(
        "switching from {landed}: gates, kill factory, connect, listeners"
    ));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let order = DrillOrder {
        to: opts.to.clone(),
        intent: opts.intent.clone(),
        by: None,
        limits: opts.limits(),
        streams: false,
        recording,
    };
    let at_once = s
        .host
        .start_drill(AGENT, order, tx)
        .map_err(CliError::failed)?;
    let reply = match at_once {
        Some(reply) => reply,
        None => {
            // The spinner follows the drill's stage and its notes (the
            // return) as they come; its report is its last reply, sent as
            // it ends.
            let mut stage = None;
            let mut last = None;
            let mut take = || {
                while let Ok(reply) = rx.try_recv() {
                    if let Some(note) = &reply.progress {
                        say(&progress_text(note));
                    } else if reply.drill.is_some() {
                        last = Some(reply);
                    }
                }
            };
            s.run(None, |host| {
                let now_in = host.drill_stage(AGENT);
                if now_in.is_some() && now_in != stage {
                    stage = now_in;
                    say(stage_text(now_in.unwrap_or_default()));
                }
                take();
                !host.drill_running(AGENT)
            })
            .map_err(CliError::failed)?;
            take();
            last.ok_or_else(|| CliError::failed(anyhow!("the session ended before the drill")))?
        }
    };
    s.shutdown().map_err(CliError::failed)?;
    outcome(reply)
}

/// What the spinner says in a drill's stage.
fn stage_text(stage: &str) -> &'static str {
    match stage {
        "gating" => "running the switchover gates",
        "verifying" => "verifying: telephony ON and DN back in service",
        "holding" => "holding the drill until --lifetime ends",
        "settling" => "letting the switchover in flight finish before the return",
        _ => "switching back: telephony ON and DN back in service at the origin",
    }
}

/// A drill's progress note (`drill-return`) as the spinner says it.
fn progress_text(note: &serde_json::Value) -> String {
    match (note["why"].as_str(), note["to"].as_str()) {
        (Some(why), Some(to)) => format!("{why}: switching back to {to}"),
        _ => "the drill goes on".to_owned(),
    }
}

/// The drill's last reply as the outcome: the timing table, the report
/// with its verdict, and the exit (an error naming the first failure).
fn outcome(reply: crate::control::Reply) -> Result<DrillOutcome, CliError> {
    let report = reply
        .drill
        .map(|r| *r)
        .ok_or_else(|| CliError::failed(anyhow!("the drill ended without its report")))?;
    let verdict = match reply.error {
        None => Ok(()),
        Some(first) => Err(CliError::failed(anyhow!("{first}"))),
    };
    Ok(DrillOutcome {
        table: reply.switched.unwrap_or_default(),
        report,
        verdict,
    })
}

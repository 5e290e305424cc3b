//! A switchover drill as the loop sees it, for a local `drctl switch` and for
//! one a watcher runs for its client alike: the phase timings and, once the
//! agent is in service at the target, the [`SwitchReport`].

use crate::control::Reply;
use crate::drill_report::{Condition, DrillReport, Hypothesis, Rollback, Rto, Span, SteadyState};
use crate::gates::Outcome;
use crate::host::gate::OperatorIntent;
use crate::host::observe::{DecisionRecord, Observer, PhaseTimer, PhaseTimes};
use crate::report::{PhaseRow, SwitchReport};
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Engine, ListenerStatus, Timestamp, View};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// How a switchover started for a client talks to it.
pub enum Stream {
    /// Streams its decisions and answers the last line (the timing table
    /// or the error): a plain `drctl switch` through the watcher.
    Answers,
    /// Streams its decisions naming this agent, never the last line (a
    /// wave plan's or a scheduled switch's).
    Named(String),
    /// Streams its decisions, never the last line (a drill's switchover or
    /// return: the drill answers with its report).
    Decisions,
}

/// Times agent `session`'s switchover from `from`; with a client, streams it
/// the decisions and ends with the verdict. Other agents' traffic (a fleet)
/// is not the drill's.
pub struct Drill {
    session: String,
    timer: PhaseTimer,
    /// The timings so far (shared with the caller).
    pub times: Rc<RefCell<PhaseTimes>>,
    /// The site the switchover leaves.
    pub from: String,
    target: Option<String>,
    client: Option<tokio::sync::mpsc::UnboundedSender<Reply>>,
    /// The agent's name on the records streamed (a fleet's wave: several
    /// agents' switchovers on one stream); `None`: one agent, unnamed.
    label: Option<String>,
    /// Whether the client's last line (`ok` with the timings, or the error)
    /// is this drill's to send; a wave's drills only stream decisions.
    answers: bool,
    done: bool,
}

impl Drill {
    /// A drill of agent `session` to `target` (any other site: `None`),
    /// streamed to `client` if any.
    pub fn new(
        session: String,
        from: String,
        target: Option<String>,
        client: Option<tokio::sync::mpsc::UnboundedSender<Reply>>,
    ) -> Drill {
        let times = Rc::new(RefCell::new(PhaseTimes::default()));
        Drill {
            session,
            timer: PhaseTimer(times.clone()),
            times,
            from,
            target,
            client,
            label: None,
            answers: true,
            done: false,
        }
    }

    /// Streams decisions to the client named `agent`, never its last line
    /// (one switchover of a wave plan, whose end the plan answers).
    pub fn streaming_as(mut self, agent: String) -> Drill {
        self.label = Some(agent);
        self.answers = false;
        self
    }

    /// Streams decisions to the client, never its last line (a drill's
    /// switchover or return, whose end the drill answers with its report).
    pub fn streaming(mut self) -> Drill {
        self.answers = false;
        self
    }

    /// Streams nothing more: a drill's return streams its own decisions,
    /// which this one (still watching for its timings) would repeat.
    pub fn mute(&mut self) {
        self.client = None;
    }

    /// Done: the host drops it (a watcher's drill has ended; a switchover
    /// never verified would otherwise be watched for ever).
    pub fn close(&mut self) {
        self.done = true;
    }

    /// Why the switchover did not start (a gate refused it), if it did not.
    pub fn refused_why(&self) -> Option<String> {
        self.times.borrow().refused.clone()
    }

    /// Where the agent was when the operator switchover started (what the
    /// caller expected until then).
    pub fn origin(&self) -> String {
        self.times
            .borrow()
            .from
            .clone()
            .unwrap_or_else(|| self.from.clone())
    }

    /// The report of the switchover, once it completed (verified or not).
    pub fn report(&self) -> Option<SwitchReport> {
        let (_, landed) = self.times.borrow().completed.clone()?;
        Some(SwitchReport {
            from: self.origin(),
            to: landed,
            phases: self.phases(),
        })
    }

    /// The timing table: the report once completed, else the phases so far.
    pub fn table(&self) -> SwitchReport {
        self.report().unwrap_or_else(|| SwitchReport {
            from: self.origin(),
            to: String::new(),
            phases: self.phases(),
        })
    }

    /// The timing table so far (`None` seconds: not happened).
    pub fn phases(&self) -> Vec<PhaseRow> {
        self.times
            .borrow()
            .rows()
            .into_iter()
            .map(|(phase, d)| PhaseRow {
                phase: phase.to_owned(),
                seconds: d.map(|d| d.as_secs_f64()),
            })
            .collect()
    }

    /// Whether the switchover landed where it was asked to: on `to` when
    /// named, else anywhere but its origin.
    pub fn verdict_ok(&self, to: Option<&str>) -> bool {
        let origin = self.origin();
        match self.times.borrow().completed.as_ref() {
            Some((_, landed)) => to.is_none_or(|t| t == landed) && *landed != origin,
            None => false,
        }
    }

    /// Whether the switchover completed with telephony ON and the DN in service.
    pub fn in_service(&self, engine: &Engine) -> bool {
        let v = engine.view();
        self.times.borrow().completed.is_some()
            && v.telephony == ListenerStatus::On
            && v.dn == ListenerStatus::On
    }

    /// The verdict once there is one: the report when the agent is in service
    /// at the target, what went wrong when it landed elsewhere.
    pub fn verdict(&self, engine: &Engine) -> Option<Result<SwitchReport, String>> {
        let report = self.report()?;
        let wrong_site =
            report.to == report.from || self.target.as_ref().is_some_and(|t| *t != report.to);
        if wrong_site {
            return Some(Err(format!(
                "switchover from {} did not reach its target: the agent is on {}",
                report.from, report.to
            )));
        }
        self.in_service(engine).then_some(Ok(report))
    }

    fn finish(&mut self, reply: Reply) {
        if let Some(client) = self.client.as_ref().filter(|_| self.answers) {
            let _ = client.send(reply);
        }
        self.done = true;
    }
}

/// A [`Drill`] the caller keeps a handle on (a wave plan reads its verdict),
/// dropped by the host once it is done, as the drill itself would be.
pub struct SharedDrill(pub Rc<RefCell<Drill>>);

impl Observer for SharedDrill {
    fn command(&mut self, t: Timestamp, input: &Input) {
        self.0.borrow_mut().command(t, input)
    }
    fn output(&mut self, t: Timestamp, output: &Output) {
        self.0.borrow_mut().output(t, output)
    }
    fn gates(&mut self, t: Timestamp, agent: &str, outcomes: &[crate::gates::Outcome]) {
        self.0.borrow_mut().gates(t, agent, outcomes)
    }
    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        self.0.borrow_mut().decision(t, agent, d)
    }
    fn settled(&mut self, t: Timestamp, agent: &str, engine: &Engine) {
        self.0.borrow_mut().settled(t, agent, engine)
    }
    fn done(&self) -> bool {
        self.0.borrow().done()
    }
}

impl Observer for Drill {
    fn command(&mut self, t: Timestamp, input: &Input) {
        if matches!(input, Input::Command { session, .. } if *session == self.session) {
            self.timer.command(t, input);
        }
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        if matches!(output, Output::Result { session, .. } | Output::Event { session, .. } if *session == self.session)
        {
            self.timer.output(t, output);
        }
    }

    fn gates(&mut self, t: Timestamp, agent: &str, outcomes: &[crate::gates::Outcome]) {
        if agent == self.session {
            self.timer.gates(t, agent, outcomes);
        }
    }

    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        if agent != self.session {
            return;
        }
        self.timer.decision(t, agent, d);
        if let Some(client) = &self.client {
            let record = DecisionRecord {
                agent: self.label.as_deref(),
                t: t.as_nanos(),
                decision: d,
            };
            let value = serde_json::to_value(record).unwrap_or_default();
            if client.send(Reply::progress(value)).is_err() {
                // The client left; the switchover goes on without it (a
                // wave's drill goes on being watched for the plan).
                if self.answers {
                    self.done = true;
                } else {
                    self.client = None;
                }
            }
        }
        if self.client.is_none() && self.answers {
            return;
        }
        let refused = self.times.borrow().refused.clone();
        if let Some(why) = refused.filter(|_| !self.done) {
            self.finish(Reply::error(why));
        }
    }

    fn settled(&mut self, _t: Timestamp, agent: &str, engine: &Engine) {
        // A local drill (no client) reads its verdict itself, after the run.
        if self.done || (self.client.is_none() && self.answers) || agent != self.session {
            return;
        }
        match self.verdict(engine) {
            None => {}
            Some(Ok(report)) => self.finish(Reply {
                switched: Some(report),
                ..Reply::ok()
            }),
            Some(Err(why)) => self.finish(Reply::error(why)),
        }
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// What a drill asks beyond the switchover (`--timeout`, `--abort-after`,
/// `--lifetime`, `--rto`): the same for a local drill and a watcher's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// How long verifying (and a return's verifying) may take.
    pub timeout: Duration,
    /// Not verified this long after the trigger: switch back.
    pub abort_after: Option<Duration>,
    /// Return to the origin this long after the trigger.
    pub lifetime: Option<Duration>,
    /// The expected recovery time.
    pub rto: Option<Duration>,
}

impl Limits {
    /// How long after the trigger the switchover has to be verified.
    pub fn verify_for(&self) -> Duration {
        self.abort_after.unwrap_or(self.timeout)
    }
}

/// A drill as an experiment, whoever runs its loop (a local `drctl switch`
/// or a watcher for its client): the one place that turns what the loop saw
/// into the [`DrillReport`] and its verdict, step by step as the drill goes.
pub struct Experiment {
    /// The report so far.
    pub report: DrillReport,
    /// What was asked.
    pub limits: Limits,
}

impl Experiment {
    /// A drill of `agent` from `origin` to `target`, the origin as `view`
    /// shows it before anything is done (its gates not run yet); the
    /// version is this process's (the watcher's, for a drill it runs).
    pub fn new(
        agent: String,
        reason: Option<String>,
        (origin, target): (&str, &str),
        view: &View,
        limits: Limits,
        recording: Option<String>,
    ) -> Experiment {
        let report = DrillReport {
            agent,
            started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            drctl: env!("CARGO_PKG_VERSION").to_owned(),
            reason,
            hypothesis: Hypothesis {
                origin: origin.to_owned(),
                target: target.to_owned(),
                rto_s: limits.rto.map(|d| d.as_secs_f64()),
                statement: format!(
                    "the agent switches from {origin} to {target} and is back in service there \
                     (telephony ON, DN in service){}",
                    limits
                        .rto
                        .map(|d| format!(" within {}", humantime::format_duration(d)))
                        .unwrap_or_default()
                ),
            },
            steady_state_before: steady(origin, view, Vec::new(), false),
            steady_state_after: None,
            abort_conditions: abort_conditions(&limits),
            timeline: Vec::new(),
            rto: Rto {
                measured_s: None,
                expected_s: limits.rto.map(|d| d.as_secs_f64()),
                met: None,
            },
            rollback: None,
            recording,
            verdict: "FAIL",
            failures: Vec::new(),
        };
        Experiment { report, limits }
    }

    /// The origin's telephony is not ON: a failure (no drill from an
    /// unhealthy origin); `false` then.
    pub fn origin_healthy(&mut self, view: &View) -> bool {
        if view.telephony == ListenerStatus::On {
            return true;
        }
        self.report.failures.push(format!(
            "steady state before: {}'s telephony is {}, not on: no drill from an unhealthy origin",
            self.report.hypothesis.origin,
            view.telephony.as_str()
        ));
        false
    }

    /// The steady state before, once the switchover's gates ran (`refused`:
    /// why they vetoed it, a failure); whether it holds.
    pub fn before(&mut self, view: &View, gates: Vec<Outcome>, refused: Option<String>) -> bool {
        let origin = self.report.hypothesis.origin.clone();
        self.report.steady_state_before = steady(&origin, view, gates, refused.is_none());
        match refused {
            Some(why) => {
                self.report
                    .failures
                    .push(format!("steady state before: {why}"));
                false
            }
            None => true,
        }
    }

    /// The switchover is in service at the target: the RTO, trigger to the
    /// DN back in service (`dn_back`).
    pub fn measured(&mut self, trigger: Timestamp, dn_back: Timestamp) {
        let rto = dn_back.saturating_duration_since(trigger).as_secs_f64();
        self.report.rto.measured_s = Some(rto);
        self.report.rto.met = self.limits.rto.map(|e| rto <= e.as_secs_f64());
    }

    /// The switchover from `from` was not verified in time (the agent as
    /// `view` shows it): a failure; with `--abort-after`, that condition
    /// fires and the return's reason is given.
    pub fn not_verified(&mut self, from: &str, view: &View) -> Option<String> {
        self.report.failures.push(format!(
            "switchover from {from} not verified within {}: the agent is on {}, telephony {}, DN {}",
            humantime::format_duration(self.limits.verify_for()),
            view.site.as_deref().unwrap_or("-"),
            view.telephony.as_str(),
            view.dn.as_str()
        ));
        let after = self.limits.abort_after?;
        if let Some(c) = self.report.abort_conditions.first_mut() {
            c.triggered = true;
        }
        Some(format!(
            "--abort-after {}",
            humantime::format_duration(after)
        ))
    }

    /// The steady state after, at `landed` with `gates` run there; a missed
    /// RTO is a failure too.
    pub fn after(&mut self, landed: &str, view: &View, gates: Vec<Outcome>) {
        let gates_ok = gates.iter().all(|g| !g.vetoed());
        if !gates_ok {
            self.report
                .failures
                .push("steady state after: a gate vetoes at the target".to_owned());
        }
        self.report.steady_state_after = Some(steady(landed, view, gates, gates_ok));
        if self.report.rto.met == Some(false) {
            self.report.failures.push(format!(
                "RTO {:.3}s missed the expected {}",
                self.report.rto.measured_s.unwrap_or_default(),
                humantime::format_duration(self.limits.rto.unwrap_or_default())
            ));
        }
    }

    /// `--lifetime` ended: that condition fires; the return's reason.
    pub fn lifetime_ended(&mut self) -> Option<String> {
        let lifetime = self.limits.lifetime?;
        if let Some(c) = self.report.abort_conditions.get_mut(1) {
            c.triggered = true;
        }
        Some(format!(
            "--lifetime {}",
            humantime::format_duration(lifetime)
        ))
    }

    /// The return could not start or found the agent back already:
    /// `outcome` as it is (`ok`: back in service at the origin).
    pub fn returned_without_switch(&mut self, why: &str, at_s: f64, outcome: String, ok: bool) {
        self.report.rollback = Some(Rollback {
            why: why.to_owned(),
            at_s,
            outcome,
            ok,
        });
    }

    /// The return switchover `back` (started at `started`) to `origin` ended:
    /// verified (`ok`) or not; its phases join the timeline.
    pub fn returned(
        &mut self,
        why: &str,
        origin: &str,
        trigger: Timestamp,
        started: Timestamp,
        back: &Drill,
        ok: bool,
    ) {
        let times = back.times.borrow();
        self.report
            .timeline
            .extend(spans(&times, trigger, "return: "));
        let took = times
            .dn_back
            .map(|t| t.saturating_duration_since(started).as_secs_f64());
        let outcome = match (ok, took) {
            (true, Some(t)) => format!(
                "back on {origin}: telephony ON, DN in service {t:.3}s after the return started"
            ),
            _ => format!(
                "not verified on {origin} within {}",
                humantime::format_duration(self.limits.timeout)
            ),
        };
        if !ok {
            self.report
                .failures
                .push(format!("return to {origin}: {outcome}"));
        }
        self.report.rollback = Some(Rollback {
            why: why.to_owned(),
            at_s: started.saturating_duration_since(trigger).as_secs_f64(),
            outcome,
            ok,
        });
    }

    /// The drill's own switchover phases, from `trigger`, ahead of the return's.
    pub fn timeline(&mut self, drill: &Drill, trigger: Timestamp) {
        self.report
            .timeline
            .splice(0..0, spans(&drill.times.borrow(), trigger, ""));
    }

    /// The report with its verdict, and the first failure, if any.
    pub fn finish(mut self, pass: bool) -> (DrillReport, Option<String>) {
        self.report.verdict = if pass { "PASS" } else { "FAIL" };
        let first = self.report.failures.first().cloned();
        (self.report, first)
    }
}

/// A drill's return to the origin skips every gate (`gate_names`), as the
/// operator would in an emergency, and says why in the history.
pub fn return_intent(gate_names: Vec<String>, why: &str) -> OperatorIntent {
    OperatorIntent {
        skip: gate_names,
        why: Some(format!("drill return ({why})")),
    }
}

/// A return that found the agent on `origin` already (`view`).
pub fn back_already(origin: &str, view: &View) -> String {
    format!(
        "already back on {origin} (W4 fell back there), telephony {}",
        view.telephony.as_str()
    )
}

/// A return that could not start: no site watched within `timeout`.
pub fn no_site_watched(timeout: Duration) -> String {
    format!(
        "not possible: no site is watched within {}",
        humantime::format_duration(timeout)
    )
}

/// The abort conditions `limits` set.
fn abort_conditions(limits: &Limits) -> Vec<Condition> {
    let verify = match limits.abort_after {
        Some(d) => format!(
            "not verified within --abort-after {}: switch back to the origin",
            humantime::format_duration(d)
        ),
        None => format!(
            "not verified within --timeout {}: the drill fails (no rollback)",
            humantime::format_duration(limits.timeout)
        ),
    };
    let mut out = vec![Condition {
        condition: verify,
        triggered: false,
    }];
    if let Some(l) = limits.lifetime {
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
fn steady(site: &str, view: &View, gates: Vec<Outcome>, ok: bool) -> SteadyState {
    SteadyState {
        site: site.to_owned(),
        telephony: view.telephony.as_str().to_owned(),
        dn: view.dn.as_str().to_owned(),
        gates,
        ok,
    }
}

/// The phases of `times`, from `trigger`, named with `prefix`.
fn spans(times: &PhaseTimes, trigger: Timestamp, prefix: &str) -> Vec<Span> {
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

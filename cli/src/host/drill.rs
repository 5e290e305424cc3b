//! A switchover drill as the loop sees it, for a local `drctl switch` and for
//! one a watcher runs for its client alike: the phase timings and, once the
//! agent is in service at the target, the [`SwitchReport`].

use crate::control::Reply;
use crate::host::observe::{DecisionRecord, Observer, PhaseTimer, PhaseTimes};
use crate::report::{PhaseRow, SwitchReport};
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Engine, ListenerStatus, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;

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

//! The host's side of switchover gates: the engine asks
//! (`Action::CheckGates`), the host runs the gates (`crate::gates`) and feeds
//! the verdict back (`Event::GateVerdict`), as an input the recording keeps.
//!
//! On a virtual clock the gates run at once (no virtual time passes); on the
//! real clock on a thread of their own, the verdict coming back through a
//! channel and a wake, so the loop (timers, control requests, metrics) never
//! waits on a gate.

use crate::gates::{verdict, Ask, Gates, Outcome};
use crate::host::{Backend, Clock, Host, HostError};
use drctl_policy::{Event, GateVerdict, Reason, SiteName, Timestamp};
use std::sync::Arc;

/// How the host answers an engine waiting on its switchover gates.
#[derive(Default)]
pub enum GateMode {
    /// No gates run here (`simulate`, `explore`): every check passes at once.
    #[default]
    Pass,
    /// A replay: the recorded verdicts are fed as recorded.
    Recorded,
    /// The configured gates run.
    Run(GateRunner),
}

/// Verdicts from gate runs on other threads: `(agent, outcomes, verdict)`.
type Answer = (usize, Vec<Outcome>, GateVerdict);

/// The configured gates and where their verdicts come back.
pub struct GateRunner {
    gates: Arc<Gates>,
    tx: std::sync::mpsc::Sender<Answer>,
    rx: std::sync::mpsc::Receiver<Answer>,
}

/// What an operator asked for along with a switchover: gates to skip
/// (`--skip-gate`) and why (`--reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorIntent {
    /// Gates not to run.
    pub skip: Vec<String>,
    /// The operator's reason.
    pub why: Option<String>,
}

impl<B: Backend> Host<B> {
    /// Runs `gates` when an engine asks (`watch`, `switch`).
    pub fn run_gates(&mut self, gates: Gates) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.gates = GateMode::Run(GateRunner {
            gates: Arc::new(gates),
            tx,
            rx,
        });
    }

    /// Takes gate verdicts from the recording only (`replay`).
    pub fn recorded_gates(&mut self) {
        self.gates = GateMode::Recorded;
    }

    /// Runs the gates of `reason` (`from` -> `to`) now, outside any
    /// switchover: a drill's steady-state check. Blocking; empty when no gate
    /// runs here.
    pub fn gates_now(
        &self,
        i: usize,
        reason: Reason,
        from: &str,
        to: &str,
        intent: &OperatorIntent,
    ) -> Vec<Outcome> {
        let (GateMode::Run(runner), Some(engine)) = (&self.gates, self.engine(i)) else {
            return Vec::new();
        };
        let ask = Ask {
            reason,
            from: from.to_owned(),
            to: to.to_owned(),
            agent: engine.username().to_owned(),
        };
        // A gate the operator skipped for this drill is skipped here too.
        runner
            .gates
            .check(&ask, &intent.skip, intent.why.as_deref())
    }

    /// The names of the gates this host runs.
    pub fn gate_names(&self) -> Vec<String> {
        match &self.gates {
            GateMode::Run(r) => r.gates.names(),
            _ => Vec::new(),
        }
    }

    /// Checks `--skip-gate` names against the gates this host runs.
    pub fn known_gates(&self, skip: &[String]) -> Result<(), String> {
        if skip.is_empty() {
            return Ok(());
        }
        let names = match &self.gates {
            GateMode::Run(r) => r.gates.names(),
            _ => Vec::new(),
        };
        crate::gates::check_skips(&names, skip).map_err(|e| e.to_string())
    }

    /// Before an operator switchover of agent `i`: what the operator asks
    /// along with it (taken when its gates run) and, for the history, why
    /// and who asked. Clear it with `set_intent(i, None)` after the inject.
    pub fn before_operator_switch(&mut self, i: usize, intent: OperatorIntent, by: Option<&str>) {
        let Some(session) = self.session(i).map(str::to_owned) else {
            return;
        };
        for o in &mut self.observers {
            o.operator(&session, intent.why.as_deref(), by);
        }
        self.set_intent(i, Some(intent));
    }

    /// What the operator asks along with agent `i`'s next operator switchover.
    pub fn set_intent(&mut self, i: usize, intent: Option<OperatorIntent>) {
        if let Some(a) = self.agents.get_mut(i) {
            a.intent = intent.map(Box::new);
        }
    }

    /// Agent `i`'s engine asks for the gates of `reason` (`from` -> `to`).
    pub(super) fn check_gates(&mut self, i: usize, reason: Reason, from: SiteName, to: SiteName) {
        let intent = if reason == Reason::Operator {
            self.agents[i].intent.take().map(|b| *b).unwrap_or_default()
        } else {
            OperatorIntent::default()
        };
        let runner = match &self.gates {
            GateMode::Recorded => return,
            GateMode::Pass => {
                self.gates_ready
                    .push_back((i, Vec::new(), GateVerdict::default()));
                return;
            }
            GateMode::Run(runner) => runner,
        };
        let ask = Ask {
            reason,
            from: from.to_string(),
            to: to.to_string(),
            agent: self.agents[i].engine.username().to_owned(),
        };
        tracing::info!(
            "{}: running the switchover gates ({}, {from} -> {to})",
            self.agents[i].session,
            reason.as_str()
        );
        let gates = runner.gates.clone();
        let run = move || {
            let out = gates.check(&ask, &intent.skip, intent.why.as_deref());
            let v = verdict(&out, intent.why.as_deref());
            (i, out, v)
        };
        match self.clock {
            Clock::Virtual { .. } => self.gates_ready.push_back(run()),
            Clock::Real { .. } => {
                let (tx, wake) = (runner.tx.clone(), self.wake.clone());
                std::thread::spawn(move || {
                    // The host is gone when the send fails: nobody waits.
                    if tx.send(run()).is_ok() {
                        wake.notify_one();
                    }
                });
            }
        }
    }

    /// Feeds agent `i` the verdicts ready for it now (a virtual clock's, a pass).
    pub(super) fn gates_ready_for(&mut self, i: usize, now: Timestamp) -> Result<(), HostError> {
        while let Some(pos) = self.gates_ready.iter().position(|(a, _, _)| *a == i) {
            if let Some((i, out, v)) = self.gates_ready.remove(pos) {
                self.feed_verdict(i, now, &out, v)?;
            }
        }
        Ok(())
    }

    /// Feeds the verdicts that came back from gate runs on other threads.
    pub(super) fn gates_answered(&mut self, now: Timestamp) -> Result<(), HostError> {
        loop {
            let answer = match &self.gates {
                GateMode::Run(r) => r.rx.try_recv().ok(),
                _ => None,
            };
            let Some((i, out, v)) = answer else {
                return Ok(());
            };
            self.feed_verdict(i, now, &out, v)?;
        }
    }

    fn feed_verdict(
        &mut self,
        i: usize,
        now: Timestamp,
        out: &[Outcome],
        v: GateVerdict,
    ) -> Result<(), HostError> {
        let session = self.agents[i].session.clone();
        for o in &mut self.observers {
            o.gates(now, &session, out);
        }
        self.feed_input(i, now, Event::GateVerdict(v))
    }
}

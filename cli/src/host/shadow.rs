//! `drctl watch --shadow KEY=VALUE…`: a second engine with a candidate
//! config, fed the live session's inputs, never acting. Its commands are
//! answered from the live session, as `replay` answers from a recording: a
//! command the live engine also sent gets the live result; one it did not
//! send is answered with an error (the candidate would have gone elsewhere).
//! Every decision the two engines do not share is a divergence: logged,
//! counted, and kept for `status`.
//!
//! The host calls the observer before the live engine sees each input, so
//! the candidate's commands wait when the live ones are sent, and at the
//! candidate's own deadlines (its timers differ from the live ones).

use crate::host::observe::Observer;
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{
    Action, CommandError, CommandId, CommandKind, Decision, Engine, Event, Timestamp,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How far apart the two engines' equal decisions may be and still agree.
pub const WINDOW: Duration = Duration::from_secs(1);

/// How many divergences are kept (the newest).
const RECENT: usize = 16;

/// At most this many unmatched decisions are held per engine (a candidate
/// far from the live policy must not grow memory).
const HELD: usize = 1024;

/// One decision the two engines did not share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// When.
    pub t: Timestamp,
    /// Which engine decided it: `live` or `shadow`.
    pub by: &'static str,
    /// What it decided.
    pub decision: Decision,
}

/// What is told of each divergence: `(session, divergence)`.
type OnDivergence = Box<dyn FnMut(&str, &Divergence)>;

/// The shadow engine and its bookkeeping.
pub struct Shadow {
    engine: Engine,
    /// The live agent's session id (the shadow follows one agent).
    session: String,
    /// Live command id -> the candidate's command with the same content.
    answers: HashMap<u64, CommandId>,
    /// The candidate's commands not yet matched by a live one.
    waiting: VecDeque<(CommandId, CommandKind)>,
    live: VecDeque<(Timestamp, Decision)>,
    candidate: VecDeque<(Timestamp, Decision)>,
    /// Every divergence so far (count), and the last few.
    pub divergences: u64,
    /// Commands the candidate sent that the live engine did not.
    pub command_divergences: u64,
    /// The most recent divergences, newest last.
    pub recent: VecDeque<Divergence>,
    /// Told of each divergence as it is found (the event stream, the metrics).
    on_divergence: Option<OnDivergence>,
}

impl Shadow {
    /// A shadow of agent `session` running `engine` (the candidate config).
    pub fn new(engine: Engine, session: String) -> Shadow {
        Shadow {
            engine,
            session,
            answers: HashMap::new(),
            waiting: VecDeque::new(),
            live: VecDeque::new(),
            candidate: VecDeque::new(),
            divergences: 0,
            command_divergences: 0,
            recent: VecDeque::new(),
            on_divergence: None,
        }
    }

    /// Calls `f(session, divergence)` for each divergence as it is found.
    pub fn on_divergence(mut self, f: impl FnMut(&str, &Divergence) + 'static) -> Shadow {
        self.on_divergence = Some(Box::new(f));
        self
    }

    /// Takes the candidate's actions: commands wait for a live match,
    /// decisions for comparison.
    fn drain(&mut self, t: Timestamp) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Command(c) => self.waiting.push_back((c.id, c.kind)),
                Action::Decision(d) => push_bounded(&mut self.candidate, (t, d)),
                // Never acts: the live engine's gate verdict reaches it as an input.
                Action::CheckGates { .. } => {}
            }
        }
    }

    fn feed(&mut self, t: Timestamp, event: Event) {
        self.engine.handle_event(t, event);
        self.drain(t);
    }

    /// Pairs equal decisions within [`WINDOW`]; what is left older than
    /// that (or behind a decision the other engine made instead) diverged.
    fn compare(&mut self, now: Timestamp) {
        loop {
            match (self.live.front(), self.candidate.front()) {
                (Some((lt, ld)), Some((ct, cd))) if ld == cd && gap(*lt, *ct) <= WINDOW => {
                    self.live.pop_front();
                    self.candidate.pop_front();
                }
                (Some((lt, _)), Some((ct, _))) => {
                    // Different decisions: the earlier one is the divergence
                    // (once the window has passed, the other may still come).
                    let first_live = lt <= ct;
                    let older = if first_live { *lt } else { *ct };
                    if gap(older, now) <= WINDOW {
                        return;
                    }
                    self.diverged(first_live);
                }
                (Some((t, _)), None) | (None, Some((t, _))) => {
                    if gap(*t, now) <= WINDOW {
                        return;
                    }
                    let live = self.candidate.is_empty();
                    self.diverged(live);
                }
                (None, None) => return,
            }
        }
    }

    fn diverged(&mut self, live: bool) {
        let (queue, by) = if live {
            (&mut self.live, "live")
        } else {
            (&mut self.candidate, "shadow")
        };
        let Some((t, decision)) = queue.pop_front() else {
            return;
        };
        self.divergences += 1;
        let what = crate::host::observe::describe(t, &decision);
        // The first few said; then every 100th (a candidate off the live path
        // keeps diverging, and the count says how much).
        if self.divergences <= 10 || self.divergences % 100 == 0 {
            tracing::warn!(
                "shadow divergence #{}: only the {by} policy decided {}",
                self.divergences,
                what.trim()
            );
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        let divergence = Divergence { t, by, decision };
        if let Some(f) = &mut self.on_divergence {
            f(&self.session, &divergence);
        }
        self.recent.push_back(divergence);
    }
}

fn gap(a: Timestamp, b: Timestamp) -> Duration {
    if a >= b {
        a - b
    } else {
        b - a
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == HELD {
        q.pop_front();
    }
    q.push_back(item);
}

impl Observer for Shadow {
    fn input(&mut self, t: Timestamp, event: &Event) {
        self.feed(t, event.clone());
    }

    fn command(&mut self, _t: Timestamp, input: &Input) {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        if *session != self.session {
            return;
        }
        let live = command.redacted();
        if let Some(pos) = self
            .waiting
            .iter()
            .position(|(_, kind)| kind.redacted() == live)
        {
            if let Some((shadow_id, _)) = self.waiting.remove(pos) {
                self.answers.insert(*id, shadow_id);
            }
        }
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        match output {
            Output::Result {
                session,
                id,
                result,
                ..
            } if *session == self.session => {
                if let Some(shadow_id) = self.answers.remove(id) {
                    self.feed(
                        t,
                        Event::CommandResult {
                            id: shadow_id,
                            result: result.clone(),
                        },
                    );
                }
            }
            Output::Event {
                session,
                epoch,
                event,
            } if *session == self.session => self.feed(
                t,
                Event::Backend {
                    epoch: *epoch,
                    event: event.clone(),
                },
            ),
            _ => {}
        }
    }

    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        if agent == self.session {
            push_bounded(&mut self.live, (t, d.clone()));
        }
    }

    fn pass_done(&mut self, t: Timestamp) {
        // What the live engine did not send this pass, it will not: the
        // candidate's command fails, as a replay answers a command the
        // recording does not have.
        while let Some((id, kind)) = self.waiting.pop_front() {
            self.command_divergences += 1;
            tracing::debug!("shadow: {} not sent by the live engine", kind.type_name());
            let result = Err(CommandError::new(
                "shadow: the live session did not send this command",
            ));
            self.feed(t, Event::CommandResult { id, result });
        }
        self.compare(t);
    }

    fn deadline(&self) -> Option<Timestamp> {
        self.engine.poll_timeout()
    }

    fn on_deadline(&mut self, t: Timestamp) {
        self.engine.handle_timeout(t);
        self.drain(t);
    }

    fn close(&mut self) {
        self.compare(Timestamp::from_nanos(u64::MAX));
        if self.divergences > 0 {
            tracing::warn!(
                "shadow: {} decision(s) and {} command(s) diverged from the live session",
                self.divergences,
                self.command_divergences
            );
        } else {
            tracing::info!("shadow: the candidate config decided as the live one");
        }
    }
}

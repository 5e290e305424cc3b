//! The host loop: joins the policy engine and a backend, on the real clock
//! (tokio) or on a virtual clock that jumps to the next deadline.
//!
//! One pass of the loop: drain the backend's outputs into the engine, carry
//! out the engine's actions (commands to the backend, decisions to the
//! observers), fire due timers; then wait for the earliest deadline of
//! either side, a wake from the backend or a signal.

pub mod check;
pub mod drill;
pub mod explain;
pub mod gate;
pub mod observe;
pub mod plans;
pub mod record;
pub mod serve;
pub mod session;
pub mod shadow;
pub mod signal;
pub mod supervise;

use crate::control::Incoming;
use crate::host::observe::Observer;
use crate::report::Identity;
use compact_str::CompactString;
use drctl_plugin_api::messages::{Input, Output, Password};
use drctl_policy::{Action, Alarm, CommandId, Decision, Engine, Event, Timestamp};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Notify;

/// A fault on the backend side of the loop.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The plugin failed a call (panic, bad JSON, error status).
    #[error(transparent)]
    Plugin(#[from] drctl_plugin_api::loader::PluginError),
    /// The backend keeps naming a deadline that produces nothing.
    #[error("backend {0} keeps asking to be polled without producing output (a plugin bug)")]
    Spinning(String),
}

/// The backend as the loop sees it.
pub trait Backend {
    /// The plugin's name, for messages.
    fn name(&self) -> &str;
    /// Hand over one input.
    fn handle(&mut self, now: u64, input: &Input) -> Result<(), HostError>;
    /// The next output due at `now`.
    fn poll_output(&mut self, now: u64) -> Result<Option<Output>, HostError>;
    /// When to poll again without input.
    fn poll_timeout(&self) -> Option<u64>;
    /// The backend keeps naming deadlines that produce nothing: `true` when it
    /// dealt with that itself (a supervisor replaces the instance), `false`
    /// to make it a host error.
    fn stalled(&mut self) -> bool {
        false
    }
}

impl Backend for drctl_plugin_api::loader::Instance {
    fn name(&self) -> &str {
        drctl_plugin_api::loader::Instance::name(self)
    }
    fn handle(&mut self, now: u64, input: &Input) -> Result<(), HostError> {
        Ok(drctl_plugin_api::loader::Instance::handle(
            self, now, input,
        )?)
    }
    fn poll_output(&mut self, now: u64) -> Result<Option<Output>, HostError> {
        Ok(drctl_plugin_api::loader::Instance::poll_output(self, now)?)
    }
    fn poll_timeout(&self) -> Option<u64> {
        drctl_plugin_api::loader::Instance::poll_timeout(self)
    }
}

/// Which clock drives the loop.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Wall-clock time from `start`, `speed` times faster (1 for a live session).
    Real {
        /// The session's start.
        start: tokio::time::Instant,
        /// Session seconds per wall-clock second (`drctl replay --speed`).
        speed: f64,
    },
    /// Time that jumps to the next deadline; only for `DETERMINISTIC` backends.
    Virtual {
        /// The current virtual time.
        now: Timestamp,
    },
}

impl Clock {
    /// A real clock starting now.
    pub fn real() -> Clock {
        Clock::scaled(1.0)
    }

    /// A real clock starting now that runs `speed` times faster than the wall clock.
    pub fn scaled(speed: f64) -> Clock {
        Clock::Real {
            start: tokio::time::Instant::now(),
            speed,
        }
    }

    /// When session time `t` falls on the wall clock (saturating: a speed
    /// the caller did not bound gives a far-away instant, never a panic).
    fn wall(start: tokio::time::Instant, speed: f64, t: Timestamp) -> tokio::time::Instant {
        let since = t.since_start();
        let wall = if speed == 1.0 {
            Some(since)
        } else {
            std::time::Duration::try_from_secs_f64(since.as_secs_f64() / speed).ok()
        };
        wall.and_then(|w| start.checked_add(w))
            .or_else(|| start.checked_add(FAR_AWAY))
            .unwrap_or(start)
    }

    /// A virtual clock at zero.
    pub fn virtual_at_zero() -> Clock {
        Clock::Virtual {
            now: Timestamp::ZERO,
        }
    }

    /// Session time now.
    pub fn now(&self) -> Timestamp {
        match *self {
            Clock::Real { start, speed } => {
                let elapsed = start.elapsed();
                let nanos = if speed == 1.0 {
                    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
                } else {
                    // `as` saturates (and maps NaN to 0): never a panic.
                    (elapsed.as_nanos() as f64 * speed) as u64
                };
                Timestamp::from_nanos(nanos)
            }
            Clock::Virtual { now } => now,
        }
    }
}

/// Why [`Host::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The caller's condition holds.
    Done,
    /// The end time was reached.
    End,
    /// SIGINT/SIGTERM (or the caller's stop future).
    Signal,
    /// Virtual clock with nothing left that could ever happen.
    Idle,
}

/// The alarms up, in [`Alarm::ALL`] order (no allocation: the loop reads them every pass).
#[derive(Debug, Clone, Copy)]
pub struct ActiveAlarms {
    list: [Alarm; Alarm::ALL.len()],
    len: usize,
}

impl Default for ActiveAlarms {
    fn default() -> Self {
        ActiveAlarms {
            list: Alarm::ALL,
            len: 0,
        }
    }
}

impl ActiveAlarms {
    fn push(&mut self, a: Alarm) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = a;
            self.len += 1;
        }
    }

    /// The alarms, in [`Alarm::ALL`] order.
    pub fn as_slice(&self) -> &[Alarm] {
        &self.list[..self.len]
    }
}

/// A future that resolves when the run should stop (a signal).
pub type StopFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One agent's session: its engine and what the host needs to speak for it.
struct Agent {
    /// Inline (ids up to 24 bytes): [`Host::index_of`] compares it where
    /// the agent is, without following a pointer.
    session: CompactString,
    password: Password,
    engine: Engine,
    /// The deadline last pushed on the timer heap for this agent.
    armed: Option<Timestamp>,
    /// The engine panicked: this agent is stopped, the others go on.
    failed: bool,
    /// The engine ran since the observers last saw it settle.
    touched: bool,
    /// E3 with an owner: who paused, why, and until when (`pause --for`).
    /// Boxed, as `intent`: rare, and a fleet holds 100 000 agents.
    pause: Option<Box<PauseInfo>>,
    /// What the operator asked along with the next operator switchover
    /// (gates to skip, why), taken when its gates are checked.
    intent: Option<Box<gate::OperatorIntent>>,
    /// Tests: the entry point that panics for this agent.
    #[cfg(test)]
    fault: Option<Entry>,
}

/// Who paused an agent (`drctl pause`), why, and when it resumes by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseInfo {
    /// The control client, e.g. `uid 1000 (ann)`.
    pub by: String,
    /// `--reason`.
    pub reason: Option<String>,
    /// `--for`: the session time it resumes at.
    pub until: Option<Timestamp>,
}

/// The engine's entry points the host calls, each under the panic guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    HandleEvent,
    HandleTimeout,
    PollAction,
    PollTimeout,
}

impl Entry {
    fn as_str(self) -> &'static str {
        match self {
            Entry::HandleEvent => "handle_event",
            Entry::HandleTimeout => "handle_timeout",
            Entry::PollAction => "poll_action",
            Entry::PollTimeout => "poll_timeout",
        }
    }
}

/// The engines, the backend and the observers of one host: one agent
/// session (`watch`, `startup`, `switch`, `replay`) or a fleet of them, all
/// served by one backend instance through their session ids (SPEC §5).
pub struct Host<B: Backend> {
    agents: Vec<Agent>,
    /// Session id -> index in `agents`, looked up for every backend
    /// output: Fx, not SipHash (the keys are the host's own session ids),
    /// and the ids inline in the table (a pointer to each would cost a
    /// cache miss a lookup in a fleet of 100 000).
    by_session: FxHashMap<CompactString, usize>,
    /// The agent of the last output: a fleet's outputs come for one agent
    /// again or for the next one mostly (a site change tells every agent in
    /// turn, a queue serves them in order), which is checked before the map.
    last_output: usize,
    /// Every agent's next deadline; stale entries are skipped when popped.
    timers: BinaryHeap<Reverse<(Timestamp, usize)>>,
    backend: B,
    clock: Clock,
    observers: Vec<Box<dyn Observer>>,
    wake: Arc<Notify>,
    /// Control requests (a watcher's socket), handled inside the loop.
    inbox: Option<tokio::sync::mpsc::UnboundedReceiver<Incoming>>,
    identity: Option<Identity>,
    /// The last decisions of all agents (agent index, time, decision), for `status`.
    recent: VecDeque<(usize, Timestamp, Decision)>,
    /// Alarms the host itself raised (a failed recording): every agent's.
    host_alarms: Vec<Alarm>,
    /// Agents whose engine ran since the observers last saw them settle.
    touched: Vec<usize>,
    /// `pause --for` ends (agent index); stale ones are skipped.
    pause_ends: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// The latest time pumped: a late deadline is handled no earlier.
    pumped: Timestamp,
    /// Run by the loop itself on the real clock (the systemd watchdog).
    heartbeat: Option<Heartbeat>,
    /// How engines waiting on switchover gates are answered.
    gates: gate::GateMode,
    /// Gate verdicts ready to feed (agent, outcomes, verdict).
    gates_ready: VecDeque<(usize, Vec<crate::gates::Outcome>, drctl_policy::GateVerdict)>,
    /// Operator work over time: scheduled switches, a wave plan (`plans.rs`).
    plans: plans::Plans,
}

/// A callback the loop runs every `every` of wall-clock time, between two
/// passes: a loop that is wedged (a plugin call that never returns) stops
/// running it, which is the point of a watchdog.
struct Heartbeat {
    every: std::time::Duration,
    next: tokio::time::Instant,
    beat: Box<dyn FnMut()>,
}

/// How many decisions `status` shows.
pub const RECENT: usize = 10;

/// How many decisions of all agents the host keeps for `status` (bounded
/// whatever the fleet's size; one agent's last [`RECENT`] when it is alone).
const RECENT_KEPT: usize = 8 * RECENT;

/// How many virtual-clock passes go by between looks for a signal.
const SIGNAL_CHECK: u32 = 1024;

/// Where [`Clock::wall`] puts an instant it cannot represent (about 30 years on).
const FAR_AWAY: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);

/// How many passes at one time a catch-up makes before leaving the rest to `now`.
const CATCH_UP_REPEATS: u32 = 8;

/// The stretch before a real-clock deadline slept precisely (blocking the loop that long at most).
const PRECISE: std::time::Duration = std::time::Duration::from_millis(2);

impl<B: Backend> Host<B> {
    /// A host for one agent `session`; `wake` is what the backend's wake callback notifies.
    #[cfg(test)]
    pub fn new(
        engine: Engine,
        backend: B,
        session: String,
        password: Password,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Self {
        Self::fleet(vec![(session, password, engine)], backend, clock, wake)
    }

    /// A host for many agents `(session, password, engine)` on one backend.
    pub fn fleet(
        agents: impl IntoIterator<Item = (String, Password, Engine)>,
        backend: B,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Self {
        let agents = agents.into_iter().map(Ok::<_, std::convert::Infallible>);
        match Self::try_fleet(agents, backend, clock, wake) {
            Ok(host) => host,
            Err(never) => match never {},
        }
    }

    /// [`Host::fleet`] over agents built as they are taken (a large fleet's
    /// engines are never held twice); the first error stops it.
    pub fn try_fleet<E>(
        agents: impl IntoIterator<Item = Result<(String, Password, Engine), E>>,
        backend: B,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Result<Self, E> {
        let agents = agents.into_iter();
        let mut all = Vec::with_capacity(agents.size_hint().0);
        for agent in agents {
            let (session, password, engine) = agent?;
            all.push(Agent {
                session: CompactString::from(session),
                password,
                engine,
                armed: None,
                failed: false,
                touched: false,
                pause: None,
                intent: None,
                #[cfg(test)]
                fault: None,
            });
        }
        let agents = all;
        let by_session = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.session.clone(), i))
            .collect();
        Ok(Host {
            agents,
            by_session,
            last_output: 0,
            timers: BinaryHeap::new(),
            backend,
            clock,
            observers: Vec::new(),
            wake,
            inbox: None,
            identity: None,
            recent: VecDeque::with_capacity(RECENT_KEPT),
            host_alarms: Vec::new(),
            touched: Vec::new(),
            pause_ends: BinaryHeap::new(),
            pumped: Timestamp::ZERO,
            heartbeat: None,
            gates: gate::GateMode::default(),
            gates_ready: VecDeque::new(),
            plans: plans::Plans::default(),
        })
    }

    /// Runs `beat` from the loop about every `every` (real clock only; at
    /// once on the first pass), e.g. the systemd watchdog's `WATCHDOG=1`.
    pub fn heartbeat(&mut self, every: std::time::Duration, beat: impl FnMut() + 'static) {
        self.heartbeat = Some(Heartbeat {
            every,
            next: tokio::time::Instant::now(),
            beat: Box::new(beat),
        });
    }

    /// Runs the heartbeat if it is due; when the next one is.
    fn beat(&mut self) -> Option<tokio::time::Instant> {
        let hb = self.heartbeat.as_mut()?;
        let now = tokio::time::Instant::now();
        if hb.next <= now {
            (hb.beat)();
            hb.next = now + hb.every;
        }
        Some(hb.next)
    }

    /// Agent `i`'s engine (`None` past the last agent).
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.agents.get(i).map(|a| &a.engine)
    }

    /// Every agent's session id and engine, in the order they were given.
    pub fn engines(&self) -> impl Iterator<Item = (&str, &Engine)> {
        self.agents.iter().map(|a| (a.session.as_str(), &a.engine))
    }

    /// Agent `i`'s session id.
    pub fn session(&self, i: usize) -> Option<&str> {
        self.agents.get(i).map(|a| a.session.as_str())
    }

    /// How many agents this host runs.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Takes control requests from `inbox` while running (`drctl watch`).
    pub fn serve(
        &mut self,
        inbox: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
        identity: Identity,
    ) {
        self.inbox = Some(inbox);
        self.identity = Some(identity);
    }

    /// Adds an observer of commands, outputs and decisions.
    pub fn observe(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    /// Session time now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Puts a real clock's zero at this instant (the session's start): the
    /// setup before it (config, plugin, history, sockets) takes no session
    /// time, so a real-clock recording's first command is at t = 0, as in
    /// its replay. Nothing runs on the clock before the start.
    pub fn start_clock(&mut self) {
        if let Clock::Real { start, .. } = &mut self.clock {
            *start = tokio::time::Instant::now();
        }
    }

    /// Feeds an event to agent `i`'s engine now and carries out what follows.
    ///
    /// What is due first (timers, backend outputs) is handled first, so that a
    /// recording has it before the input, in the order the engine saw them,
    /// and a replay, which feeds the input after everything due, agrees.
    pub fn inject(&mut self, i: usize, event: Event) -> Result<(), HostError> {
        let now = self.now();
        self.due_before(now, &event)?;
        let agent = self.agents.get(i).map(|a| a.session.as_str());
        for o in &mut self.observers {
            o.input_for(now, agent, &event);
        }
        self.engine_call(i, Entry::HandleEvent, |e| e.handle_event(now, event));
        self.carry_out(i, now)?;
        self.pump(now)
    }

    /// Agent `i`'s pause: who, why, until when (`None`: not paused by `drctl pause`).
    pub fn pause_info(&self, i: usize) -> Option<&PauseInfo> {
        self.agents.get(i).and_then(|a| a.pause.as_deref())
    }

    /// Records who paused agent `i` (or clears it: `None`); a pause with an
    /// end resumes by itself then.
    pub fn set_pause(&mut self, i: usize, pause: Option<PauseInfo>) {
        if let Some(until) = pause.as_ref().and_then(|p| p.until) {
            self.pause_ends.push(Reverse((until, i)));
        }
        if let Some(agent) = self.agents.get_mut(i) {
            agent.pause = pause.map(Box::new);
        }
    }

    /// An input the host itself feeds agent `i` at `now` (inside a pass):
    /// observers see it as an input (a recording keeps it for replay).
    fn feed_input(&mut self, i: usize, now: Timestamp, event: Event) -> Result<(), HostError> {
        let agent = self.agents.get(i).map(|a| a.session.as_str());
        for o in &mut self.observers {
            o.input_for(now, agent, &event);
        }
        self.engine_call(i, Entry::HandleEvent, |e| e.handle_event(now, event));
        self.carry_out(i, now)
    }

    /// Feeds `event` to every agent's engine now (fleet start and stop), after
    /// what is due (as [`Host::inject`]).
    pub fn inject_all(&mut self, event: Event) -> Result<(), HostError> {
        let now = self.now();
        self.due_before(now, &event)?;
        for o in &mut self.observers {
            o.input_for(now, None, &event);
        }
        for i in 0..self.agents.len() {
            let ev = event.clone();
            self.engine_call(i, Entry::HandleEvent, |e| e.handle_event(now, ev));
            self.carry_out(i, now)?;
        }
        self.pump(now)
    }

    /// Handles what is due at `now` before the host feeds `event`: without
    /// this the engine would fire a due timer inside `handle_event`, after
    /// the recording already has the input (a `--for` end or an operator
    /// request landing on a timer's deadline), while a replay fires it first.
    /// Nothing is due before the start (a replay's t = 0 events follow it).
    fn due_before(&mut self, now: Timestamp, event: &Event) -> Result<(), HostError> {
        if matches!(event, Event::Start) {
            return Ok(());
        }
        self.pump(now)
    }

    /// Runs `f` (the engine's entry point `entry`) on agent `i`'s engine,
    /// unless it failed before; a panic stops that agent only (logged), never
    /// the host or the other agents. `None` when the agent is stopped.
    fn engine_call<R>(
        &mut self,
        i: usize,
        entry: Entry,
        f: impl FnOnce(&mut Engine) -> R,
    ) -> Option<R> {
        self.touch(i);
        let agent = self.agents.get_mut(i)?;
        if agent.failed {
            return None;
        }
        #[cfg(test)]
        let fault = agent.fault;
        let engine = &mut agent.engine;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            if fault == Some(entry) {
                panic!("a bug in {}", entry.as_str());
            }
            f(engine)
        }));
        match outcome {
            Ok(r) => Some(r),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                tracing::error!(
                    agent = %agent.session,
                    "the policy engine of {} panicked in {} ({what}); this agent is stopped, the others go on",
                    agent.session,
                    entry.as_str()
                );
                agent.failed = true;
                agent.armed = None;
                None
            }
        }
    }

    /// Everything due up to `now`, each deadline passed handled at its own
    /// time, in order: a clock that jumped (the process was descheduled; at
    /// `--speed 2000` 50 ms is 100 s) must not feed a backend's later events
    /// before the answers to commands sent at an earlier deadline, which a
    /// late `now` would have it schedule after them (SPEC §9).
    fn pump(&mut self, now: Timestamp) -> Result<(), HostError> {
        let mut repeats = 0;
        while let Some(due) = self.next_deadline().filter(|d| *d < now) {
            let at = due.max(self.pumped);
            // A deadline that stays put after a pass at its time (a backend
            // naming a stale one): the pass at `now` below takes the rest.
            repeats = if at == self.pumped { repeats + 1 } else { 0 };
            if repeats > CATCH_UP_REPEATS {
                break;
            }
            self.pump_at(at)?;
        }
        self.pump_at(now)
    }

    /// Everything due at `now`: agents' timers, backend outputs, actions.
    fn pump_at(&mut self, now: Timestamp) -> Result<(), HostError> {
        self.pumped = self.pumped.max(now);
        self.gates_answered(now)?;
        while let Some(&Reverse((at, i))) = self.pause_ends.peek() {
            if at > now {
                break;
            }
            self.pause_ends.pop();
            let ends = self.agents[i].pause.as_ref().and_then(|p| p.until) == Some(at);
            if ends {
                tracing::info!(
                    "{}: the pause ends (pause --for): automatic switchovers are allowed again",
                    self.agents[i].session
                );
                self.agents[i].pause = None;
                self.feed_input(i, now, Event::Resume)?;
            }
        }
        for o in &mut self.observers {
            if o.deadline().is_some_and(|d| d <= now) {
                o.on_deadline(now);
            }
        }
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            // Only the latest deadline pushed for an agent is live.
            if self.agents[i].armed != Some(at) {
                continue;
            }
            self.agents[i].armed = None;
            let agent = &self.agents[i];
            for o in &mut self.observers {
                o.timeout(now, &agent.session, &agent.engine);
            }
            self.engine_call(i, Entry::HandleTimeout, |e| e.handle_timeout(now));
            self.carry_out(i, now)?;
        }
        while let Some(output) = self.backend.poll_output(now.as_nanos())? {
            tracing::trace!(target: "drctl::wire", t = %now, "<- {}", serde_json::to_string(&output).unwrap_or_default());
            for o in &mut self.observers {
                o.output(now, &output);
            }
            let session = match &output {
                Output::Result { session, .. } | Output::Event { session, .. } => session,
                _ => continue,
            };
            let Some(i) = self.index_of(session) else {
                tracing::debug!("output for unknown session {session:?} ignored");
                continue;
            };
            // The engine takes the wire's results and events as they are.
            let event = match output {
                Output::Result { id, result, .. } => Event::CommandResult {
                    id: CommandId(id),
                    result,
                },
                Output::Event { epoch, event, .. } => Event::Backend { epoch, event },
                _ => continue,
            };
            self.engine_call(i, Entry::HandleEvent, |e| e.handle_event(now, event));
            self.carry_out(i, now)?;
        }
        self.step_plans(now)?;
        self.observer_alarms(now);
        Ok(())
    }

    /// The agent whose session id is `session`: the last output's agent or
    /// the next one when it is either (an id is unique, so that is the one
    /// the map would give), else the map's.
    fn index_of(&mut self, session: &str) -> Option<usize> {
        let last = self.last_output;
        let i = [last, last.wrapping_add(1)]
            .into_iter()
            .find(|&i| self.agents.get(i).is_some_and(|a| a.session == session))
            .or_else(|| self.by_session.get(session).copied())?;
        self.last_output = i;
        Some(i)
    }

    /// Alarms raised by observers (the recorder): the host's, so every
    /// agent's (a recording that failed loses every session's record); a
    /// decision of each agent that does not have it up already. They stay up
    /// (in [`Host::active_alarms`]) for the session.
    fn observer_alarms(&mut self, now: Timestamp) {
        let raised: Vec<_> = self
            .observers
            .iter_mut()
            .filter_map(|o| o.take_alarm())
            .collect();
        for alarm in raised {
            if self.host_alarms.contains(&alarm) {
                continue;
            }
            self.host_alarms.push(alarm);
            for i in 0..self.agents.len() {
                self.touch(i);
                if !self.agents[i].engine.alarm_active(alarm) {
                    let deadline = None;
                    self.decide(i, now, Decision::AlarmRaised { alarm, deadline });
                }
            }
        }
    }

    /// The alarms up for agent `i`, raised by its engine or by the host: the
    /// one set `status` and the metrics read.
    pub fn active_alarms(&self, i: usize) -> ActiveAlarms {
        let mut active = ActiveAlarms::default();
        let Some(agent) = self.agents.get(i) else {
            return active;
        };
        for a in Alarm::ALL {
            if agent.engine.alarm_active(a) || self.host_alarms.contains(&a) {
                active.push(a);
            }
        }
        active
    }

    /// A decision of agent `i`: to every observer, and to `status`'s recent ones.
    fn decide(&mut self, i: usize, now: Timestamp, d: Decision) {
        let session = &self.agents[i].session;
        for o in &mut self.observers {
            o.decision(now, session, &d);
        }
        if self.recent.len() == RECENT_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back((i, now, d));
    }

    /// Agent `i`'s last decisions (at most [`RECENT`]), oldest first.
    pub fn recent(&self, i: usize) -> impl Iterator<Item = (Timestamp, &Decision)> {
        let mine: Vec<_> = self
            .recent
            .iter()
            .rev()
            .filter(|(a, _, _)| *a == i)
            .take(RECENT)
            .map(|(_, t, d)| (*t, d))
            .collect();
        mine.into_iter().rev()
    }

    /// Marks agent `i` for the observers' next look ([`Host::settle`]).
    fn touch(&mut self, i: usize) {
        if let Some(agent) = self.agents.get_mut(i) {
            if !agent.touched {
                agent.touched = true;
                self.touched.push(i);
            }
        }
    }

    /// Tells the observers where each agent whose engine ran has settled.
    fn settle(&mut self, now: Timestamp) {
        for i in std::mem::take(&mut self.touched) {
            let alarms = self.active_alarms(i);
            let agent = &mut self.agents[i];
            agent.touched = false;
            for o in &mut self.observers {
                o.settled(now, &agent.session, &agent.engine);
                o.alarms(now, &agent.session, alarms.as_slice());
            }
        }
        for o in &mut self.observers {
            o.pass_done(now);
        }
    }

    /// Carries out agent `i`'s queued actions and re-arms its timer.
    fn carry_out(&mut self, i: usize, now: Timestamp) -> Result<(), HostError> {
        while let Some(action) = self
            .engine_call(i, Entry::PollAction, Engine::poll_action)
            .flatten()
        {
            match action {
                Action::Command(cmd) => {
                    let agent = &self.agents[i];
                    // The edge: the engine's wire command, enveloped for the
                    // session and given the password the engine never sees.
                    let input = Input::Command {
                        session: agent.session.as_str().to_owned(),
                        id: cmd.id.0,
                        command: cmd.kind.with_password(&agent.password),
                    };
                    tracing::trace!(target: "drctl::wire", t = %now, "-> {}", input.to_redacted_json());
                    for o in &mut self.observers {
                        o.command(now, &input);
                    }
                    self.backend.handle(now.as_nanos(), &input)?;
                }
                Action::Decision(d) => self.decide(i, now, d),
                Action::CheckGates { reason, from, to } => self.check_gates(i, reason, from, to),
            }
        }
        self.gates_ready_for(i, now)?;
        let next = self
            .engine_call(i, Entry::PollTimeout, |e| e.poll_timeout())
            .flatten();
        let agent = &mut self.agents[i];
        if next != agent.armed {
            agent.armed = next;
            if let Some(at) = next {
                self.timers.push(Reverse((at, i)));
            }
        }
        Ok(())
    }

    /// The earliest deadline of the agents and the backend.
    fn next_deadline(&mut self) -> Option<Timestamp> {
        // Drop stale heap entries so the top is a live deadline.
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if self.agents[i].armed == Some(at) {
                break;
            }
            self.timers.pop();
        }
        let engines = self.timers.peek().map(|Reverse((at, _))| *at);
        let backend = self.backend.poll_timeout().map(Timestamp::from_nanos);
        let observers = self.observers.iter().filter_map(|o| o.deadline()).min();
        let pauses = self.pause_ends.peek().map(|Reverse((at, _))| *at);
        [engines, backend, observers, pauses, self.plans.deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs until `done` holds, `end` is reached, `stop` resolves, or (virtual
    /// clock) nothing can happen any more.
    pub async fn run(
        &mut self,
        end: Option<Timestamp>,
        stop: &mut StopFuture<'_>,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<Stop, HostError> {
        let mut spins = 0u32;
        let mut passes = 0u32;
        loop {
            let now = self.now();
            // Past `end` (a late clock), what falls after it is not this run's.
            self.pump(end.map_or(now, |e| now.min(e)))?;
            self.settle(now);
            self.observers.retain(|o| !o.done());
            if done(self) {
                return Ok(Stop::Done);
            }
            if end.is_some_and(|e| now >= e) {
                return Ok(Stop::End);
            }
            let deadline = [self.next_deadline(), end].into_iter().flatten().min();
            // A deadline that does not move time forward must produce something.
            if deadline.is_some_and(|d| d <= now) {
                spins += 1;
                if spins > 10_000 {
                    if !self.backend.stalled() {
                        return Err(HostError::Spinning(self.backend.name().to_owned()));
                    }
                    spins = 0;
                }
                if matches!(self.clock, Clock::Virtual { .. }) {
                    continue;
                }
            } else {
                spins = 0;
            }
            match &mut self.clock {
                Clock::Virtual { now: vnow } => {
                    passes = passes.wrapping_add(1);
                    // The virtual clock never waits: every so often, let the
                    // runtime see a signal (a long replay must stop on SIGTERM).
                    if passes % SIGNAL_CHECK == 0 {
                        tokio::task::yield_now().await;
                        tokio::select! {
                            biased;
                            _ = stop.as_mut() => return Ok(Stop::Signal),
                            _ = std::future::ready(()) => {}
                        }
                    }
                    match deadline {
                        Some(d) => *vnow = d.max(*vnow),
                        None => return Ok(Stop::Idle),
                    }
                }
                Clock::Real { start, speed } => {
                    let (start, speed) = (*start, *speed);
                    let beat = self.beat();
                    let target = deadline.map(|d| Clock::wall(start, speed, d));
                    // tokio's timers tick in whole milliseconds and wake late by up
                    // to one; the last stretch before a deadline is slept by the
                    // OS instead, which is accurate to tens of microseconds
                    // (SPEC §8: a timer fires ≤ 1 ms late).
                    if let Some(left) = target
                        .map(|t| t.saturating_duration_since(tokio::time::Instant::now()))
                        .filter(|left| *left <= PRECISE)
                    {
                        std::thread::sleep(left);
                        continue;
                    }
                    let sleep = async {
                        match target {
                            Some(t) => tokio::time::sleep_until(t - PRECISE).await,
                            None => std::future::pending::<()>().await,
                        }
                    };
                    let heartbeat = async {
                        match beat {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending::<()>().await,
                        }
                    };
                    let inbox = async {
                        match &mut self.inbox {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = sleep => {}
                        _ = heartbeat => {}
                        _ = self.wake.notified() => {}
                        request = inbox => {
                            match request {
                                Some(request) => self.on_control(request)?,
                                None => self.inbox = None,
                            }
                        }
                        _ = stop.as_mut() => return Ok(Stop::Signal),
                    }
                }
            }
        }
    }

    /// Sends `shutdown` through the engine, drains what follows and closes the observers.
    pub fn shutdown(&mut self) -> Result<(), HostError> {
        self.inject_all(Event::Shutdown)?;
        let now = self.now();
        let drained = self.pump(now);
        self.close();
        drained
    }

    /// Tells the observers the session is over (flushes a recording).
    pub fn close(&mut self) {
        for o in &mut self.observers {
            o.close();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::host::observe::Observer;
    use drctl_plugin_api::messages::Command;
    use drctl_policy::EngineConfig;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A backend that takes every command and never answers.
    pub(crate) struct Silent;

    impl Backend for Silent {
        fn name(&self) -> &str {
            "silent"
        }
        fn handle(&mut self, _now: u64, _input: &Input) -> Result<(), HostError> {
            Ok(())
        }
        fn poll_output(&mut self, _now: u64) -> Result<Option<Output>, HostError> {
            Ok(None)
        }
        fn poll_timeout(&self) -> Option<u64> {
            None
        }
    }

    /// A deterministic backend like `mock` and `replay`: a command is
    /// answered `latency` after it was handled (a connect 200 ms, the rest at
    /// once), events come at fixed times.
    struct Scripted {
        answers: std::collections::BTreeMap<(u64, u64), Output>,
        /// Events by time, earliest last.
        events: Vec<(u64, Output)>,
        seq: u64,
    }

    const MS: u64 = 1_000_000;

    impl Scripted {
        /// Connected at 200 ms to site1, its listeners on; a graceful-shutdown logout at 5 s.
        fn w1() -> Scripted {
            let event = |t: u64, event: serde_json::Value| {
                let o = serde_json::json!({"kind": "event", "session": "ann", "epoch": 1, "event": event});
                (t * MS, serde_json::from_value(o).unwrap())
            };
            let on = |service: &str| serde_json::json!({"type": "service_status", "service": service, "status": "on"});
            let mut events = vec![
                event(200, on("telephony")),
                event(200, on("configuration")),
                event(200, on("statistic")),
                event(
                    5_000,
                    serde_json::json!({"type": "agent_logout", "dn": "7001", "reason": "graceful_shutdown_logout"}),
                ),
            ];
            events.reverse();
            Scripted {
                answers: Default::default(),
                events,
                seq: 0,
            }
        }
    }

    impl Backend for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn handle(&mut self, now: u64, input: &Input) -> Result<(), HostError> {
            let Input::Command {
                session,
                id,
                command,
            } = input;
            let (latency, result) = match command {
                Command::Connect { site, .. } => {
                    let epoch = if site.as_str() == "site1" { 1 } else { 2 };
                    (
                        200 * MS,
                        serde_json::json!({"type": "connected", "epoch": epoch}),
                    )
                }
                Command::ReadPersonSites { .. } => (
                    0,
                    serde_json::json!({"type": "person_sites", "preferred_app": "AIL_site1", "secondary_app": "AIL_site2"}),
                ),
                Command::ReadApplication { app_name } => (
                    0,
                    serde_json::json!({"type": "application", "app_name": app_name,
                        "cs_proxy": "csproxy:7000", "site_timeout_s": 30, "site_timeout_ns": 30_000_000_000u64}),
                ),
                _ => (0, serde_json::json!({"type": "done"})),
            };
            let o = serde_json::json!({"kind": "result", "session": session, "id": id, "result": result});
            self.seq += 1;
            self.answers.insert(
                (now + latency, self.seq),
                serde_json::from_value(o).unwrap(),
            );
            Ok(())
        }
        fn poll_output(&mut self, now: u64) -> Result<Option<Output>, HostError> {
            let answer = self.answers.keys().next().map(|k| k.0);
            let event = self.events.last().map(|e| e.0);
            Ok(match (answer, event) {
                (Some(a), e) if a <= now && e.is_none_or(|e| a <= e) => {
                    self.answers.pop_first().map(|(_, o)| o)
                }
                (_, Some(e)) if e <= now => self.events.pop().map(|(_, o)| o),
                _ => None,
            })
        }
        fn poll_timeout(&self) -> Option<u64> {
            let answer = self.answers.keys().next().map(|k| k.0);
            let event = self.events.last().map(|e| e.0);
            answer.into_iter().chain(event).min()
        }
    }

    /// Decisions with their times: `5s switchover-started`.
    #[derive(Default)]
    struct Decisions(Vec<String>);

    impl Observer for Decisions {
        fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
            self.0.push(format!("{t} {}", d.type_name()));
        }
    }

    #[test]
    fn a_clock_that_jumps_past_the_end_handles_what_was_due_at_its_own_time() {
        // The process is descheduled right after the start: the real clock's
        // next reading (here 100 s: 50 ms at `--speed 2000`) is past the
        // run's end. The connect answer was due at 200 ms; the commands that
        // follow it must be answered before the 5 s logout comes, as they were
        // when recorded; then the switchover starts at 5 s and completes.
        let end = Timestamp::ZERO + std::time::Duration::from_secs(60);
        for jump in [60, 100] {
            let mut host = Host::new(
                Engine::new(EngineConfig::two_sites("ann")).unwrap(),
                Scripted::w1(),
                "ann".to_owned(),
                Password::new(""),
                Clock::virtual_at_zero(),
                Arc::new(Notify::new()),
            );
            let seen = Rc::new(RefCell::new(Decisions::default()));
            host.observe(Box::new(crate::host::observe::Shared(seen.clone())));
            host.inject(0, Event::Start).unwrap();
            host.clock = Clock::Virtual {
                now: Timestamp::ZERO + std::time::Duration::from_secs(jump),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut stop: StopFuture = Box::pin(std::future::pending());
            let why = rt
                .block_on(host.run(Some(end), &mut stop, |_| false))
                .unwrap();
            assert_eq!(why, Stop::End);
            // Nothing after the end was handled: that is the next run's.
            assert_eq!(host.pumped, end, "jump to {jump} s");
            assert_eq!(
                seen.borrow().0,
                [
                    "+0.200s startup-connected",
                    "+5.000s logout-classified",
                    "+5.000s switchover-started",
                    "+5.200s switchover-completed",
                ],
                "jump to {jump} s"
            );
        }
    }

    /// What the observers saw, one line each: `input start`, `ann command`,
    /// `ann startup-failed`, `alarms recording-failed`.
    #[derive(Default)]
    struct Seen {
        lines: Vec<String>,
        /// An alarm to raise from the observer (as the recorder does).
        raise: Option<Alarm>,
    }

    impl Observer for Seen {
        fn command(&mut self, _t: Timestamp, input: &Input) {
            let Input::Command { session, .. } = input;
            self.lines.push(format!("{session} command"));
        }
        fn decision(&mut self, _t: Timestamp, agent: &str, d: &Decision) {
            self.lines.push(format!("{agent} {}", d.type_name()));
        }
        fn input(&mut self, _t: Timestamp, event: &Event) {
            self.lines.push(format!("input {event:?}").to_lowercase());
        }
        fn settled(&mut self, _t: Timestamp, agent: &str, engine: &Engine) {
            let phase = engine.view().phase.as_str();
            self.lines.push(format!("{agent} settled {phase}"));
        }
        fn alarms(&mut self, _t: Timestamp, agent: &str, active: &[Alarm]) {
            let names: Vec<_> = active.iter().map(|a| a.as_str()).collect();
            self.lines
                .push(format!("{agent} alarms {}", names.join(",")));
        }
        fn take_alarm(&mut self) -> Option<Alarm> {
            self.raise.take()
        }
    }

    /// A `std::io::Write` into a shared buffer, for captured logs.
    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with the logs it writes (text, no colours) captured.
    fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let r = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
        (r, text)
    }

    const TEN: std::time::Duration = std::time::Duration::from_secs(10);

    /// Agents `names` on a silent backend, each giving up after 10 s.
    fn giving_up(names: &[&str]) -> (Host<Silent>, Rc<RefCell<Seen>>) {
        let agents: Vec<_> = names
            .iter()
            .map(|n| {
                let mut cfg = EngineConfig::two_sites(n);
                cfg.startup_timeout = Some(TEN);
                (
                    (*n).to_owned(),
                    Password::new(""),
                    Engine::new(cfg).unwrap(),
                )
            })
            .collect();
        let mut host = Host::fleet(
            agents,
            Silent,
            Clock::virtual_at_zero(),
            Arc::new(Notify::new()),
        );
        let seen = Rc::new(RefCell::new(Seen::default()));
        host.observe(Box::new(crate::host::observe::Shared(seen.clone())));
        (host, seen)
    }

    #[test]
    fn a_panic_in_any_engine_entry_point_stops_its_agent_only_and_is_logged() {
        for entry in [
            Entry::HandleEvent,
            Entry::HandleTimeout,
            Entry::PollAction,
            Entry::PollTimeout,
        ] {
            let (mut host, seen) = giving_up(&["ann", "bob", "cid"]);
            host.agents[1].fault = Some(entry);
            let ((), logs) = logged(|| {
                host.inject_all(Event::Start).unwrap();
                // The startup timers fire: ann and cid give up; bob is stopped.
                let ten = Timestamp::ZERO + TEN;
                host.clock = Clock::Virtual { now: ten };
                host.pump(ten).unwrap();
            });
            let name = entry.as_str();
            assert!(host.agents[1].failed, "{name}");
            assert!(!host.agents[0].failed && !host.agents[2].failed, "{name}");
            let lines = &seen.borrow().lines;
            for other in ["ann", "cid"] {
                assert!(
                    lines.contains(&format!("{other} command")),
                    "{name}: {lines:?}"
                );
                assert!(
                    lines.contains(&format!("{other} startup-failed")),
                    "{name}: {lines:?}"
                );
            }
            assert!(
                !lines.contains(&"bob startup-failed".to_owned()),
                "{name}: {lines:?}"
            );
            let expected = format!(
                "the policy engine of bob panicked in {name} (a bug in {name}); \
                 this agent is stopped, the others go on"
            );
            let line = logs
                .lines()
                .find(|l| l.contains(&expected))
                .unwrap_or_else(|| panic!("{name}: no log line {expected:?} in {logs}"));
            assert!(
                line.contains("ERROR") && line.contains("agent=bob"),
                "{line}"
            );
            assert_eq!(logs.lines().count(), 1, "{name}: one line: {logs}");
        }
    }

    #[test]
    fn a_timer_due_before_an_input_is_fed_and_recorded_before_it() {
        let (mut host, seen) = giving_up(&["ann"]);
        host.inject(0, Event::Start).unwrap();
        // The clock passes the 10 s startup timer before the loop comes
        // round (a real clock's `--for` end, an operator request): the
        // timer still comes first, as a replay of the recording feeds it.
        host.clock = Clock::Virtual {
            now: Timestamp::ZERO + TEN + std::time::Duration::from_nanos(1),
        };
        host.shutdown().unwrap();
        let lines = &seen.borrow().lines;
        let at = |l: &str| lines.iter().position(|x| x == l);
        assert!(
            at("ann startup-failed").unwrap() < at("input shutdown").unwrap(),
            "{lines:?}"
        );
    }

    #[test]
    fn a_host_raised_alarm_is_in_the_one_set_status_and_metrics_read() {
        let (mut host, seen) = giving_up(&["ann"]);
        seen.borrow_mut().raise = Some(Alarm::RecordingFailed);
        host.inject(0, Event::Start).unwrap();
        let end = Timestamp::ZERO + std::time::Duration::from_secs(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut stop: StopFuture = Box::pin(std::future::pending());
        rt.block_on(host.run(Some(end), &mut stop, |_| false))
            .unwrap();
        assert_eq!(host.active_alarms(0).as_slice(), [Alarm::RecordingFailed]);
        assert_eq!(
            serde_json::to_value(host.status(0)).unwrap()["alarms"],
            serde_json::json!(["recording-failed"])
        );
        let lines = &seen.borrow().lines;
        assert_eq!(
            lines.iter().filter(|l| *l == "ann alarm-raised").count(),
            1,
            "raised once: {lines:?}"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("ann alarms recording-failed"),
            "{lines:?}"
        );
    }

    #[test]
    fn no_agent_is_special_in_a_fleet() {
        let (mut host, seen) = giving_up(&["ann", "bob"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut stop: StopFuture = Box::pin(std::future::pending());
        host.inject_all(Event::Start).unwrap();
        rt.block_on(host.run(None, &mut stop, |_| true)).unwrap();
        assert!(seen
            .borrow()
            .lines
            .contains(&"ann settled connecting".to_owned()));
        seen.borrow_mut().lines.clear();
        // An event for bob alone: the observers see bob settle, not ann.
        host.inject(1, Event::Pause).unwrap();
        let end = Timestamp::ZERO + std::time::Duration::from_secs(1);
        rt.block_on(host.run(Some(end), &mut stop, |_| false))
            .unwrap();
        {
            let lines = &seen.borrow().lines;
            assert!(
                lines.contains(&"bob settled connecting".to_owned()),
                "{lines:?}"
            );
            assert!(
                !lines.iter().any(|l| l.starts_with("ann settled")),
                "{lines:?}"
            );
        }
        assert!(host.engine(1).is_some_and(|e| e.view().paused));
        assert!(host.engine(0).is_some_and(|e| !e.view().paused));
        assert!(host.engine(2).is_none());

        // A host alarm (the recording failed) is every agent's, decided once each.
        seen.borrow_mut().raise = Some(Alarm::RecordingFailed);
        let end = end + TEN + TEN;
        rt.block_on(host.run(Some(end), &mut stop, |_| false))
            .unwrap();
        for (i, name) in ["ann", "bob"].iter().enumerate() {
            assert_eq!(host.active_alarms(i).as_slice(), [Alarm::RecordingFailed]);
            let lines = &seen.borrow().lines;
            let raised = format!("{name} alarm-raised");
            assert_eq!(
                lines.iter().filter(|l| **l == raised).count(),
                1,
                "{lines:?}"
            );
            // Each agent's own decisions, for its `status`: both gave up at 10 s.
            let status = serde_json::to_value(host.status(i)).unwrap();
            let types: Vec<_> = status["last_decisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            assert!(
                types.contains(&"startup-failed".to_owned()),
                "{name}: {types:?}"
            );
            assert_eq!(status["phase"], "gave-up", "{name}: {status}");
        }
        let bob: Vec<_> = host.recent(1).map(|(_, d)| d.type_name()).collect();
        assert_eq!(bob, ["alarm-raised", "startup-failed"]);
        assert_eq!(
            host.engines().map(|(s, _)| s).collect::<Vec<_>>(),
            ["ann", "bob"]
        );
    }

    #[test]
    fn each_agent_keeps_one_live_timer_and_stale_heap_entries_are_skipped() {
        let agents: Vec<_> = ["ann", "bob"]
            .iter()
            .map(|n| {
                let mut cfg = EngineConfig::two_sites(n);
                cfg.startup_timeout = Some(std::time::Duration::from_secs(10));
                let engine = Engine::new(cfg).unwrap();
                ((*n).to_owned(), Password::new(""), engine)
            })
            .collect();
        let mut host = Host::fleet(
            agents,
            Silent,
            Clock::virtual_at_zero(),
            Arc::new(Notify::new()),
        );
        host.inject_all(Event::Start).unwrap();
        let ten = Timestamp::ZERO + std::time::Duration::from_secs(10);
        let live: Vec<_> = host.agents.iter().map(|a| a.armed).collect();
        assert_eq!(live, [Some(ten), Some(ten)]);
        // A deadline an agent no longer has is skipped, not slept to.
        host.timers.push(Reverse((
            Timestamp::ZERO + std::time::Duration::from_secs(5),
            0,
        )));
        assert_eq!(host.next_deadline(), Some(ten));
        assert_eq!(host.timers.len(), 2);

        // `drctl status` shows the pending timer with the time left.
        let status = serde_json::to_value(host.status(0)).unwrap();
        assert_eq!(status["phase"], "connecting", "{status}");
        assert_eq!(
            status["timers"][0],
            serde_json::json!({"timer": "startup-timeout", "in": "10s", "at": 10_000_000_000u64}),
            "{status}"
        );
        assert_eq!(status["listeners"]["telephony"], "unknown");
    }
}

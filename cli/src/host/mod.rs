//! The host loop: joins the policy engine and a backend, on the real clock
//! (tokio) or on a virtual clock that jumps to the next deadline.
//!
//! One pass of the loop: drain the backend's outputs into the engine, carry
//! out the engine's actions (commands to the backend, decisions to the
//! observers), fire due timers; then wait for the earliest deadline of
//! either side, a wake from the backend or a signal.

pub mod check;
pub mod observe;
pub mod record;
pub mod serve;
pub mod translate;

use crate::control::Incoming;
use crate::host::observe::Observer;
use crate::host::serve::Identity;
use drctl_plugin_api::messages::{Input, Output, Password};
use drctl_policy::{Action, Decision, Engine, Event, Timestamp};
use std::collections::VecDeque;
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

    /// When session time `t` falls on the wall clock.
    fn wall(start: tokio::time::Instant, speed: f64, t: Timestamp) -> tokio::time::Instant {
        let since = t.since_start();
        if speed == 1.0 {
            start + since
        } else {
            start + since.div_f64(speed)
        }
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
                let elapsed = if speed == 1.0 {
                    elapsed
                } else {
                    elapsed.mul_f64(speed)
                };
                Timestamp::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
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

/// A future that resolves when the run should stop (a signal).
pub type StopFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// The engine, the backend and the observers of one agent session.
pub struct Host<B: Backend> {
    /// The policy engine.
    pub engine: Engine,
    backend: B,
    session: String,
    password: Password,
    clock: Clock,
    observers: Vec<Box<dyn Observer>>,
    wake: Arc<Notify>,
    /// Control requests (a watcher's socket), handled inside the loop.
    inbox: Option<tokio::sync::mpsc::UnboundedReceiver<Incoming>>,
    identity: Option<Identity>,
    /// The last few decisions, for `status`.
    recent: VecDeque<(Timestamp, Decision)>,
}

/// How many decisions `status` shows.
const RECENT: usize = 10;

impl<B: Backend> Host<B> {
    /// A host for one agent `session`; `wake` is what the backend's wake callback notifies.
    pub fn new(
        engine: Engine,
        backend: B,
        session: String,
        password: Password,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Self {
        Host {
            engine,
            backend,
            session,
            password,
            clock,
            observers: Vec::new(),
            wake,
            inbox: None,
            identity: None,
            recent: VecDeque::with_capacity(RECENT),
        }
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

    /// Feeds an event to the engine now and carries out what follows.
    pub fn inject(&mut self, event: Event) -> Result<(), HostError> {
        let now = self.now();
        for o in &mut self.observers {
            o.input(now, &event);
        }
        self.engine.handle_event(now, event);
        self.pump(now)
    }

    /// Everything due at `now`: backend outputs, engine timers, actions.
    fn pump(&mut self, now: Timestamp) -> Result<(), HostError> {
        self.engine.handle_timeout(now);
        self.carry_out(now)?;
        while let Some(output) = self.backend.poll_output(now.as_nanos())? {
            for o in &mut self.observers {
                o.output(now, &output);
            }
            if let Some(event) = translate::output_to_event(output) {
                self.engine.handle_event(now, event);
                self.carry_out(now)?;
            }
        }
        Ok(())
    }

    /// Carries out the engine's queued actions.
    fn carry_out(&mut self, now: Timestamp) -> Result<(), HostError> {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Command(cmd) => {
                    let input = translate::command_to_input(&self.session, cmd, &self.password);
                    for o in &mut self.observers {
                        o.command(now, &input);
                    }
                    self.backend.handle(now.as_nanos(), &input)?;
                }
                Action::Decision(d) => {
                    for o in &mut self.observers {
                        o.decision(now, &d);
                    }
                    if self.recent.len() == RECENT {
                        self.recent.pop_front();
                    }
                    self.recent.push_back((now, d));
                }
            }
        }
        Ok(())
    }

    /// The earliest deadline of engine and backend.
    fn next_deadline(&self) -> Option<Timestamp> {
        let backend = self.backend.poll_timeout().map(Timestamp::from_nanos);
        [self.engine.poll_timeout(), backend]
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
        mut done: impl FnMut(&Engine) -> bool,
    ) -> Result<Stop, HostError> {
        let mut spins = 0u32;
        loop {
            let now = self.now();
            self.pump(now)?;
            for o in &mut self.observers {
                o.settled(now, &self.engine);
            }
            self.observers.retain(|o| !o.done());
            if done(&self.engine) {
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
                    return Err(HostError::Spinning(self.backend.name().to_owned()));
                }
                if matches!(self.clock, Clock::Virtual { .. }) {
                    continue;
                }
            } else {
                spins = 0;
            }
            match &mut self.clock {
                Clock::Virtual { now: vnow } => match deadline {
                    Some(d) => *vnow = d.max(*vnow),
                    None => return Ok(Stop::Idle),
                },
                Clock::Real { start, speed } => {
                    let (start, speed) = (*start, *speed);
                    let sleep = async {
                        match deadline {
                            Some(d) => {
                                tokio::time::sleep_until(Clock::wall(start, speed, d)).await;
                            }
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
        self.inject(Event::Shutdown)?;
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

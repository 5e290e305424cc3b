//! The policy engine fed arbitrary sequences of inputs and time steps.
//!
//! The input decodes (with `arbitrary`) into an engine configuration and a
//! list of [`Op`]s: backend events on the current, a stale or a future epoch;
//! answers (right, wrong or errors) to the commands the engine issued, in any
//! order, once or again; operator switch, pause, resume; time advancing by
//! milliseconds or days; bare timeouts. The engine's own commands are only
//! answered when an op says so, so the fuzzer reaches startup, watching,
//! switchovers and their failures by itself.
//!
//! Invariants (those of `policy/tests/properties.rs`), each a panic:
//! - D6: at most one switchover in flight; `completed`/`failed` only for one
//!   that started; the decisions agree with [`View::switchover`], and no
//!   switchover is in flight while watching;
//! - D5: an event of another epoch than the current one causes no action and
//!   changes neither the state nor the next deadline;
//! - D2/D3: a configuration or statistic event never starts a switchover
//!   (nor issues a command);
//! - no deadline in the past once everything due has run (and no tight loop:
//!   1000 steps at one instant);
//! - the same inputs give the same actions at the same times.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use drctl_policy::{
    Action, BackendEvent, CommandError, CommandId, CommandKind, Decision, Engine, EngineConfig,
    Event, Failback, PhaseKind, Reply, Service, ServiceState, Timestamp, DR_FORCE_LOGOUT,
    GRACEFUL_SHUTDOWN_LOGOUT,
};
use libfuzzer_sys::fuzz_target;

/// Time never gets near `Timestamp::MAX`: a host clock counts from the
/// session start, and u64 nanoseconds last 584 years.
const TIME_CAP: u64 = u64::MAX / 4;

/// The most ops one input runs (each is cheap; this bounds a slow input).
const MAX_OPS: usize = 400;

/// Deadlines fired one by one per run; past it an advance jumps to its
/// target (the engine then handles what is late at once). E2 probes every
/// `failback-probe-interval` for as long as the agent is away: 49 days of
/// 10 s probes per op made single inputs run for minutes.
const MAX_FIRINGS: usize = 20_000;

#[derive(Arbitrary, Debug, Clone)]
struct Plan {
    cfg: Cfg,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone)]
struct Cfg {
    site_timeout_s: Option<u8>,
    sip_register_timeout_s: Option<u8>,
    hold_down_s: u8,
    jitter_s: u8,
    failback_after_s: Option<u8>,
    startup_timeout_s: Option<u16>,
    embedded_endpoint: bool,
    first_site2: bool,
    /// `None`: no cache; else the cached preferred site is site2 when true.
    cached_site2: Option<bool>,
    backoff_initial_ms: u16,
    backoff_extra_max_ms: u16,
    backoff_factor_tenths: u8,
    backoff_jitter_pct: u8,
    seed: u64,
    /// E5 directives on (startup reads the Applications' evacuate option).
    directives: bool,
}

impl Cfg {
    fn engine_config(&self) -> EngineConfig {
        let secs = |s: u8| Duration::from_secs(u64::from(s));
        let mut cfg = EngineConfig::two_sites("agent");
        cfg.site_timeout = self.site_timeout_s.map(secs);
        cfg.site_sip_register_timeout = self.sip_register_timeout_s.map(secs);
        cfg.hold_down = secs(self.hold_down_s);
        cfg.switchover_jitter = secs(self.jitter_s);
        if let Some(after) = self.failback_after_s {
            cfg.failback = Failback::Auto { after: secs(after) };
        }
        cfg.startup_timeout = self
            .startup_timeout_s
            .map(|s| Duration::from_secs(u64::from(s)));
        cfg.embedded_endpoint = self.embedded_endpoint;
        if self.first_site2 {
            cfg.first_site = "site2".into();
        }
        cfg.cached_preferred = self
            .cached_site2
            .map(|two| if two { "site2" } else { "site1" }.into());
        let initial = Duration::from_millis(u64::from(self.backoff_initial_ms) + 1);
        cfg.backoff.initial = initial;
        cfg.backoff.max = initial + Duration::from_millis(u64::from(self.backoff_extra_max_ms));
        cfg.backoff.factor = 1.0 + f64::from(self.backoff_factor_tenths) / 10.0;
        cfg.backoff.jitter = f64::from(self.backoff_jitter_pct % 100) / 100.0;
        cfg.seed = self.seed;
        cfg.directives = self.directives.then(Default::default);
        cfg
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    /// Time passes (milliseconds), timers firing on the way.
    Advance(u16),
    /// A lot of time passes (seconds, up to 49 days per op).
    AdvanceLong(u32),
    /// `handle_timeout(now)` without time passing.
    Tick,
    /// Answers the `which`-th unanswered command.
    Answer {
        which: u8,
        how: How,
    },
    /// Answers an already-answered (or never-issued) command id again.
    AnswerAgain {
        id: u8,
        how: How,
    },
    /// A backend event.
    Backend {
        epoch: EpochSel,
        event: Ev,
    },
    /// W3: an operator switch to the other site, site1, site2 or an unknown site.
    OperatorSwitch(u8),
    Pause,
    Resume,
    /// Start again (ignored once started).
    Start,
    Shutdown,
}

/// How a command is answered.
#[derive(Arbitrary, Debug, Clone)]
enum How {
    /// The answer the command asks for, with these details.
    Right(Details),
    /// The backend's error.
    Error,
    /// Some other command's answer.
    Wrong(Raw),
}

/// The details a right answer carries.
#[derive(Arbitrary, Debug, Clone)]
struct Details {
    /// `read_person_sites`: which application is preferred (site1, site2, unknown).
    preferred_app: u8,
    /// `read_application`: which CS Proxy it names (site1's, site2's, unknown).
    cs_proxy: u8,
    site_timeout_s: Option<u16>,
    sip_register_timeout_s: Option<u16>,
    /// `read_application` answers for another application than asked.
    other_app: bool,
    /// `read_application`: the Application says `dr/evacuate = true` (E5).
    evacuate: bool,
}

#[derive(Arbitrary, Debug, Clone)]
enum Raw {
    Connected(EpochSel),
    PersonSites,
    Application { site_timeout_s: Option<u64> },
    Done,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EpochSel {
    /// The engine's current epoch (the last one handed out when it has none).
    Current,
    /// The one before.
    Previous,
    /// One not handed out yet.
    Future(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone)]
enum Ev {
    Service { service: u8, on: bool },
    Logout(Why),
    BackInService,
    OutOfService,
    Disconnected,
}

#[derive(Arbitrary, Debug, Clone)]
enum Why {
    None,
    Empty,
    DrForce,
    Graceful,
    Supervisor,
    Other(String),
}

fn service(n: u8) -> Service {
    match n % 3 {
        0 => Service::Telephony,
        1 => Service::Configuration,
        _ => Service::Statistic,
    }
}

/// Drives one engine through a plan, checking the invariants as it goes.
struct Run {
    engine: Engine,
    now: Timestamp,
    log: Vec<(Timestamp, Action)>,
    /// Commands issued and not answered yet, oldest first.
    unanswered: Vec<(CommandId, CommandKind)>,
    /// Every command issued, by id.
    issued: Vec<(CommandId, CommandKind)>,
    /// The last epoch handed out by a right `connect` answer.
    last_epoch: u64,
    in_flight: bool,
    /// Deadlines still to fire one by one (see [`MAX_FIRINGS`]).
    firings_left: usize,
}

impl Run {
    fn new(cfg: EngineConfig) -> Option<Run> {
        Some(Run {
            engine: Engine::new(cfg).ok()?,
            now: Timestamp::ZERO,
            log: Vec::new(),
            unanswered: Vec::new(),
            issued: Vec::new(),
            last_epoch: 0,
            in_flight: false,
            firings_left: MAX_FIRINGS,
        })
    }

    /// Takes the engine's actions, checking the switchover sequence (D6).
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(action) = self.engine.poll_action() {
            n += 1;
            match &action {
                Action::Command(cmd) => {
                    self.unanswered.push((cmd.id, cmd.kind.clone()));
                    self.issued.push((cmd.id, cmd.kind.clone()));
                }
                Action::Decision(Decision::SwitchoverStarted { .. }) => {
                    assert!(
                        !self.in_flight,
                        "second switchover started at {} while one is in flight",
                        self.now
                    );
                    self.in_flight = true;
                }
                Action::Decision(Decision::SwitchoverCompleted { .. }) => {
                    assert!(self.in_flight, "completed at {} without a start", self.now);
                    self.in_flight = false;
                }
                Action::Decision(Decision::SwitchoverFailed { .. }) => {
                    assert!(self.in_flight, "failed at {} without a start", self.now);
                }
                Action::Decision(_) => {}
                // No gates are configured here: the engine never asks.
                Action::CheckGates { .. } => {}
            }
            self.log.push((self.now, action));
        }
        n
    }

    fn feed(&mut self, event: Event) {
        self.engine.handle_event(self.now, event);
        self.drain();
    }

    /// Runs everything due at `now`; no deadline may stay in the past.
    fn settle(&mut self) {
        let mut steps = 0;
        while let Some(t) = self.engine.poll_timeout() {
            if t > self.now {
                break;
            }
            steps += 1;
            assert!(steps < 1000, "tight loop at {} (deadline {t})", self.now);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Advances to `target`, firing each deadline at its own time (past
    /// [`MAX_FIRINGS`], at `target`).
    fn advance_to(&mut self, target: Timestamp) {
        loop {
            self.settle();
            match self.engine.poll_timeout() {
                Some(t) if t <= target && self.firings_left == 0 => {
                    assert!(t > self.now, "deadline {t} not after now {}", self.now);
                    self.now = target;
                    self.engine.handle_timeout(target);
                    self.drain();
                }
                Some(t) if t <= target => {
                    self.firings_left -= 1;
                    assert!(t > self.now, "deadline {t} not after now {}", self.now);
                    self.now = t;
                    self.engine.handle_timeout(t);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    fn epoch(&self, sel: EpochSel) -> u64 {
        let current = self.engine.view().epoch.unwrap_or(self.last_epoch);
        match sel {
            EpochSel::Current => current,
            EpochSel::Previous => current.saturating_sub(1),
            EpochSel::Future(n) => self.last_epoch + 1 + u64::from(n),
            EpochSel::Any(e) => e,
        }
    }

    fn result(&mut self, kind: &CommandKind, how: &How) -> Result<Reply, CommandError> {
        let secs = |s: Option<u16>| s.map(|s| Duration::from_secs(u64::from(s)));
        let pick = |n: u8, names: [&str; 3]| names[usize::from(n % 3)].to_owned();
        match how {
            How::Error => Err("fuzzed error".into()),
            How::Wrong(raw) => Ok(match raw {
                Raw::Connected(sel) => Reply::Connected {
                    epoch: self.epoch(*sel),
                },
                Raw::PersonSites => Reply::PersonSites {
                    preferred_app: "AIL_site2".into(),
                    secondary_app: "AIL_site1".into(),
                },
                Raw::Application { site_timeout_s } => Reply::Application {
                    app_name: "AIL_site2".into(),
                    cs_proxy: "csproxy2:7000".into(),
                    site_timeout: site_timeout_s.map(Duration::from_secs),
                    site_sip_register_timeout: None,
                    options: Default::default(),
                },
                Raw::Done => Reply::Done,
            }),
            How::Right(d) => Ok(match kind {
                CommandKind::Connect { .. } => {
                    self.last_epoch += 1;
                    Reply::Connected {
                        epoch: self.last_epoch,
                    }
                }
                CommandKind::ReadPersonSites { .. } => Reply::PersonSites {
                    preferred_app: pick(d.preferred_app, ["AIL_site1", "AIL_site2", "AIL_gone"]),
                    secondary_app: pick(
                        d.preferred_app.wrapping_add(1),
                        ["AIL_site1", "AIL_site2", "x"],
                    ),
                },
                CommandKind::ReadApplication { app_name } => Reply::Application {
                    app_name: if d.other_app {
                        "AIL_other".into()
                    } else {
                        app_name.clone()
                    },
                    cs_proxy: pick(
                        d.cs_proxy,
                        ["csproxy1:7000", "csproxy2:7000", "elsewhere:1"],
                    ),
                    site_timeout: secs(d.site_timeout_s),
                    site_sip_register_timeout: secs(d.sip_register_timeout_s),
                    options: if d.evacuate {
                        [("dr/evacuate".to_owned(), "true".to_owned())].into()
                    } else {
                        Default::default()
                    },
                },
                _ => Reply::Done,
            }),
        }
    }

    fn backend_event(&self, ev: &Ev) -> BackendEvent {
        let dn = || "7001".to_owned();
        match ev {
            Ev::Service { service: s, on } => BackendEvent::ServiceStatus {
                service: service(*s),
                status: if *on {
                    ServiceState::On
                } else {
                    ServiceState::Off
                },
            },
            Ev::Logout(why) => BackendEvent::AgentLogout {
                dn: dn(),
                reason: match why {
                    Why::None => None,
                    Why::Empty => Some(String::new()),
                    Why::DrForce => Some(DR_FORCE_LOGOUT.to_owned()),
                    Why::Graceful => Some(GRACEFUL_SHUTDOWN_LOGOUT.to_owned()),
                    Why::Supervisor => Some("supervisor_forced_logout".to_owned()),
                    Why::Other(s) => Some(s.clone()),
                },
                extensions: Default::default(),
            },
            Ev::BackInService => BackendEvent::DnBackInService { dn: dn() },
            Ev::OutOfService => BackendEvent::DnOutOfService { dn: dn() },
            Ev::Disconnected => BackendEvent::Disconnected,
        }
    }

    fn op(&mut self, op: &Op) {
        // Fire what is due first, so the checks below see only the op's effect.
        self.settle();
        match op {
            Op::Advance(ms) => {
                let t = (self.now.as_nanos() + u64::from(*ms) * 1_000_000).min(TIME_CAP);
                self.advance_to(Timestamp::from_nanos(t));
            }
            Op::AdvanceLong(s) => {
                let t = self
                    .now
                    .as_nanos()
                    .saturating_add(u64::from(*s).saturating_mul(1_000_000_000))
                    .min(TIME_CAP);
                self.advance_to(Timestamp::from_nanos(t));
            }
            Op::Tick => {
                self.engine.handle_timeout(self.now);
                self.drain();
            }
            Op::Answer { which, how } => {
                if self.unanswered.is_empty() {
                    return;
                }
                let i = usize::from(*which) % self.unanswered.len();
                let (id, kind) = self.unanswered.remove(i);
                let result = self.result(&kind, how);
                self.feed(Event::CommandResult { id, result });
            }
            Op::AnswerAgain { id, how } => {
                let id = CommandId(u64::from(*id));
                let kind = self
                    .issued
                    .iter()
                    .find(|(i, _)| *i == id)
                    .map_or(CommandKind::KillFactory, |(_, k)| k.clone());
                let result = self.result(&kind, how);
                self.feed(Event::CommandResult { id, result });
            }
            Op::Backend { epoch, event } => {
                let epoch = self.epoch(*epoch);
                let event = self.backend_event(event);
                self.engine.handle_timeout(self.now);
                self.drain();
                let view = self.engine.view();
                let deadline = self.engine.poll_timeout();
                self.engine.handle_event(
                    self.now,
                    Event::Backend {
                        epoch,
                        event: event.clone(),
                    },
                );
                let before = self.log.len();
                let actions = self.drain();
                if view.epoch != Some(epoch) {
                    assert_eq!(
                        actions, 0,
                        "stale epoch {epoch} caused an action: {event:?}"
                    );
                    assert_eq!(self.engine.poll_timeout(), deadline, "stale epoch {epoch}");
                    assert_eq!(self.engine.view(), view, "stale epoch {epoch}");
                }
                if let BackendEvent::ServiceStatus {
                    service: Service::Configuration | Service::Statistic,
                    status,
                } = &event
                {
                    for (_, action) in &self.log[before..] {
                        assert!(
                            matches!(
                                action,
                                Action::Decision(
                                    Decision::AlarmRaised { .. } | Decision::AlarmCleared { .. }
                                )
                            ),
                            "{event:?} {status:?} did more than alarm: {action:?}"
                        );
                    }
                }
            }
            Op::OperatorSwitch(n) => {
                let to = match n % 4 {
                    0 => None,
                    1 => Some("site1".into()),
                    2 => Some("site2".into()),
                    _ => Some("site9".into()),
                };
                self.feed(Event::OperatorSwitch { to });
            }
            Op::Pause => self.feed(Event::Pause),
            Op::Resume => self.feed(Event::Resume),
            Op::Start => self.feed(Event::Start),
            Op::Shutdown => self.feed(Event::Shutdown),
        }
        // Never a deadline in the past once everything due has run.
        self.settle();
        if let Some(t) = self.engine.poll_timeout() {
            assert!(t > self.now, "deadline {t} not after now {}", self.now);
        }
        let view = self.engine.view();
        assert!(
            view.switchover.is_none() || view.phase != PhaseKind::Watching,
            "watching with a switchover in flight: {view:?}"
        );
        assert_eq!(
            self.in_flight,
            view.switchover.is_some(),
            "decisions and state disagree on the switchover in flight: {view:?}"
        );
    }
}

fn run(plan: &Plan) -> Option<Vec<(Timestamp, Action)>> {
    let mut run = Run::new(plan.cfg.engine_config())?;
    run.feed(Event::Start);
    for op in plan.ops.iter().take(MAX_OPS) {
        run.op(op);
    }
    if std::env::var_os("DRCTL_FUZZ_TRACE").is_some() {
        // `DRCTL_FUZZ_TRACE=1 cargo fuzz run engine FILE`: what an input did.
        eprintln!("{:#?}", plan.cfg);
        for (t, action) in &run.log {
            eprintln!("{t} {action:?}");
        }
    }
    Some(run.log)
}

fuzz_target!(|plan: Plan| {
    let Some(first) = run(&plan) else {
        return;
    };
    let second = run(&plan).expect("the same config is valid twice");
    assert!(first == second, "same inputs, different decisions");
});

//! The engine object: its state (grouped by what it is about), the public
//! sans-IO API, the walk over the timer table and the status view.
//!
//! The rules themselves live next door, each arming, cancelling and firing
//! its own timers: `startup` (S1–S5, W2, W4), `detection` (D1–D5),
//! `switchover` (D6, W1, W3, E1, E3, E4), `failback` (E2); the crate docs
//! have the full table.

use crate::backoff::Backoff;
use crate::config::{ConfigError, EngineConfig, SiteName};
use crate::input::{CommandId, Epoch, Event};
use crate::output::{Action, Command, CommandKind};
use crate::time::Timestamp;
use crate::timers::{PendingTimer, TimerKind, TimerTable};
use drctl_protocol::{Alarm, Decision, Reason, ServiceState, SuppressWhy};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::VecDeque;

/// Index of a site in [`EngineConfig::sites`].
pub(crate) type SiteIdx = usize;

/// The other of the two sites.
pub(crate) fn other(site: SiteIdx) -> SiteIdx {
    1 - site
}

/// Where the engine is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseKind {
    /// Not started.
    Idle,
    /// Connecting to a CS Proxy (startup, reconnect or switchover).
    Connecting,
    /// Waiting before the next connect round (S1/W4 backoff).
    Backoff,
    /// Reading the Person and AIL Application objects (S2, S3).
    ReadingConfiguration,
    /// Killing the AIL factory (W1).
    KillingFactory,
    /// Subscribing the listeners (W2).
    Subscribing,
    /// Connected and watching the listeners.
    Watching,
    /// Startup gave up (S1 `startup.timeout`).
    GaveUp,
    /// Shut down.
    Stopped,
}

impl PhaseKind {
    /// Every phase, in life-cycle order (the metrics show each from the start).
    pub const ALL: [PhaseKind; 9] = [
        PhaseKind::Idle,
        PhaseKind::Connecting,
        PhaseKind::Backoff,
        PhaseKind::ReadingConfiguration,
        PhaseKind::KillingFactory,
        PhaseKind::Subscribing,
        PhaseKind::Watching,
        PhaseKind::GaveUp,
        PhaseKind::Stopped,
    ];

    /// The stable name (as serialized), for status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseKind::Idle => "idle",
            PhaseKind::Connecting => "connecting",
            PhaseKind::Backoff => "backoff",
            PhaseKind::ReadingConfiguration => "reading-configuration",
            PhaseKind::KillingFactory => "killing-factory",
            PhaseKind::Subscribing => "subscribing",
            PhaseKind::Watching => "watching",
            PhaseKind::GaveUp => "gave-up",
            PhaseKind::Stopped => "stopped",
        }
    }
}

/// A pending command and what the engine waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Connecting {
        cmd: CommandId,
        site: SiteIdx,
    },
    /// Waiting for the [`TimerKind::Backoff`] timer.
    Backoff,
    ReadingPerson {
        cmd: CommandId,
    },
    ReadingApplication {
        cmd: CommandId,
        preferred_app: String,
    },
    KillingFactory {
        cmd: CommandId,
    },
    Subscribing {
        cmd: CommandId,
    },
    Watching,
    GaveUp,
    Stopped,
}

impl Phase {
    fn kind(&self) -> PhaseKind {
        match self {
            Phase::Idle => PhaseKind::Idle,
            Phase::Connecting { .. } => PhaseKind::Connecting,
            Phase::Backoff => PhaseKind::Backoff,
            Phase::ReadingPerson { .. } | Phase::ReadingApplication { .. } => {
                PhaseKind::ReadingConfiguration
            }
            Phase::KillingFactory { .. } => PhaseKind::KillingFactory,
            Phase::Subscribing { .. } => PhaseKind::Subscribing,
            Phase::Watching => PhaseKind::Watching,
            Phase::GaveUp => PhaseKind::GaveUp,
            Phase::Stopped => PhaseKind::Stopped,
        }
    }

    /// Timers run from startup until the engine stops or gives up.
    fn runs_timers(&self) -> bool {
        !matches!(self, Phase::Stopped | Phase::GaveUp | Phase::Idle)
    }

    pub(crate) fn pending_command(&self) -> Option<CommandId> {
        match *self {
            Phase::Connecting { cmd, .. }
            | Phase::ReadingPerson { cmd }
            | Phase::ReadingApplication { cmd, .. }
            | Phase::KillingFactory { cmd }
            | Phase::Subscribing { cmd } => Some(cmd),
            _ => None,
        }
    }
}

/// A listener's last known status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerStatus {
    /// Nothing heard on this connection yet.
    #[default]
    Unknown,
    /// Service on / DN in service.
    On,
    /// Service off / DN out of service.
    Off,
}

impl ListenerStatus {
    /// The stable name (as serialized), for status.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerStatus::Unknown => "unknown",
            ListenerStatus::On => "on",
            ListenerStatus::Off => "off",
        }
    }
}

impl From<ServiceState> for ListenerStatus {
    fn from(s: ServiceState) -> Self {
        match s {
            ServiceState::On => ListenerStatus::On,
            ServiceState::Off => ListenerStatus::Off,
        }
    }
}

/// The switchover in flight (D6: at most one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Switchover {
    pub reason: Reason,
    pub from: SiteIdx,
    pub to: SiteIdx,
}

/// A round of connect attempts over both sites (S1, W4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Round {
    pub order: [SiteIdx; 2],
    pub next: usize,
}

/// The DR options in force (S3, with the config's overrides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DrOptions {
    pub known: bool,
    pub site_timeout: Option<std::time::Duration>,
    pub sip_register_timeout: Option<std::time::Duration>,
}

/// Per-connection listener state; reset whenever the epoch changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Listeners {
    pub telephony: ListenerStatus,
    pub configuration: ListenerStatus,
    pub statistic: ListenerStatus,
    pub dn: ListenerStatus,
    /// D1: when telephony went OFF (not restarted by repeated OFF).
    pub telephony_off_since: Option<Timestamp>,
    /// D4: when `dr-force_logout` arrived, while waiting for re-registration.
    pub sip_wait_since: Option<Timestamp>,
}

/// Switchover triggers whose condition holds (their timer fired) but which
/// have not started a switchover yet; re-evaluated whenever that may change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    pub graceful: bool,
    pub telephony: bool,
    pub sip: bool,
    pub failback: bool,
}

/// The connection the agent is on: reset (but for `site`) when it is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Connection {
    /// The site connected to (or last connected to while reconnecting).
    pub site: Option<SiteIdx>,
    /// The current connection; `None` while there is none (D5 drops everything).
    pub epoch: Option<Epoch>,
    /// What its listeners last said.
    pub listeners: Listeners,
}

/// What S2/S3 read from the Person and AIL Application objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Learned {
    /// The agent's preferred site, once known.
    pub preferred: Option<SiteIdx>,
    /// The DR options in force.
    pub dr: DrOptions,
}

/// The switchover triggers and what holds them back (D6, E3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Triggers {
    /// Triggers whose condition holds, waiting to start a switchover.
    pub due: Due,
    /// The last suppression reported, so a held trigger is reported once.
    pub suppressed: Option<(Reason, SuppressWhy)>,
    /// E3: automatic switchovers paused.
    pub paused: bool,
}

/// Switchover gates: the switchover waiting for the host's verdict, and the
/// one the verdict let through (started next, without asking again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gates {
    /// Asked, not answered yet: `(reason, from, to)`.
    pub pending: Option<(Reason, SiteIdx, SiteIdx)>,
    /// Answered "pass": `(reason, to)` starts without asking again.
    pub approved: Option<(Reason, SiteIdx)>,
}

/// Connect rounds and the backoff between them (S1, W4).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Retry {
    /// The round in progress.
    pub round: Round,
    /// The delay before the next round.
    pub backoff: Backoff,
}

/// What the engine has to say, in order, and the next command id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Outbox {
    actions: VecDeque<Action>,
    next_cmd: u64,
}

/// The alarms that are up, one bit an [`Alarm`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AlarmSet(u16);

impl AlarmSet {
    /// Adds `alarm`; false if it was up already.
    fn insert(&mut self, alarm: Alarm) -> bool {
        let was_up = self.contains(alarm);
        self.0 |= alarm_bit(alarm);
        !was_up
    }

    /// Removes `alarm`; false if it was not up.
    fn remove(&mut self, alarm: Alarm) -> bool {
        let was_up = self.contains(alarm);
        self.0 &= !alarm_bit(alarm);
        was_up
    }

    fn contains(self, alarm: Alarm) -> bool {
        self.0 & alarm_bit(alarm) != 0
    }
}

/// `alarm`'s bit in an [`AlarmSet`]: its place in [`Alarm::ALL`].
fn alarm_bit(alarm: Alarm) -> u16 {
    1 << (alarm as u16)
}

/// The DR policy engine for one agent. See the crate docs for the calling loop.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) rng: ChaCha8Rng,
    /// Latest `now` seen; time never goes backwards inside the engine.
    pub(crate) now: Timestamp,
    pub(crate) phase: Phase,
    pub(crate) conn: Connection,
    pub(crate) learned: Learned,
    pub(crate) triggers: Triggers,
    /// The switchover in flight (D6: at most one).
    pub(crate) switchover: Option<Switchover>,
    /// The switchover waiting on the host's gates, if any.
    pub(crate) gates: Gates,
    pub(crate) retry: Retry,
    /// Every timer; each rule's module arms, cancels and fires its own.
    pub(crate) timers: TimerTable,
    alarms: AlarmSet,
    out: Outbox,
}

impl Engine {
    /// An engine that has not started; feed it [`Event::Start`].
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let backoff = Backoff::new(cfg.backoff.clone());
        Ok(Engine {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            now: Timestamp::ZERO,
            phase: Phase::Idle,
            conn: Connection::default(),
            learned: Learned::default(),
            triggers: Triggers::default(),
            switchover: None,
            gates: Gates::default(),
            retry: Retry {
                round: Round {
                    order: [0, 1],
                    next: 0,
                },
                backoff,
            },
            timers: TimerTable::default(),
            alarms: AlarmSet::default(),
            out: Outbox::default(),
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Feeds one input. Timers due at or before `now` fire first, so an event
    /// that arrives exactly at a deadline comes after that deadline's action.
    pub fn handle_event(&mut self, now: Timestamp, event: Event) {
        self.handle_timeout(now);
        match event {
            Event::Start => self.s1_start(),
            Event::CommandResult { id, result } => {
                self.on_result(id, result.map_err(|e| e.message))
            }
            Event::Backend { epoch, event } => self.d5_on_backend(epoch, event),
            Event::OperatorSwitch { to } => self.w3_on_operator_switch(to),
            Event::Pause => self.e3_set_paused(true),
            Event::Resume => self.e3_set_paused(false),
            Event::Shutdown => self.shutdown(),
            Event::GateVerdict(verdict) => self.gate_on_verdict(verdict),
        }
    }

    /// Fires every timer due at or before `now`, in the order of
    /// `TimerKind::VALUES` (ns ties included), then re-evaluates the
    /// switchover triggers once.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        let due = self.timers.next_timeout().is_some_and(|t| t <= self.now);
        if !due || !self.phase.runs_timers() {
            return;
        }
        let mut reevaluate = false;
        for kind in TimerKind::VALUES {
            if !self.timers.is_expired(kind, self.now) {
                continue;
            }
            match kind {
                TimerKind::StartupTimeout => return self.s1_startup_timeout_fired(),
                TimerKind::Backoff => self.s1_backoff_fired(),
                TimerKind::SiteTimeout => {
                    self.d1_site_timeout_fired();
                    reevaluate = true;
                }
                TimerKind::SipRegisterTimeout => {
                    self.d4_sip_register_timeout_fired();
                    reevaluate = true;
                }
                TimerKind::Failback => {
                    self.e2_failback_fired();
                    reevaluate = true;
                }
                // E4: the evaluation below starts the switchover that waited.
                TimerKind::SwitchoverJitter => reevaluate = true,
                TimerKind::HoldDown => {
                    self.e1_hold_down_ended();
                    reevaluate = true;
                }
            }
        }
        if reevaluate {
            self.d6_evaluate();
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.actions.pop_front()
    }

    /// When [`Engine::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if !self.phase.runs_timers() {
            return None;
        }
        let mut timers = self.timers;
        // E1: the end of hold-down only matters while a trigger waits for it.
        if self.triggers.suppressed.is_none() {
            timers.stop(TimerKind::HoldDown);
        }
        timers.next_timeout()
    }

    /// Queues a backend command and returns its id.
    pub(crate) fn command(&mut self, kind: CommandKind) -> CommandId {
        self.out.next_cmd += 1;
        let id = CommandId(self.out.next_cmd);
        self.out
            .actions
            .push_back(Action::Command(Command { id, kind }));
        id
    }

    /// Asks the host to run the switchover gates of `reason`.
    pub(crate) fn ask_gates(&mut self, reason: Reason, from: SiteIdx, to: SiteIdx) {
        let (from, to) = (self.site_name(from), self.site_name(to));
        self.out
            .actions
            .push_back(Action::CheckGates { reason, from, to });
    }

    /// Queues a decision record.
    pub(crate) fn decide(&mut self, d: Decision) {
        self.out.actions.push_back(Action::Decision(d));
    }

    pub(crate) fn site_name(&self, idx: SiteIdx) -> SiteName {
        self.cfg.sites[idx].name.clone()
    }

    /// Raises `alarm` unless it is already up.
    pub(crate) fn raise(&mut self, alarm: Alarm) {
        if self.alarms.insert(alarm) {
            self.decide(Decision::AlarmRaised { alarm });
        }
    }

    /// Clears `alarm` if it is up.
    pub(crate) fn clear(&mut self, alarm: Alarm) {
        if self.alarms.remove(alarm) {
            self.decide(Decision::AlarmCleared { alarm });
        }
    }

    /// Whether a switchover waits on the host's gate verdict
    /// ([`Action::CheckGates`] asked, not answered yet).
    pub fn waiting_on_gates(&self) -> bool {
        self.gates.pending.is_some()
    }

    /// Whether `alarm` is up.
    pub fn alarm_active(&self, alarm: Alarm) -> bool {
        self.alarms.contains(alarm)
    }

    fn shutdown(&mut self) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        self.command(CommandKind::Shutdown);
        self.phase = Phase::Stopped;
        self.conn.epoch = None;
        self.timers.stop(TimerKind::StartupTimeout);
        self.timers.stop(TimerKind::Backoff);
        self.e4_cancel_jitter();
        self.e2_cancel_failback();
    }

    /// A read-only snapshot of the engine's state, for status displays.
    pub fn view(&self) -> View {
        View {
            now: self.now,
            phase: self.phase.kind(),
            site: self.conn.site.map(|s| self.site_name(s)),
            preferred_site: self.learned.preferred.map(|s| self.site_name(s)),
            epoch: self.conn.epoch,
            telephony: self.conn.listeners.telephony,
            configuration: self.conn.listeners.configuration,
            statistic: self.conn.listeners.statistic,
            dn: self.conn.listeners.dn,
            timers: self.timers.pending(),
            alarms: Alarm::ALL
                .into_iter()
                .filter(|a| self.alarm_active(*a))
                .collect(),
            paused: self.triggers.paused,
            switchover: self.switchover.map(|s| SwitchoverView {
                reason: s.reason,
                from: self.site_name(s.from),
                to: self.site_name(s.to),
            }),
            site_timeout: self.learned.dr.site_timeout,
            site_sip_register_timeout: self.learned.dr.sip_register_timeout,
        }
    }
}

/// The switchover in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SwitchoverView {
    /// Why.
    pub reason: Reason,
    /// The site left.
    pub from: SiteName,
    /// The target.
    pub to: SiteName,
}

/// A read-only snapshot of an [`Engine`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct View {
    /// The latest time the engine has seen.
    pub now: Timestamp,
    /// Life-cycle phase.
    pub phase: PhaseKind,
    /// The site connected to (or being reconnected).
    pub site: Option<SiteName>,
    /// The agent's preferred site, once read (S2/S3).
    pub preferred_site: Option<SiteName>,
    /// The current connection's epoch.
    pub epoch: Option<Epoch>,
    /// Telephony service listener.
    pub telephony: ListenerStatus,
    /// Configuration service listener.
    pub configuration: ListenerStatus,
    /// Statistic service listener.
    pub statistic: ListenerStatus,
    /// The agent's DN.
    pub dn: ListenerStatus,
    /// Timers that will fire, unordered.
    pub timers: Vec<PendingTimer>,
    /// Alarms that are up.
    pub alarms: Vec<Alarm>,
    /// E3: automatic switchovers paused.
    pub paused: bool,
    /// The switchover in flight.
    pub switchover: Option<SwitchoverView>,
    /// `site-timeout` in force, once known.
    #[serde(with = "humantime_serde")]
    pub site_timeout: Option<std::time::Duration>,
    /// `site-sip-register-timeout` in force, once known.
    #[serde(with = "humantime_serde")]
    pub site_sip_register_timeout: Option<std::time::Duration>,
}

#[cfg(test)]
mod names {
    use super::*;

    fn name<T: Serialize>(v: T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// `as_str` (status, metrics) and serde (views) name things alike.
    #[test]
    fn as_str_matches_the_serialized_names() {
        use PhaseKind::*;
        for p in [
            Idle,
            Connecting,
            Backoff,
            ReadingConfiguration,
            KillingFactory,
            Subscribing,
            Watching,
            GaveUp,
            Stopped,
        ] {
            assert_eq!(p.as_str(), name(p));
        }
        for l in [
            ListenerStatus::Unknown,
            ListenerStatus::On,
            ListenerStatus::Off,
        ] {
            assert_eq!(l.as_str(), name(l));
        }
        for t in [
            TimerKind::StartupTimeout,
            TimerKind::Backoff,
            TimerKind::SiteTimeout,
            TimerKind::SipRegisterTimeout,
            TimerKind::SwitchoverJitter,
            TimerKind::HoldDown,
            TimerKind::Failback,
        ] {
            assert_eq!(t.as_str(), name(t));
        }
    }
}

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
use std::sync::Arc;

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
    /// Logging the agent in on its DN (W5).
    LoggingIn,
    /// Connected and watching the listeners.
    Watching,
    /// Startup gave up (S1 `startup.timeout`).
    GaveUp,
    /// Shut down.
    Stopped,
}

impl PhaseKind {
    /// Every phase, in life-cycle order (the metrics show each from the start).
    pub const ALL: [PhaseKind; 10] = [
        PhaseKind::Idle,
        PhaseKind::Connecting,
        PhaseKind::Backoff,
        PhaseKind::ReadingConfiguration,
        PhaseKind::KillingFactory,
        PhaseKind::Subscribing,
        PhaseKind::LoggingIn,
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
            PhaseKind::LoggingIn => "logging-in",
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
    /// S3: the preferred Application; the secondary one is read next.
    /// The two names are boxed: they live for one command's round trip,
    /// and inline they would double every engine's phase.
    ReadingApplication {
        cmd: CommandId,
        apps: Box<PersonApps>,
    },
    /// S3: the secondary Application, which names how `site` is reached.
    ReadingSecondary {
        cmd: CommandId,
        site: SiteIdx,
    },
    KillingFactory {
        cmd: CommandId,
    },
    Subscribing {
        cmd: CommandId,
    },
    LoggingIn {
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
            Phase::ReadingPerson { .. }
            | Phase::ReadingApplication { .. }
            | Phase::ReadingSecondary { .. } => PhaseKind::ReadingConfiguration,
            Phase::KillingFactory { .. } => PhaseKind::KillingFactory,
            Phase::Subscribing { .. } => PhaseKind::Subscribing,
            Phase::LoggingIn { .. } => PhaseKind::LoggingIn,
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
            | Phase::ReadingSecondary { cmd, .. }
            | Phase::KillingFactory { cmd }
            | Phase::Subscribing { cmd }
            | Phase::LoggingIn { cmd } => Some(cmd),
            _ => None,
        }
    }
}

/// The Person object's two Applications (S2), while S3 reads the first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonApps {
    pub preferred: String,
    pub secondary: String,
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

/// Where a DR option in force came from (S3), for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrOptionSource {
    /// The preferred AIL Application's DR options (Configuration Server).
    Application,
    /// A local `policy.*` key, which overrides the Application's value.
    LocalOverride,
    /// Set nowhere (or the Application could not be read): off.
    #[default]
    Default,
}

impl DrOptionSource {
    /// The stable name (as serialized), for status.
    pub fn as_str(self) -> &'static str {
        match self {
            DrOptionSource::Application => "application",
            DrOptionSource::LocalOverride => "local-override",
            DrOptionSource::Default => "default",
        }
    }
}

/// The DR options in force (S3, with the config's overrides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DrOptions {
    pub known: bool,
    pub site_timeout: Option<std::time::Duration>,
    pub sip_register_timeout: Option<std::time::Duration>,
    pub site_timeout_source: DrOptionSource,
    pub sip_register_timeout_source: DrOptionSource,
}

/// Where a site's CS Proxy address and Application name came from (S3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteSource {
    /// The site's AIL Application, read from Configuration Server.
    Application,
    /// The local `[[sites]]` entry: before S3, or when the Application
    /// could not be read.
    #[default]
    Local,
}

/// How a site is reached: its CS Proxy and the Application to log in as (S3).
///
/// Mostly the local `[[sites]]` entry's own names (before S3, or an
/// Application naming what the entry names): those are read from the
/// config a fleet shares, and only an Application naming others keeps
/// its own copy here (a fleet of 100 000 would hold 400 000 strings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Target {
    /// `None`: the local entry's CS Proxy and Application name.
    pub names: Option<Box<TargetNames>>,
    pub source: SiteSource,
}

/// A CS Proxy and Application name that differ from the local entry's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetNames {
    pub cs_proxy: String,
    pub app_name: String,
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
    /// E2: a failback's telephony did not come ON within `site-timeout`.
    pub failback_failed: bool,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Learned {
    /// The agent's preferred site, once known.
    pub preferred: Option<SiteIdx>,
    /// The DR options in force.
    pub dr: DrOptions,
    /// How each site is reached: the local `[[sites]]` until S3 reads the
    /// Applications (and where one cannot be read).
    pub targets: [Target; 2],
}

/// E2's evidence for a failback, and its penalty for a failed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FailbackState {
    /// The probe in flight, if any, and when it was sent.
    pub probe: Option<(CommandId, Timestamp)>,
    /// When the current run of healthy answers began.
    pub healthy_since: Option<Timestamp>,
    /// `failback-after` is multiplied by this (1, 2, 4, 8): doubled by each
    /// failback that lands on a dead site, back to 1 after one that holds.
    pub multiplier: u32,
}

impl Default for FailbackState {
    fn default() -> Self {
        FailbackState {
            probe: None,
            healthy_since: None,
            multiplier: 1,
        }
    }
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
    /// Shared by a fleet of identical agents ([`Engine::for_agent`]).
    pub(crate) cfg: Arc<EngineConfig>,
    /// The agent's own login name when it is not the config's (a fleet
    /// sharing one config).
    username: Option<Box<str>>,
    /// The RNG's seed: the RNG is made on its first draw (most engines
    /// never draw: no failed connect, no E4 jitter), which gives the same
    /// draws as one made at the start and spares ~300 bytes an engine.
    seed: u64,
    rng: Option<Box<ChaCha8Rng>>,
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
    /// E2: probes of the preferred site and the failback penalty.
    pub(crate) failback: FailbackState,
    /// E5: what Configuration Server directs.
    pub(crate) directives: crate::directive::Directives,
    /// Every timer; each rule's module arms, cancels and fires its own.
    pub(crate) timers: TimerTable,
    alarms: AlarmSet,
    out: Outbox,
}

impl Engine {
    /// An engine that has not started; feed it [`Event::Start`].
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        let seed = cfg.seed;
        Engine::build(Arc::new(cfg), None, seed)
    }

    /// An engine for one agent of a fleet that shares `cfg`: `username`
    /// and `seed` are this agent's, in place of the config's (which
    /// [`Engine::config`] still shows). A fleet of 100 000 identical agents
    /// then holds one config, not 100 000 copies.
    pub fn for_agent(
        cfg: Arc<EngineConfig>,
        username: &str,
        seed: u64,
    ) -> Result<Engine, ConfigError> {
        let own = (username != cfg.username).then(|| username.into());
        Engine::build(cfg, own, seed)
    }

    fn build(
        cfg: Arc<EngineConfig>,
        username: Option<Box<str>>,
        seed: u64,
    ) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        Ok(Engine {
            cfg,
            username,
            seed,
            rng: None,
            now: Timestamp::ZERO,
            phase: Phase::Idle,
            conn: Connection::default(),
            learned: Learned {
                preferred: None,
                dr: DrOptions::default(),
                // S1 bootstraps from the local `[[sites]]`; S3 replaces them.
                targets: Default::default(),
            },
            failback: FailbackState::default(),
            directives: Default::default(),
            triggers: Triggers::default(),
            switchover: None,
            gates: Gates::default(),
            retry: Retry {
                round: Round {
                    order: [0, 1],
                    next: 0,
                },
                backoff: Backoff::default(),
            },
            timers: TimerTable::default(),
            alarms: AlarmSet::default(),
            out: Outbox::default(),
        })
    }

    /// The configuration the engine runs with (shared by a fleet made with
    /// [`Engine::for_agent`]: its username and seed are then the
    /// template's, and [`Engine::username`] the agent's).
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The agent's login name.
    pub fn username(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.cfg.username)
    }

    /// The seed of the engine's RNG (the agent's own, as [`Engine::username`]).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The engine's RNG (backoff jitter, E4), made from the seed on first use.
    pub(crate) fn rng(&mut self) -> &mut ChaCha8Rng {
        let seed = self.seed;
        self.rng
            .get_or_insert_with(|| Box::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    /// S1/W4: the delay before the next connect round.
    pub(crate) fn backoff_delay(&mut self) -> std::time::Duration {
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| Box::new(ChaCha8Rng::seed_from_u64(seed)));
        self.retry.backoff.next_delay(&self.cfg.backoff, rng)
    }

    /// The CS Proxy that reaches `site` (S3; S1: the local entry's).
    pub(crate) fn target_cs_proxy(&self, site: SiteIdx) -> &str {
        match &self.learned.targets[site].names {
            Some(n) => &n.cs_proxy,
            None => &self.cfg.sites[site].cs_proxy,
        }
    }

    /// The Application `site` is logged in as (S3; S1: the local entry's).
    pub(crate) fn target_app_name(&self, site: SiteIdx) -> &str {
        match &self.learned.targets[site].names {
            Some(n) => &n.app_name,
            None => &self.cfg.sites[site].app_name,
        }
    }

    /// Sets how `site` is reached: names equal to the local entry's are
    /// read from the shared config rather than kept.
    pub(crate) fn set_target(
        &mut self,
        site: SiteIdx,
        cs_proxy: String,
        app_name: String,
        source: SiteSource,
    ) {
        let local = &self.cfg.sites[site];
        let names = (cs_proxy != local.cs_proxy || app_name != local.app_name)
            .then(|| Box::new(TargetNames { cs_proxy, app_name }));
        self.learned.targets[site] = Target { names, source };
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
                TimerKind::FailbackVerify => {
                    self.e2_failback_verify_fired();
                    reevaluate = true;
                }
                TimerKind::FailbackProbe => self.e2_probe_fired(),
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
        let action = self.out.actions.pop_front();
        if action.is_none() && self.out.actions.capacity() > 0 {
            // Drained: give the buffer back. Actions come in bursts (startup,
            // a switchover) far apart; a fleet of 100 000 idle engines kept
            // ~1 KB each. Steady-state events make no action: no allocation.
            self.out.actions = VecDeque::new();
        }
        action
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
        self.raise_with_deadline(alarm, None);
    }

    /// Raises `alarm` unless it is already up, naming when the switchover
    /// it announces is due (D1, D4), if a timer runs for it.
    pub(crate) fn raise_with_deadline(&mut self, alarm: Alarm, deadline: Option<Timestamp>) {
        if self.alarms.insert(alarm) {
            self.decide(Decision::AlarmRaised {
                alarm,
                deadline: deadline.map(Timestamp::as_nanos),
            });
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
            site_timeout_source: self
                .learned
                .dr
                .known
                .then_some(self.learned.dr.site_timeout_source),
            site_sip_register_timeout_source: self
                .learned
                .dr
                .known
                .then_some(self.learned.dr.sip_register_timeout_source),
            sites: (0..2)
                .map(|i| SiteView {
                    name: self.site_name(i),
                    cs_proxy: self.target_cs_proxy(i).to_owned(),
                    app_name: self.target_app_name(i).to_owned(),
                    source: self.learned.targets[i].source,
                })
                .collect(),
            failback: self.e2_view(),
        }
    }
}

/// How a site is reached (S3), for status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteView {
    /// The site's name.
    pub name: SiteName,
    /// The CS Proxy a connect to it goes to.
    pub cs_proxy: String,
    /// The AIL Application it logs in as.
    pub app_name: String,
    /// Where these came from.
    pub source: SiteSource,
}

/// E2 with `failback = "auto"`, for status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FailbackView {
    /// `failback-after` in force: the configured one times the penalty of
    /// failbacks that landed on a dead site (up to 8×).
    #[serde(with = "humantime_serde")]
    pub after: std::time::Duration,
    /// Since when the preferred site has answered healthy, while probing it.
    pub healthy_since: Option<Timestamp>,
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
    /// Where `site-timeout` came from, once S3 has run.
    pub site_timeout_source: Option<DrOptionSource>,
    /// Where `site-sip-register-timeout` came from, once S3 has run.
    pub site_sip_register_timeout_source: Option<DrOptionSource>,
    /// How each site is reached (S3), in configuration order.
    pub sites: Vec<SiteView>,
    /// E2, with `failback = "auto"`: the failback-after in force and the
    /// preferred site's run of health.
    pub failback: Option<FailbackView>,
}

#[cfg(test)]
mod names {
    use super::*;

    /// Each of `values` is named by `as_str` as serde names it.
    fn named_alike<T: Serialize + Copy>(values: &[T], as_str: fn(T) -> &'static str) {
        for &v in values {
            let serialized = serde_json::to_value(v).ok();
            assert_eq!(
                Some(as_str(v)),
                serialized.as_ref().and_then(|j| j.as_str())
            );
        }
    }

    /// `as_str` (status, metrics) and serde (views) name things alike.
    #[test]
    fn as_str_matches_the_serialized_names() {
        // Every phase and timer kind, as `ALL` and `VALUES` list them.
        named_alike(&PhaseKind::ALL, PhaseKind::as_str);
        named_alike(&TimerKind::VALUES, TimerKind::as_str);
        use ListenerStatus::{Off, On, Unknown};
        named_alike(&[Unknown, On, Off], ListenerStatus::as_str);
        let sources = [
            DrOptionSource::Application,
            DrOptionSource::LocalOverride,
            DrOptionSource::Default,
        ];
        named_alike(&sources, DrOptionSource::as_str);
    }
}

//! A scripted two-site deployment that answers the engine's commands, so
//! tests read as timelines: what happened when, and what the engine did.
#![allow(dead_code)]

use drctl_policy::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// Shorthand: seconds as a `Timestamp`.
pub fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// Shorthand: milliseconds as a `Timestamp`.
pub fn ms(m: u64) -> Timestamp {
    Timestamp::from_millis(m)
}

/// A scheduled answer: when, to which command, what, and the epoch it opens.
type Answer = (Timestamp, CommandId, Result<Reply, String>, Option<Epoch>);

/// Drives an engine against a simulated deployment with synthetic time.
pub struct Harness {
    pub engine: Engine,
    pub now: Timestamp,
    /// Everything the engine asked for, with the time it asked.
    pub log: Vec<(Timestamp, Action)>,
    /// Whether each site's CS Proxy accepts connections.
    pub reachable: [bool; 2],
    /// The AIL Application the Person object names as preferred.
    pub preferred_app: String,
    /// The one it names as secondary; `None`: the other of `AIL_site1`/`AIL_site2`.
    pub secondary_app: Option<String>,
    /// The CS Proxy each AIL Application names (S3); others name `csproxy2:7000`.
    pub app_proxies: BTreeMap<String, String>,
    /// AIL Applications whose read fails.
    pub unreadable_apps: Vec<String>,
    /// Options (`section/option` → value) each AIL Application carries (E5).
    pub app_options: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether each site's telephony is ON: what a probe finds (given the
    /// site is reachable) and, with `report_telephony`, what a subscribe reports.
    pub healthy: [bool; 2],
    /// After each subscribe, report the site's telephony (`healthy`) on the
    /// new connection, as a backend reports the services' current status.
    pub report_telephony: bool,
    /// Backend events scheduled by the simulated deployment.
    events: Vec<(Timestamp, Epoch, BackendEvent)>,
    /// Whether a login (W5) is refused at each site.
    pub login_fails: [bool; 2],
    /// DR options the preferred AIL Application carries.
    pub app_site_timeout: Option<Duration>,
    pub app_sip_timeout: Option<Duration>,
    /// How long a connect takes to answer.
    pub connect_latency: Duration,
    /// When false, commands are logged but never answered.
    pub answer: bool,
    /// Commands (by [`CommandKind::type_name`]) answered with an error instead.
    pub failing: Vec<&'static str>,
    /// Commands (by [`CommandKind::type_name`]) kept unanswered until [`Harness::reply`].
    pub hold: Vec<&'static str>,
    held: Vec<Command>,
    answers: Vec<Answer>,
    next_epoch: Epoch,
    /// The epoch the simulated backend is connected with.
    pub epoch: Option<Epoch>,
    /// The site (index) of the last successful connect.
    pub connected_site: Option<usize>,
}

impl Harness {
    /// A harness with site1 preferred, 30 s site-timeout, 60 s register timeout.
    pub fn new(cfg: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(cfg).expect("valid config"),
            now: Timestamp::ZERO,
            log: Vec::new(),
            reachable: [true, true],
            preferred_app: "AIL_site1".into(),
            secondary_app: None,
            app_proxies: BTreeMap::from([
                ("AIL_site1".to_owned(), "csproxy1:7000".to_owned()),
                ("AIL_site2".to_owned(), "csproxy2:7000".to_owned()),
            ]),
            unreadable_apps: Vec::new(),
            app_options: BTreeMap::new(),
            healthy: [true, true],
            report_telephony: false,
            events: Vec::new(),
            login_fails: [false, false],
            app_site_timeout: Some(Duration::from_secs(30)),
            app_sip_timeout: Some(Duration::from_secs(60)),
            connect_latency: Duration::ZERO,
            answer: true,
            failing: Vec::new(),
            hold: Vec::new(),
            held: Vec::new(),
            answers: Vec::new(),
            next_epoch: 0,
            epoch: None,
            connected_site: None,
        }
    }

    /// Started on site1 (preferred) at t = 0, with the startup log cleared.
    pub fn watching(cfg: EngineConfig) -> Harness {
        let mut h = Harness::new(cfg);
        h.start();
        h.clear_log();
        h
    }

    /// [`Harness::watching`] with the default config.
    pub fn watching_default() -> Harness {
        Harness::watching(Harness::default_config())
    }

    /// The default two-site config.
    pub fn default_config() -> EngineConfig {
        EngineConfig::two_sites("agent007")
    }

    /// A harness with `cfg`, started at t = 0 (the startup log kept).
    pub fn started(cfg: EngineConfig) -> Harness {
        let mut h = Harness::new(cfg);
        h.start();
        h
    }

    /// A harness with `cfg`, `setup` applied (what the simulated deployment
    /// does), then started at t = 0 (the startup log kept).
    pub fn started_after(cfg: EngineConfig, setup: impl FnOnce(&mut Harness)) -> Harness {
        let mut h = Harness::new(cfg);
        setup(&mut h);
        h.start();
        h
    }

    /// Starts the engine at the current time and runs to `now`.
    pub fn start(&mut self) -> &mut Self {
        self.feed(Event::Start);
        self
    }

    /// Feeds one event at the current time and carries out the actions.
    pub fn feed(&mut self, event: Event) {
        self.engine.handle_event(self.now, event);
        self.drain();
        self.settle();
    }

    /// A backend event on the current connection.
    pub fn backend(&mut self, event: BackendEvent) {
        let epoch = self.epoch.expect("connected");
        self.feed(Event::Backend { epoch, event });
    }

    pub fn telephony(&mut self, status: ServiceState) {
        self.backend(BackendEvent::ServiceStatus {
            service: Service::Telephony,
            status,
        });
    }

    pub fn service(&mut self, service: Service, status: ServiceState) {
        self.backend(BackendEvent::ServiceStatus { service, status });
    }

    pub fn logout(&mut self, reason: &str) {
        self.backend(BackendEvent::AgentLogout {
            dn: "7001".into(),
            reason: (!reason.is_empty()).then(|| reason.to_owned()),
            extensions: Default::default(),
        });
    }

    pub fn back_in_service(&mut self) {
        self.backend(BackendEvent::DnBackInService { dn: "7001".into() });
    }

    /// The site (index) the simulated backend is connected to, by the last
    /// successful connect.
    fn site_index(site: &str) -> usize {
        if site == "site1" {
            0
        } else {
            1
        }
    }

    /// Answers the oldest held command called `name` now, with `result`.
    pub fn reply(&mut self, name: &str, result: Result<Reply, String>) {
        let i = self
            .held
            .iter()
            .position(|c| c.kind.type_name() == name)
            .unwrap_or_else(|| panic!("no held {name}: {:?}", self.held));
        let cmd = self.held.remove(i);
        if let Ok(Reply::Connected { epoch }) = &result {
            self.epoch = Some(*epoch);
        }
        self.feed(Event::CommandResult {
            id: cmd.id,
            result: result.map_err(CommandError::from),
        });
    }

    /// Advances synthetic time to `t`, delivering answers and firing timers in order.
    pub fn run_until(&mut self, t: Timestamp) -> &mut Self {
        let mut steps_at_this_instant = 0;
        loop {
            let next_answer = self.answers.iter().map(|a| a.0).min();
            let next_event = self.events.iter().map(|e| e.0).min();
            let next_timer = self.engine.poll_timeout();
            let next = [next_answer, next_event, next_timer]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(n) if n <= t => {
                    assert!(
                        n >= self.now,
                        "deadline {n} is in the past (now {})",
                        self.now
                    );
                    steps_at_this_instant = if n == self.now {
                        steps_at_this_instant + 1
                    } else {
                        0
                    };
                    assert!(steps_at_this_instant < 1000, "tight loop at {n}");
                    self.now = n;
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(t);
        self
    }

    /// Lets the engine see the current time (it only learns time from calls).
    pub fn tick(&mut self) {
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// Runs until nothing is pending at the current time.
    pub fn settle(&mut self) {
        let now = self.now;
        self.run_until(now);
    }

    fn step(&mut self) {
        if let Some(i) = self.answers.iter().position(|a| a.0 <= self.now) {
            let (_, id, result, epoch) = self.answers.remove(i);
            if let Some(e) = epoch {
                self.epoch = Some(e);
            }
            self.engine.handle_event(
                self.now,
                Event::CommandResult {
                    id,
                    result: result.map_err(CommandError::from),
                },
            );
        } else if let Some(i) = self.events.iter().position(|e| e.0 <= self.now) {
            let (_, epoch, event) = self.events.remove(i);
            self.engine
                .handle_event(self.now, Event::Backend { epoch, event });
        } else {
            self.engine.handle_timeout(self.now);
        }
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            if let Action::Command(cmd) = &action {
                self.answer_command(cmd);
            }
            self.log.push((self.now, action));
        }
    }

    fn answer_command(&mut self, cmd: &Command) {
        if !self.answer {
            return;
        }
        let now = self.now;
        let name = cmd.kind.type_name();
        if self.hold.contains(&name) {
            self.held.push(cmd.clone());
            return;
        }
        if self.failing.contains(&name) {
            let at = match cmd.kind {
                CommandKind::Connect { .. } => now + self.connect_latency,
                _ => now,
            };
            self.answers
                .push((at, cmd.id, Err(format!("{name}: injected failure")), None));
            return;
        }
        let (at, result, epoch) = match &cmd.kind {
            CommandKind::Connect { site, .. } => {
                let idx = Harness::site_index(site);
                let at = now + self.connect_latency;
                if self.reachable[idx] {
                    self.next_epoch += 1;
                    self.connected_site = Some(idx);
                    let epoch = self.next_epoch;
                    (at, Ok(Reply::Connected { epoch }), Some(epoch))
                } else {
                    (at, Err(format!("{site}: connection refused")), None)
                }
            }
            CommandKind::ReadPersonSites { .. } => (
                now,
                Ok(Reply::PersonSites {
                    preferred_app: self.preferred_app.clone(),
                    secondary_app: self.secondary_app.clone().unwrap_or_else(|| {
                        if self.preferred_app == "AIL_site2" {
                            "AIL_site1".into()
                        } else {
                            "AIL_site2".into()
                        }
                    }),
                }),
                None,
            ),
            CommandKind::ReadApplication { app_name }
                if self.unreadable_apps.contains(app_name) =>
            {
                (now, Err(format!("{app_name}: cannot be read")), None)
            }
            CommandKind::ReadApplication { app_name } => (
                now,
                Ok(Reply::Application {
                    app_name: app_name.clone(),
                    cs_proxy: self
                        .app_proxies
                        .get(app_name)
                        .cloned()
                        .unwrap_or_else(|| "csproxy2:7000".into()),
                    site_timeout: self.app_site_timeout,
                    site_sip_register_timeout: self.app_sip_timeout,
                    options: self.app_options.get(app_name).cloned().unwrap_or_default(),
                }),
                None,
            ),
            CommandKind::Subscribe { epoch, .. } => {
                if self.report_telephony {
                    let up = self.connected_site.is_some_and(|i| self.healthy[i]);
                    let status = if up {
                        ServiceState::On
                    } else {
                        ServiceState::Off
                    };
                    let event = BackendEvent::ServiceStatus {
                        service: Service::Telephony,
                        status,
                    };
                    self.events.push((now, *epoch, event));
                }
                (now, Ok(Reply::Done), None)
            }
            CommandKind::Probe { site, .. } => {
                let idx = Harness::site_index(site);
                let healthy = self.reachable[idx] && self.healthy[idx];
                let detail = format!("{site}: healthy {healthy}");
                (now, Ok(Reply::Probed { healthy, detail }), None)
            }
            CommandKind::Login { .. } => {
                let at_site = self.epoch.and(self.connected_site);
                if at_site.is_some_and(|i| self.login_fails[i]) {
                    (now, Err("login refused".to_owned()), None)
                } else {
                    (now, Ok(Reply::Done), None)
                }
            }
            CommandKind::KillFactory => {
                self.epoch = None;
                (now, Ok(Reply::Done), None)
            }
            _ => (now, Ok(Reply::Done), None),
        };
        self.answers.push((at, cmd.id, result, epoch));
    }

    /// Decisions, with their times.
    pub fn decisions(&self) -> Vec<(Timestamp, Decision)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Decision(d) => Some((*t, d.clone())),
                _ => None,
            })
            .collect()
    }

    /// Commands, with their times.
    pub fn commands(&self) -> Vec<(Timestamp, CommandKind)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Command(c) => Some((*t, c.kind.clone())),
                _ => None,
            })
            .collect()
    }

    /// Decisions as `(time, "type detail")` strings: compact for exact assertions.
    pub fn timeline(&self) -> Vec<(Timestamp, String)> {
        self.decisions()
            .into_iter()
            .map(|(t, d)| (t, describe(&d)))
            .collect()
    }

    /// Commands as `(time, name)` strings.
    pub fn command_names(&self) -> Vec<(Timestamp, String)> {
        self.commands()
            .into_iter()
            .map(|(t, c)| {
                let name = match c {
                    CommandKind::Connect {
                        site,
                        on_demand_loading,
                        ..
                    } => {
                        format!(
                            "connect {site}{}",
                            if on_demand_loading { " on-demand" } else { "" }
                        )
                    }
                    CommandKind::ReadPersonSites { .. } => "read_person_sites".into(),
                    CommandKind::ReadApplication { app_name } => {
                        format!("read_application {app_name}")
                    }
                    CommandKind::Subscribe { epoch, listeners } => {
                        format!("subscribe {epoch} x{}", listeners.len())
                    }
                    CommandKind::KillFactory => "kill_factory".into(),
                    CommandKind::RelaunchEndpoint => "relaunch_endpoint".into(),
                    CommandKind::Probe { site, .. } => format!("probe {site}"),
                    CommandKind::Login { epoch, .. } => format!("login {epoch}"),
                    CommandKind::Shutdown => "shutdown".into(),
                };
                (t, name)
            })
            .collect()
    }

    /// The gate checks the engine asked for, as `(time, "reason from->to")`.
    pub fn gate_checks(&self) -> Vec<(Timestamp, String)> {
        self.log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::CheckGates { reason, from, to } => {
                    Some((*t, format!("{} {from}->{to}", reason.as_str())))
                }
                _ => None,
            })
            .collect()
    }

    /// Asserts S4's relocation from site2 to the preferred site1 at t = 0
    /// was refused, after the `earlier` decisions: S4's alarm, back on site2
    /// and watching there.
    pub fn assert_s4_relocation_refused(&self, earlier: &[(Timestamp, &str)]) {
        let refused = tl(&[
            (secs(0), "startup-connected site2"),
            (secs(0), "switchover-started startup-relocate site2->site1"),
            (secs(0), "switchover-failed site1"),
            (secs(0), "alarm-raised preferred-site-unreachable"),
            (
                secs(0),
                "switchover-completed startup-relocate site2->site2",
            ),
        ]);
        assert_eq!(self.timeline(), [tl(earlier), refused].concat());
        let view = self.engine.view();
        assert_eq!(view.site.as_deref(), Some("site2"));
        assert_eq!(view.phase, PhaseKind::Watching);
    }

    /// Forgets the log so far (after a setup phase).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Switchover decisions only, as strings.
    pub fn switchovers(&self) -> Vec<(Timestamp, String)> {
        only(self.timeline(), |d| d.starts_with("switchover"))
    }

    /// `switchover-started` decisions only, as strings.
    pub fn started_switchovers(&self) -> Vec<(Timestamp, String)> {
        only(self.timeline(), |d| d.starts_with("switchover-started"))
    }

    /// The failbacks started (E2), as strings.
    pub fn failbacks(&self) -> Vec<(Timestamp, String)> {
        only(self.timeline(), |d| {
            d.starts_with("switchover-started failback")
        })
    }

    /// The probes sent (E2), as `(time, "probe site")`.
    pub fn probes(&self) -> Vec<(Timestamp, String)> {
        only(self.command_names(), |c| c.starts_with("probe"))
    }

    /// `(site, cs_proxy, app_name)` of each connect, in order.
    pub fn connects(&self) -> Vec<(String, String, String)> {
        self.commands()
            .into_iter()
            .filter_map(|(_, c)| match c {
                CommandKind::Connect {
                    site,
                    cs_proxy,
                    app_name,
                    ..
                } => Some((site, cs_proxy, app_name)),
                _ => None,
            })
            .collect()
    }

    /// The times of the connects sent.
    pub fn connect_times(&self) -> Vec<Timestamp> {
        self.commands()
            .into_iter()
            .filter(|(_, c)| matches!(c, CommandKind::Connect { .. }))
            .map(|(t, _)| t)
            .collect()
    }
}

/// The `(time, text)` items of `list` whose text `keep` keeps.
fn only(list: Vec<(Timestamp, String)>, keep: impl Fn(&str) -> bool) -> Vec<(Timestamp, String)> {
    list.into_iter().filter(|(_, s)| keep(s)).collect()
}

/// The first item of `list` (`(time, item)` pairs: `h.commands()`,
/// `h.decisions()`) matching `pattern`, as `value`.
#[macro_export]
macro_rules! first_match {
    ($list:expr, $pattern:pat => $value:expr) => {
        $list.into_iter().find_map(|(_, item)| match item {
            $pattern => Some($value),
            _ => None,
        })
    };
}

/// A one-line description of a decision.
pub fn describe(d: &Decision) -> String {
    match d {
        Decision::StartupConnected { site } => format!("startup-connected {site}"),
        Decision::StartupFailed { .. } => "startup-failed".into(),
        Decision::SwitchoverStarted { reason, from, to } => {
            format!("switchover-started {} {from}->{to}", reason.as_str())
        }
        Decision::SwitchoverCompleted { reason, from, to } => {
            format!("switchover-completed {} {from}->{to}", reason.as_str())
        }
        Decision::SwitchoverFailed { to, .. } => format!("switchover-failed {to}"),
        Decision::SwitchoverSuppressed { reason, why } => {
            format!("switchover-suppressed {} {why:?}", reason.as_str())
        }
        Decision::AlarmRaised { alarm, .. } => format!("alarm-raised {}", alarm.as_str()),
        Decision::AlarmCleared { alarm } => format!("alarm-cleared {}", alarm.as_str()),
        Decision::ApplicationFallback { site, .. } => format!("application-fallback {site}"),
        Decision::LogoutClassified { reason, class } => {
            format!("logout-classified {reason:?} {class:?}")
        }
        Decision::GateRefused { reason, gate, .. } => {
            format!("gate-refused {} {gate}", reason.as_str())
        }
        Decision::GateSkipped { reason, gate, .. } => {
            format!("gate-skipped {} {gate}", reason.as_str())
        }
    }
}

/// `(t, s)` pairs from literals, for comparing with `timeline()`.
pub fn tl(items: &[(Timestamp, &str)]) -> Vec<(Timestamp, String)> {
    items.iter().map(|(t, s)| (*t, s.to_string())).collect()
}

/// A switchover started and completed at `at`, as `timeline()` shows it;
/// `what` is `"reason from->to"`.
pub fn switched(at: Timestamp, what: &str) -> Vec<(Timestamp, String)> {
    vec![
        (at, format!("switchover-started {what}")),
        (at, format!("switchover-completed {what}")),
    ]
}

/// `failback = auto` with `failback-after` of `after` seconds (E2).
pub fn auto_failback(after: u64) -> Failback {
    Failback::Auto {
        after: Duration::from_secs(after),
    }
}

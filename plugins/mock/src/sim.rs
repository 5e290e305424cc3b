//! The simulated deployment: answers commands and plays the scenario's
//! timeline exactly as SPEC §6 describes, driven only by host time.
//!
//! # Sessions (fleet mode)
//!
//! One [`Sim`] serves any number of agent sessions: every command names its
//! session, and the first command of an unknown session id creates it. Each
//! session has its own connection, epoch, subscription and DN; epochs come
//! from one counter, so they are unique across sessions. A site change
//! (`site` + `set`) is reported to every session connected and subscribed
//! at that site, in the order the sessions first spoke; a stale one (D5) to
//! every session whose previous connection was at that site, on that epoch.
//! Two overlapping connects of one session both answer; the later
//! connection replaces the earlier one.
//!
//! # Targeting agent events
//!
//! An agent event (`logout`, `dn-back-in-service`, `dn-out-of-service`,
//! `disconnect`) reaches the sessions its `agents` key names
//! ([`Targets`]): all of them, one by id (none if the mock does not know
//! that id yet), or the first `ceil(f × n)` of the `n` sessions known when
//! the event plays, in the order of their first command (deterministic,
//! whatever the ids). Of those, the event is heard only by sessions
//! connected and subscribed (a stale event: by those with a previous
//! connection, on its epoch); `disconnect` drops every targeted connection.
//!
//! # CS Proxy capacity
//!
//! Without `deployment.cs-proxy-capacity` a connect resolves after
//! `connect-latency`, whatever the load. With a capacity of `R` logins per
//! second and a queue of `Q` (`cs-proxy-queue`, default `ceil(10 × R)`),
//! each site's CS Proxy serves connects one after another:
//!
//! - a connect arriving at `t` completes at
//!   `max(t + connect-latency, previous completion at that site + 1/R)`
//!   (`1/R` rounded to the nanosecond), so completions at a busy site are
//!   exactly `1/R` apart;
//! - a connect is *waiting* from its arrival until its completion; when `Q`
//!   connects are waiting at that site, a new one fails at
//!   `t + connect-latency` with `CS Proxy <site> overloaded: <Q> logins
//!   queued` and takes no place in the queue;
//! - a connect that arrives while the site is unreachable (or names a site
//!   the scenario does not know) takes no place either and fails at
//!   `t + connect-latency` as without a capacity. Reachability is checked
//!   when a connect completes, as without a capacity, so a site lost while
//!   logins wait refuses them at their completion time;
//! - a waiting login whose session gives up (another connect,
//!   `kill_factory`) still holds its place: the proxy already has it.
//!
//! # Configuration Server, probes and logins (issue 15)
//!
//! A site's AIL Application names the CS Proxy the scenario gives it
//! (`cs-proxy`), else the host's `[[sites]]` one; when the scenario names
//! one, a connect or probe naming another address for that site finds
//! nothing there (ops moved it). `probe` is answered at once, without
//! leaving the session's site: healthy when the site's CS Proxy is reachable
//! at that address and its telephony is ON. `login` is refused at a site
//! with `login-fails`; otherwise the DN comes back in service
//! `register-delay` later if SIP is up, as after a subscribe.

use crate::scenario::{
    ConfigChange, Happening, Scenario, SiteApplication, SitePatch, SiteState, Targets,
};
use compact_str::CompactString;
use drctl_plugin_api::messages::compact::{self, OutputRef};
use drctl_plugin_api::messages::{
    Command, CommandError, CommandResult, ConfigObject, Event, Input, Output, Reply, Service,
    ServiceState, MAX_APPLICATION_OPTIONS,
};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// A site as the host's config names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct SiteInfo {
    /// Site name.
    pub name: String,
    /// CS Proxy `host:port`.
    pub cs_proxy: String,
    /// AIL Application name.
    pub app_name: String,
}

/// One agent's connection state.
#[derive(Clone, Debug)]
struct Session {
    /// The session id, as the host names it (inline up to 24 bytes).
    id: CompactString,
    /// Connected site (index into `Sim::sites`) and epoch.
    connected: Option<(usize, u64)>,
    subscribed: bool,
    /// The connection before this one (for late, stale events).
    previous: Option<(usize, u64)>,
}

/// A site of the simulated deployment.
#[derive(Clone, Debug)]
struct Site {
    name: String,
    state: SiteState,
    /// Its AIL Application (S3): where its CS Proxy is, whether it reads.
    application: SiteApplication,
    /// Sessions connected and subscribed here, by index: a site change
    /// reaches them without a scan of every session.
    listeners: BTreeSet<usize>,
    /// Completion times of the logins waiting at this CS Proxy, ascending
    /// (capacity model only).
    waiting: VecDeque<u64>,
    /// When the last accepted login completes (capacity model only).
    last_completion: Option<u64>,
}

/// The capacity model's settings, in the units the sim counts in.
#[derive(Clone, Copy, Debug)]
struct Limit {
    /// `1/R` in nanoseconds.
    period: u64,
    /// `Q`.
    queue: usize,
}

/// Work scheduled for a later time.
#[derive(Clone, Debug)]
enum Pending {
    /// A connect attempt resolves: `refusal` if decided on arrival
    /// (overloaded), else reachability is checked then.
    Connect {
        session: usize,
        id: u64,
        site: String,
        refusal: Option<String>,
    },
    /// The DN re-registers, if the session is still on that epoch and SIP is up.
    DnBack { session: usize, epoch: u64 },
}

/// The simulated two-site deployment.
#[derive(Debug)]
pub struct Sim {
    scenario: Scenario,
    infos: Vec<SiteInfo>,
    dn: String,
    /// The scenario's sites, in name order.
    sites: Vec<Site>,
    limit: Option<Limit>,
    next_happening: usize,
    /// Sessions in the order of their first command (the order fractions take).
    sessions: Vec<Session>,
    /// Session id -> index in `sessions`, looked up for every command: Fx,
    /// not SipHash (the host names its own sessions), the ids inline in
    /// the table (no pointer to follow, a cache miss each in a fleet).
    by_id: FxHashMap<CompactString, usize>,
    /// The session of the last command: a fleet's host sends commands for
    /// one agent again or for the next one mostly, which is checked before
    /// the map.
    last_command: usize,
    /// Scheduled work by (time ns, sequence) so equal times keep their order.
    pending: BTreeMap<(u64, u64), Pending>,
    seq: u64,
    next_epoch: u64,
    ready: VecDeque<Ready>,
    /// `dn_back_in_service` of the DN, which every [`Ready::DnBack`] borrows.
    dn_back: Event,
}

/// An output waiting in [`Sim`]'s queue, for a session (index): the id is
/// borrowed when it is written ([`Sim::poll_output_compact`]). A site
/// change queues one status event per agent at once (100 000 for a fleet
/// losing a site): those, and the fleet's other common outputs, wait as a
/// few words each.
#[derive(Debug)]
enum Ready {
    /// A service's status on a connection epoch.
    Status {
        session: usize,
        epoch: u64,
        service: Service,
        status: ServiceState,
    },
    /// The DN (every session's) back in service on a connection epoch.
    DnBack { session: usize, epoch: u64 },
    /// Command `id` done.
    Done { session: usize, id: u64 },
    /// Command `id` (a connect) connected on `epoch`.
    Connected { session: usize, id: u64, epoch: u64 },
    /// Any other output.
    Other { session: usize, body: Box<Body> },
}

/// The rest of [`Ready::Other`]'s output.
#[derive(Debug)]
enum Body {
    Result { id: u64, result: CommandResult },
    Event { epoch: u64, event: Event },
}

/// An output's parts other than its session id, borrowed from the queue
/// entry or made on the stack.
enum Parts<'a> {
    Result(u64, Cow<'a, CommandResult>),
    Event(u64, Cow<'a, Event>),
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Sim {
    /// A simulation of `scenario` for the host's `sites`; `dn` is every agent's DN.
    pub fn new(scenario: Scenario, sites: Vec<SiteInfo>, dn: String) -> Sim {
        let limit = scenario.deployment.capacity().map(|c| Limit {
            // `as` saturates: a vanishing rate gives the longest period, not a wrap.
            period: ((1e9 / c.per_second).round() as u64).max(1),
            queue: usize::try_from(c.queue).unwrap_or(usize::MAX),
        });
        Sim {
            sites: scenario
                .sites
                .iter()
                .map(|(name, state)| Site {
                    name: name.clone(),
                    state: *state,
                    application: scenario.applications.get(name).cloned().unwrap_or_default(),
                    listeners: BTreeSet::new(),
                    waiting: VecDeque::new(),
                    last_completion: None,
                })
                .collect(),
            limit,
            scenario,
            infos: sites,
            dn_back: Event::DnBackInService { dn: dn.clone() },
            dn,
            next_happening: 0,
            sessions: Vec::new(),
            by_id: FxHashMap::default(),
            last_command: 0,
            pending: BTreeMap::new(),
            seq: 0,
            next_epoch: 0,
            ready: VecDeque::new(),
        }
    }

    /// Takes one command.
    pub fn handle(&mut self, now: u64, input: Input) -> Result<(), String> {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        let i = self.session_index(session);
        if let Some(result) = self.command(now, i, id, command) {
            self.push_result(i, id, result);
        }
        Ok(())
    }

    /// The index of session `id`, created on its first command.
    fn session_index(&mut self, id: String) -> usize {
        let last = self.last_command;
        // An id is unique: the session found here is the one the map gives.
        let known = [last, last.wrapping_add(1)]
            .into_iter()
            .find(|&i| self.sessions.get(i).is_some_and(|s| s.id == id))
            .or_else(|| self.by_id.get(id.as_str()).copied());
        if let Some(i) = known {
            self.last_command = i;
            return i;
        }
        let i = self.sessions.len();
        self.last_command = i;
        let id = CompactString::from(id);
        self.by_id.insert(id.clone(), i);
        self.sessions.push(Session {
            id,
            connected: None,
            subscribed: false,
            previous: None,
        });
        i
    }

    fn site_index(&self, name: &str) -> Option<usize> {
        // Two sites: a scan is cheaper than a map.
        self.sites.iter().position(|s| s.name == name)
    }

    /// Drops session `i`'s connection, remembering it for stale events.
    fn disconnect(&mut self, i: usize) {
        let s = &mut self.sessions[i];
        if let Some((site, epoch)) = s.connected.take() {
            s.previous = Some((site, epoch));
            self.sites[site].listeners.remove(&i);
        }
        s.subscribed = false;
    }

    /// Answers a command now, or schedules its answer (`None`).
    fn command(
        &mut self,
        now: u64,
        i: usize,
        id: u64,
        command: Command,
    ) -> Option<Result<Reply, CommandError>> {
        let connected = self.sessions[i].connected;
        match command {
            Command::Connect { site, cs_proxy, .. } => {
                self.disconnect(i);
                self.connect(now, i, id, site, &cs_proxy);
                None
            }
            Command::ReadPersonSites { .. } => {
                if connected.is_none() {
                    return Some(Err(not_connected()));
                }
                let preferred = self.scenario.deployment.preferred_site.get_ref();
                let app = |pref: bool| {
                    self.infos
                        .iter()
                        .find(|s| (&s.name == preferred) == pref)
                        .map(|s| s.app_name.clone())
                        .unwrap_or_default()
                };
                Some(Ok(Reply::PersonSites {
                    preferred_app: app(true),
                    secondary_app: app(false),
                }))
            }
            Command::ReadApplication { app_name } => {
                if connected.is_none() {
                    return Some(Err(not_connected()));
                }
                let Some(info) = self.infos.iter().find(|s| s.app_name == app_name) else {
                    return Some(Err(CommandError::new(format!(
                        "no AIL Application named {app_name:?}"
                    ))));
                };
                let application = self
                    .site_index(&info.name)
                    .map(|t| self.sites[t].application.clone())
                    .unwrap_or_default();
                if !application.readable {
                    return Some(Err(CommandError::new(format!(
                        "AIL Application {app_name:?} cannot be read"
                    ))));
                }
                let d = &self.scenario.deployment;
                Some(Ok(Reply::Application {
                    app_name,
                    cs_proxy: application
                        .cs_proxy
                        .unwrap_or_else(|| info.cs_proxy.clone()),
                    site_timeout: d.site_timeout,
                    site_sip_register_timeout: d.site_sip_register_timeout,
                    options: application.options,
                }))
            }
            Command::Subscribe { epoch, .. } => {
                let Some((site, current)) = connected else {
                    return Some(Err(not_connected()));
                };
                if current != epoch {
                    return Some(Err(CommandError::new(format!(
                        "epoch {epoch} is not the current connection ({current})"
                    ))));
                }
                self.sessions[i].subscribed = true;
                self.sites[site].listeners.insert(i);
                self.after_login(now, i, site, epoch, id);
                None
            }
            Command::KillFactory | Command::Shutdown => {
                self.disconnect(i);
                Some(Ok(Reply::Done))
            }
            Command::RelaunchEndpoint => {
                if let Some((_, epoch)) = connected {
                    let at = now.saturating_add(ns(self.scenario.deployment.register_delay));
                    self.schedule(at, Pending::DnBack { session: i, epoch });
                }
                Some(Ok(Reply::Done))
            }
            Command::Probe { site, cs_proxy } => Some(Ok(self.probe(&site, &cs_proxy))),
            Command::Login { epoch, .. } => {
                let Some((site, current)) = connected.filter(|_| self.sessions[i].subscribed)
                else {
                    return Some(Err(not_connected()));
                };
                if current != epoch {
                    return Some(Err(CommandError::new(format!(
                        "epoch {epoch} is not the current connection ({current})"
                    ))));
                }
                if self.sites[site].state.login_fails {
                    return Some(Err(CommandError::new(format!(
                        "login refused at {}",
                        self.sites[site].name
                    ))));
                }
                let at = now.saturating_add(ns(self.scenario.deployment.register_delay));
                self.schedule(at, Pending::DnBack { session: i, epoch });
                Some(Ok(Reply::Done))
            }
        }
    }

    /// `site`'s CS Proxy, if the scenario moved it (its Application names
    /// it) and `cs_proxy` is not it: why nothing answers at `cs_proxy`.
    fn moved_away(&self, t: usize, cs_proxy: &str) -> Option<String> {
        let site = &self.sites[t];
        site.application
            .cs_proxy
            .as_deref()
            .filter(|at| *at != cs_proxy)
            .map(|_| format!("no CS Proxy of {} answers at {cs_proxy}", site.name))
    }

    /// E2: a site's health as a probe sees it, from wherever the session is.
    fn probe(&self, site: &str, cs_proxy: &str) -> Reply {
        let unhealthy = |detail: String| Reply::Probed {
            healthy: false,
            detail,
        };
        let Some(t) = self.site_index(site) else {
            return unhealthy(format!("no site named {site}"));
        };
        if let Some(why) = self.moved_away(t, cs_proxy) {
            return unhealthy(why);
        }
        let st = &self.sites[t].state;
        if !st.reachable {
            return unhealthy(format!("CS Proxy {site} refused the connection"));
        }
        if st.telephony != ServiceState::On {
            return unhealthy(format!("{site}: telephony off"));
        }
        Reply::Probed {
            healthy: true,
            detail: format!("{site}: CS Proxy answers, telephony on"),
        }
    }

    /// Schedules a connect's answer: after `connect-latency`, or later (or
    /// refused) under the capacity model (module docs).
    fn connect(&mut self, now: u64, session: usize, id: u64, site: String, cs_proxy: &str) {
        let arrived = now.saturating_add(ns(self.scenario.deployment.connect_latency));
        let mut at = arrived;
        let target = self.site_index(&site);
        // A moved CS Proxy: nothing answers at the old address, no queue place.
        let mut refusal = target.and_then(|t| self.moved_away(t, cs_proxy));
        if let (Some(limit), Some(t), None) = (self.limit, target, &refusal) {
            let s = &mut self.sites[t];
            if s.state.reachable {
                // Logins completed by now no longer wait; completions are
                // ascending, so they sit at the front.
                while s.waiting.front().is_some_and(|&c| c <= now) {
                    s.waiting.pop_front();
                }
                if s.waiting.len() >= limit.queue {
                    refusal = Some(format!(
                        "CS Proxy {site} overloaded: {} logins queued",
                        limit.queue
                    ));
                } else {
                    let next_slot = s
                        .last_completion
                        .map_or(0, |c| c.saturating_add(limit.period));
                    at = arrived.max(next_slot);
                    s.waiting.push_back(at);
                    s.last_completion = Some(at);
                }
            }
        }
        self.schedule(
            at,
            Pending::Connect {
                session,
                id,
                site,
                refusal,
            },
        );
    }

    /// After a (re)login: the subscribe answer, the services' current status,
    /// and the DN back in service after `register-delay`.
    fn after_login(&mut self, now: u64, i: usize, site: usize, epoch: u64, id: u64) {
        self.ready.push_back(Ready::Done { session: i, id });
        let st = self.sites[site].state;
        for (service, status) in [
            (Service::Telephony, st.telephony),
            (Service::Configuration, st.configuration),
            (Service::Statistic, st.statistic),
        ] {
            self.ready.push_back(Ready::Status {
                session: i,
                epoch,
                service,
                status,
            });
        }
        let at = now.saturating_add(ns(self.scenario.deployment.register_delay));
        self.schedule(at, Pending::DnBack { session: i, epoch });
    }

    /// Queues command `id`'s result for session `i`.
    fn push_result(&mut self, i: usize, id: u64, result: CommandResult) {
        self.ready.push_back(match result {
            Ok(Reply::Done) => Ready::Done { session: i, id },
            Ok(Reply::Connected { epoch }) => Ready::Connected {
                session: i,
                id,
                epoch,
            },
            result => Ready::Other {
                session: i,
                body: Box::new(Body::Result { id, result }),
            },
        });
    }

    /// Queues `event` for session `i` on `epoch`.
    fn push_event(&mut self, i: usize, epoch: u64, event: Event) {
        self.ready.push_back(Ready::Other {
            session: i,
            body: Box::new(Body::Event { epoch, event }),
        });
    }

    /// A queued output's session and parts.
    fn parts<'a>(&'a self, ready: &'a Ready) -> (usize, Parts<'a>) {
        match ready {
            Ready::Status {
                session,
                epoch,
                service,
                status,
            } => (
                *session,
                Parts::Event(
                    *epoch,
                    Cow::Owned(Event::ServiceStatus {
                        service: *service,
                        status: *status,
                    }),
                ),
            ),
            Ready::DnBack { session, epoch } => {
                (*session, Parts::Event(*epoch, Cow::Borrowed(&self.dn_back)))
            }
            Ready::Done { session, id } => {
                (*session, Parts::Result(*id, Cow::Owned(Ok(Reply::Done))))
            }
            Ready::Connected { session, id, epoch } => (
                *session,
                Parts::Result(*id, Cow::Owned(Ok(Reply::Connected { epoch: *epoch }))),
            ),
            Ready::Other { session, body } => (
                *session,
                match &**body {
                    Body::Result { id, result } => Parts::Result(*id, Cow::Borrowed(result)),
                    Body::Event { epoch, event } => Parts::Event(*epoch, Cow::Borrowed(event)),
                },
            ),
        }
    }

    fn schedule(&mut self, at: u64, what: Pending) {
        self.seq += 1;
        self.pending.insert((at, self.seq), what);
    }

    /// The next output due at or before `now`.
    pub fn poll_output(&mut self, now: u64) -> Option<Output> {
        let ready = self.next_ready(now)?;
        let (i, parts) = self.parts(&ready);
        let session = self.sessions[i].id.as_str().to_owned();
        Some(match parts {
            Parts::Result(id, result) => Output::Result {
                session,
                id,
                result: result.into_owned(),
            },
            Parts::Event(epoch, event) => Output::Event {
                session,
                epoch,
                event: event.into_owned(),
            },
        })
    }

    /// [`Sim::poll_output`] in the compact encoding, appended to `out`:
    /// the same bytes, written from the queue entry and the session's id
    /// as they are. `Ok(true)` when there was an output.
    pub fn poll_output_compact(
        &mut self,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<bool, compact::CompactError> {
        let Some(ready) = self.next_ready(now) else {
            return Ok(false);
        };
        let (i, parts) = self.parts(&ready);
        let session = self.sessions[i].id.as_str();
        let output = match &parts {
            Parts::Result(id, result) => OutputRef::Result {
                session,
                id: *id,
                result,
            },
            Parts::Event(epoch, event) => OutputRef::Event {
                session,
                epoch: *epoch,
                event,
            },
        };
        compact::encode_output_ref(output, out).map(|()| true)
    }

    /// The next queue entry due at or before `now`.
    fn next_ready(&mut self, now: u64) -> Option<Ready> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Some(ready);
            }
            let happening = self
                .scenario
                .timeline
                .get(self.next_happening)
                .map(|h| ns(h.at));
            let pending = self.pending.keys().next().map(|k| k.0);
            match (happening, pending) {
                // The scenario's timeline goes first at equal times.
                (Some(h), p) if h <= now && p.is_none_or(|p| h <= p) => {
                    let h = self.scenario.timeline[self.next_happening].clone();
                    self.next_happening += 1;
                    self.happen(h.what, &h.agents, h.stale);
                }
                (_, Some(p)) if p <= now => {
                    if let Some((_, what)) = self.pending.pop_first() {
                        self.resolve(what);
                    }
                }
                _ => return None,
            }
        }
    }

    /// When the next output is due, in host nanoseconds.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.ready.is_empty() {
            return Some(0);
        }
        let happening = self
            .scenario
            .timeline
            .get(self.next_happening)
            .map(|h| ns(h.at));
        let pending = self.pending.keys().next().map(|k| k.0);
        happening.into_iter().chain(pending).min()
    }

    fn resolve(&mut self, what: Pending) {
        match what {
            Pending::Connect {
                session,
                id,
                site,
                refusal,
            } => {
                let reachable = self
                    .site_index(&site)
                    .filter(|&t| self.sites[t].state.reachable);
                let result = match (refusal, reachable) {
                    (Some(why), _) => Err(CommandError::new(why)),
                    (None, Some(t)) => {
                        // Overlapping connects of one session: the later
                        // connection replaces the earlier one, which must
                        // also leave its site's listeners.
                        self.disconnect(session);
                        self.next_epoch += 1;
                        let epoch = self.next_epoch;
                        self.sessions[session].connected = Some((t, epoch));
                        Ok(Reply::Connected { epoch })
                    }
                    (None, None) => Err(CommandError::new(format!(
                        "CS Proxy {site} refused the connection"
                    ))),
                };
                self.push_result(session, id, result);
            }
            Pending::DnBack { session, epoch } => {
                let s = &self.sessions[session];
                let Some((site, current)) = s.connected else {
                    return;
                };
                let sip_up = self.sites[site].state.telephony == ServiceState::On;
                if current == epoch && s.subscribed && sip_up {
                    self.ready.push_back(Ready::DnBack { session, epoch });
                }
            }
        }
    }

    /// A change of an AIL Application's option stays in the deployment: a
    /// later read of that Application (a restarted drctl's S3) sees it.
    fn store_option(&mut self, c: &ConfigChange) {
        if c.object != ConfigObject::Application {
            return;
        }
        let Some(t) = self
            .infos
            .iter()
            .find(|s| s.app_name == c.name)
            .and_then(|info| self.site_index(&info.name))
        else {
            return;
        };
        let options = &mut self.sites[t].application.options;
        let key = format!("{}/{}", c.section, c.option);
        match &c.value {
            Some(v) if options.contains_key(&key) || options.len() < MAX_APPLICATION_OPTIONS => {
                options.insert(key, v.clone());
            }
            Some(_) => {}
            None => {
                options.remove(&key);
            }
        }
    }

    /// Plays one timeline entry.
    fn happen(&mut self, what: Happening, agents: &Targets, stale: bool) {
        let dn = &self.dn;
        let event = match what {
            Happening::Set { site, patch } => return self.set(&site, patch, stale),
            Happening::Disconnect => return self.drop_targets(agents),
            Happening::Logout { reason } => Event::AgentLogout {
                dn: dn.clone(),
                reason,
                extensions: Default::default(),
            },
            Happening::DnBackInService => Event::DnBackInService { dn: dn.clone() },
            Happening::DnOutOfService => Event::DnOutOfService { dn: dn.clone() },
            Happening::ConfigChanged(c) => {
                self.store_option(&c);
                Event::ConfigChanged {
                    object: c.object,
                    name: c.name,
                    section: c.section,
                    option: c.option,
                    value: c.value,
                }
            }
        };
        for i in self.targets(agents) {
            let s = &self.sessions[i];
            let epoch = if stale {
                s.previous.map(|p| p.1)
            } else {
                s.connected.filter(|_| s.subscribed).map(|c| c.1)
            };
            if let Some(epoch) = epoch {
                self.push_event(i, epoch, event.clone());
            }
        }
    }

    /// The sessions `agents` names, as a range of indices (see [`Targets`]).
    fn targets(&self, agents: &Targets) -> Range<usize> {
        let n = self.sessions.len();
        match agents {
            Targets::All => 0..n,
            Targets::Fraction(f) => 0..Targets::fraction_of(*f, n),
            Targets::One(id) => self.by_id.get(id.as_str()).map_or(0..0, |&i| i..i + 1),
        }
    }

    /// The backend loses the AIL session of every targeted agent.
    fn drop_targets(&mut self, agents: &Targets) {
        for i in self.targets(agents) {
            if let Some((_, epoch)) = self.sessions[i].connected {
                self.push_event(i, epoch, Event::Disconnected);
            }
            self.disconnect(i);
        }
    }

    /// A site changes; sessions listening there hear about changed services only.
    fn set(&mut self, site: &str, patch: SitePatch, stale: bool) {
        let Some(t) = self.site_index(site) else {
            return;
        };
        let st = &mut self.sites[t].state;
        let before = *st;
        st.apply(&patch);
        let after = *st;
        // A stale change went out on the previous connection there; there is
        // no index of those, but stale drills are single events, so a scan is fine.
        let hearing: Vec<(usize, u64)> = if stale {
            self.sessions
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.previous.filter(|p| p.0 == t).map(|p| (i, p.1)))
                .collect()
        } else {
            Vec::new()
        };
        for (service, old, new) in [
            (Service::Telephony, before.telephony, after.telephony),
            (
                Service::Configuration,
                before.configuration,
                after.configuration,
            ),
            (Service::Statistic, before.statistic, after.statistic),
        ] {
            if old == new {
                continue;
            }
            let mut send = |session: usize, epoch: u64| {
                self.ready.push_back(Ready::Status {
                    session,
                    epoch,
                    service,
                    status: new,
                });
            };
            if stale {
                for &(i, epoch) in &hearing {
                    send(i, epoch);
                }
            } else {
                for &i in &self.sites[t].listeners {
                    if let Some((_, epoch)) = self.sessions[i].connected {
                        send(i, epoch);
                    }
                }
            }
        }
    }
}

fn not_connected() -> CommandError {
    CommandError::new("not connected to a CS Proxy")
}

//! The simulated deployment: answers commands and plays the scenario's
//! timeline exactly as SPEC §6 describes, driven only by host time.

use crate::scenario::{Happening, OnOff, Scenario, SitePatch, SiteState};
use drctl_plugin_api::messages::{
    Command, CommandError, Event, Input, Output, Reply, Service, ServiceState,
};
use std::collections::{BTreeMap, VecDeque};
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
#[derive(Clone, Debug, Default)]
struct Session {
    /// Connected site and epoch.
    connected: Option<(String, u64)>,
    subscribed: bool,
    /// The epoch of the connection before this one (for late, stale events).
    previous: Option<u64>,
}

impl Session {
    /// Drops the connection, remembering its epoch.
    fn disconnect(&mut self) {
        self.previous = self.connected.take().map(|c| c.1).or(self.previous);
        self.subscribed = false;
    }
}

/// Work scheduled for a later time.
#[derive(Clone, Debug)]
enum Pending {
    /// A connect attempt resolves (reachability is checked then).
    Connect {
        session: String,
        id: u64,
        site: String,
    },
    /// The DN re-registers, if the session is still on that epoch and SIP is up.
    DnBack { session: String, epoch: u64 },
}

/// The simulated two-site deployment.
#[derive(Debug)]
pub struct Sim {
    scenario: Scenario,
    sites: Vec<SiteInfo>,
    dn: String,
    state: BTreeMap<String, SiteState>,
    next_happening: usize,
    sessions: BTreeMap<String, Session>,
    /// Scheduled work by (time ns, sequence) so equal times keep their order.
    pending: BTreeMap<(u64, u64), Pending>,
    seq: u64,
    next_epoch: u64,
    ready: VecDeque<Output>,
    /// The happening being played is a late event of the previous connection.
    stale: bool,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn state(s: OnOff) -> ServiceState {
    match s {
        OnOff::On => ServiceState::On,
        OnOff::Off => ServiceState::Off,
    }
}

impl Sim {
    /// A simulation of `scenario` for the host's `sites`; `dn` is the agent's DN.
    pub fn new(scenario: Scenario, sites: Vec<SiteInfo>, dn: String) -> Sim {
        Sim {
            state: scenario.sites.clone(),
            scenario,
            sites,
            dn,
            next_happening: 0,
            sessions: BTreeMap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            next_epoch: 0,
            ready: VecDeque::new(),
            stale: false,
        }
    }

    /// Takes one command.
    pub fn handle(&mut self, now: u64, input: Input) -> Result<(), String> {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        let reply = self.command(now, &session, id, command);
        if let Some(result) = reply {
            self.ready.push_back(Output::Result {
                session,
                id,
                result,
            });
        }
        Ok(())
    }

    /// Answers a command now, or schedules its answer (`None`).
    fn command(
        &mut self,
        now: u64,
        session: &str,
        id: u64,
        command: Command,
    ) -> Option<Result<Reply, CommandError>> {
        let latency = ns(self.scenario.deployment.connect_latency);
        let s = self.sessions.entry(session.to_owned()).or_default();
        match command {
            Command::Connect { site, .. } => {
                s.disconnect();
                let session = session.to_owned();
                self.schedule(
                    now.saturating_add(latency),
                    Pending::Connect { session, id, site },
                );
                None
            }
            Command::ReadPersonSites { .. } => {
                if s.connected.is_none() {
                    return Some(Err(CommandError::new("not connected to a CS Proxy")));
                }
                let preferred = self.scenario.deployment.preferred_site.get_ref();
                let app = |pref: bool| {
                    self.sites
                        .iter()
                        .find(|i| (&i.name == preferred) == pref)
                        .map(|i| i.app_name.clone())
                        .unwrap_or_default()
                };
                Some(Ok(Reply::PersonSites {
                    preferred_app: app(true),
                    secondary_app: app(false),
                }))
            }
            Command::ReadApplication { app_name } => {
                if s.connected.is_none() {
                    return Some(Err(CommandError::new("not connected to a CS Proxy")));
                }
                let Some(info) = self.sites.iter().find(|i| i.app_name == app_name) else {
                    return Some(Err(CommandError::new(format!(
                        "no AIL Application named {app_name:?}"
                    ))));
                };
                let d = &self.scenario.deployment;
                Some(Ok(Reply::Application {
                    app_name,
                    cs_proxy: info.cs_proxy.clone(),
                    site_timeout_s: d.site_timeout.map(|t| t.as_secs()),
                    site_sip_register_timeout_s: d.site_sip_register_timeout.map(|t| t.as_secs()),
                }))
            }
            Command::Subscribe { epoch, .. } => {
                let Some((site, current)) = s.connected.clone() else {
                    return Some(Err(CommandError::new("not connected to a CS Proxy")));
                };
                if current != epoch {
                    return Some(Err(CommandError::new(format!(
                        "epoch {epoch} is not the current connection ({current})"
                    ))));
                }
                s.subscribed = true;
                self.after_login(now, session, &site, epoch, id);
                None
            }
            Command::KillFactory | Command::Shutdown => {
                s.disconnect();
                Some(Ok(Reply::Done))
            }
            Command::RelaunchEndpoint => {
                if let Some((_, epoch)) = s.connected {
                    let at = now.saturating_add(ns(self.scenario.deployment.register_delay));
                    let session = session.to_owned();
                    self.schedule(at, Pending::DnBack { session, epoch });
                }
                Some(Ok(Reply::Done))
            }
        }
    }

    /// After a (re)login: the subscribe answer, the services' current status,
    /// and the DN back in service after `register-delay`.
    fn after_login(&mut self, now: u64, session: &str, site: &str, epoch: u64, id: u64) {
        self.ready.push_back(Output::Result {
            session: session.to_owned(),
            id,
            result: Ok(Reply::Done),
        });
        let st = self.state.get(site).copied().unwrap_or_default();
        for (service, status) in [
            (Service::Telephony, st.telephony),
            (Service::Configuration, st.configuration),
            (Service::Statistic, st.statistic),
        ] {
            self.ready.push_back(Output::Event {
                session: session.to_owned(),
                epoch,
                event: Event::ServiceStatus {
                    service,
                    status: state(status),
                },
            });
        }
        let at = now.saturating_add(ns(self.scenario.deployment.register_delay));
        let session = session.to_owned();
        self.schedule(at, Pending::DnBack { session, epoch });
    }

    fn schedule(&mut self, at: u64, what: Pending) {
        self.seq += 1;
        self.pending.insert((at, self.seq), what);
    }

    /// The next output due at or before `now`.
    pub fn poll_output(&mut self, now: u64) -> Option<Output> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
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
                    self.stale = h.stale;
                    self.happen(h.what);
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
            Pending::Connect { session, id, site } => {
                let reachable = self.state.get(&site).is_some_and(|s| s.reachable);
                let result = if reachable {
                    self.next_epoch += 1;
                    let epoch = self.next_epoch;
                    self.sessions.entry(session.clone()).or_default().connected =
                        Some((site, epoch));
                    Ok(Reply::Connected { epoch })
                } else {
                    Err(CommandError::new(format!(
                        "CS Proxy {site} refused the connection"
                    )))
                };
                self.ready.push_back(Output::Result {
                    session,
                    id,
                    result,
                });
            }
            Pending::DnBack { session, epoch } => {
                let Some(s) = self.sessions.get(&session) else {
                    return;
                };
                let Some((site, current)) = &s.connected else {
                    return;
                };
                let sip_up = self
                    .state
                    .get(site)
                    .is_some_and(|st| st.telephony == OnOff::On);
                if *current == epoch && s.subscribed && sip_up {
                    let dn = self.dn.clone();
                    self.ready.push_back(Output::Event {
                        session,
                        epoch,
                        event: Event::DnBackInService { dn },
                    });
                }
            }
        }
    }

    /// Plays one timeline entry.
    fn happen(&mut self, what: Happening) {
        match what {
            Happening::Set { site, patch } => self.set(&site, patch),
            Happening::Logout { reason } => {
                let dn = self.dn.clone();
                self.send_to_listeners(None, || Event::AgentLogout {
                    dn: dn.clone(),
                    reason: reason.clone(),
                    extensions: Default::default(),
                });
            }
            Happening::DnBackInService => {
                let dn = self.dn.clone();
                self.send_to_listeners(None, || Event::DnBackInService { dn: dn.clone() });
            }
            Happening::DnOutOfService => {
                let dn = self.dn.clone();
                self.send_to_listeners(None, || Event::DnOutOfService { dn: dn.clone() });
            }
            Happening::Disconnect => {
                for (session, s) in &mut self.sessions {
                    if let Some((_, epoch)) = s.connected {
                        self.ready.push_back(Output::Event {
                            session: session.clone(),
                            epoch,
                            event: Event::Disconnected,
                        });
                    }
                    s.disconnect();
                }
            }
        }
    }

    /// A site changes; sessions listening there hear about changed services only.
    fn set(&mut self, site: &str, patch: SitePatch) {
        let Some(st) = self.state.get_mut(site) else {
            return;
        };
        let before = *st;
        if let Some(v) = patch.telephony {
            st.telephony = v;
        }
        if let Some(v) = patch.configuration {
            st.configuration = v;
        }
        if let Some(v) = patch.statistic {
            st.statistic = v;
        }
        if let Some(v) = patch.reachable {
            st.reachable = v;
        }
        let after = *st;
        for (service, old, new) in [
            (Service::Telephony, before.telephony, after.telephony),
            (
                Service::Configuration,
                before.configuration,
                after.configuration,
            ),
            (Service::Statistic, before.statistic, after.statistic),
        ] {
            if old != new {
                self.send_to_listeners(Some(site), || Event::ServiceStatus {
                    service,
                    status: state(new),
                });
            }
        }
    }

    /// Sends an event to every session listening (at `site`, if given); a
    /// stale happening goes out on each session's previous epoch instead.
    fn send_to_listeners(&mut self, site: Option<&str>, event: impl Fn() -> Event) {
        for (session, s) in &self.sessions {
            let epoch = if self.stale {
                s.previous
            } else {
                match &s.connected {
                    Some((at, epoch)) if s.subscribed && site.is_none_or(|x| x == at) => {
                        Some(*epoch)
                    }
                    _ => None,
                }
            };
            if let Some(epoch) = epoch {
                self.ready.push_back(Output::Event {
                    session: session.clone(),
                    epoch,
                    event: event(),
                });
            }
        }
    }
}

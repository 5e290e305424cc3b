//! The host's side of the control socket: answering status, pause, resume
//! and switch requests from inside the loop, where the engine lives.

use crate::control::{Incoming, Reply, Request};
use crate::host::drill::Drill;
use crate::host::gate::OperatorIntent;
use crate::host::observe::DecisionRecord;
use crate::host::{Backend, Host, HostError, PauseInfo};
use crate::report::{
    AgentRow, DrOptionRow, FleetReport, FleetSummary, Listeners, PauseRow, SiteCount, StatusReport,
    SwitchoverRow, TimerRow, FLEET_ROWS,
};
use drctl_policy::{Event, PhaseKind};

impl<B: Backend> Host<B> {
    /// Handles one control request (called by the loop when one arrives).
    pub(crate) fn on_control(&mut self, incoming: Incoming) -> Result<(), HostError> {
        if incoming.agent.is_none() && self.len() > 1 && incoming.request == Request::Status {
            let _ = incoming.reply.send(Reply {
                fleet: Some(self.fleet_status()),
                ..Reply::ok()
            });
            return Ok(());
        }
        let i = match self.addressed(incoming.agent.as_deref()) {
            Ok(i) => i,
            Err(why) => {
                let _ = incoming.reply.send(Reply::error(why));
                return Ok(());
            }
        };
        let reply = match incoming.request {
            Request::Status => Reply {
                status: Some(self.status(i)),
                ..Reply::ok()
            },
            Request::Pause { for_s, reason } => {
                let until = for_s.map(|s| self.now() + std::time::Duration::from_secs(s));
                let by = incoming
                    .peer_uid
                    .map_or_else(|| "unknown".to_owned(), crate::control::owner);
                self.inject(i, Event::Pause)?;
                self.set_pause(i, Some(PauseInfo { by, reason, until }));
                Reply {
                    status: Some(self.status(i)),
                    ..Reply::ok()
                }
            }
            Request::Resume => {
                self.inject(i, Event::Resume)?;
                self.set_pause(i, None);
                Reply {
                    status: Some(self.status(i)),
                    ..Reply::ok()
                }
            }
            Request::Switch {
                to,
                skip_gates,
                reason,
            } => {
                let by = incoming
                    .peer_uid
                    .map_or_else(|| "unknown".to_owned(), crate::control::owner);
                let intent = OperatorIntent {
                    skip: skip_gates,
                    why: reason,
                };
                match self.start_switch(i, to, intent, &by, incoming.reply.clone())? {
                    // The progress observer answers from here on.
                    None => return Ok(()),
                    Some(refusal) => refusal,
                }
            }
            // The socket's task streams these from the event hub itself.
            Request::Events { .. } => Reply::error("events are not answered by the loop"),
        };
        let _ = incoming.reply.send(reply);
        Ok(())
    }

    /// The agent a control request is for: the one it names (by login name
    /// or session id), else the watcher's only agent; why not otherwise.
    fn addressed(&self, agent: Option<&str>) -> Result<usize, String> {
        let names = || {
            let names: Vec<&str> = self
                .agents
                .iter()
                .map(|a| a.engine.config().username.as_str())
                .collect();
            names.join(", ")
        };
        match agent {
            None if self.len() == 1 => Ok(0),
            None => Err(format!(
                "this watcher runs {} agents ({}): name one with --agent NAME",
                self.len(),
                names()
            )),
            Some(name) => self
                .agents
                .iter()
                .position(|a| a.engine.config().username == name || a.session == name)
                .ok_or_else(|| {
                    format!(
                        "this watcher does not run agent {}; it runs {}",
                        crate::logging::escape(name),
                        names()
                    )
                }),
        }
    }

    /// Injects an operator switchover for agent `i` and attaches an observer
    /// that streams its decisions and, once verified, the timing table.
    /// `Some(reply)` when refused.
    fn start_switch(
        &mut self,
        i: usize,
        to: Option<String>,
        intent: OperatorIntent,
        by: &str,
        reply: tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Result<Option<Reply>, HostError> {
        if let Err(why) = self.known_gates(&intent.skip) {
            return Ok(Some(Reply::error(why)));
        }
        let (Some(engine), Some(session)) = (self.engine(i), self.session(i)) else {
            return Ok(Some(Reply::error(format!("no agent #{i}"))));
        };
        let view = engine.view();
        let session = session.to_owned();
        let sites: Vec<String> = engine
            .config()
            .sites
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        if let Some(unknown) = to.as_ref().filter(|t| !sites.contains(t)) {
            // Refused here, never fed to the engine (it would be a suppressed switchover).
            return Ok(Some(Reply::error(format!(
                "--to {}: unknown site; expected one of: {}",
                crate::logging::escape(unknown),
                sites.join(", ")
            ))));
        }
        if view.phase != PhaseKind::Watching {
            return Ok(Some(Reply::error(format!(
                "the watcher is not watching a site now (phase {}); try again",
                view.phase.as_str()
            ))));
        }
        let from = view.site.map(|s| s.to_string()).unwrap_or_default();
        let drill = Drill::new(session.clone(), from.clone(), to.clone(), Some(reply));
        let times = drill.times.clone();
        self.observe(Box::new(drill));
        self.before_operator_switch(i, intent, Some(by));
        self.inject(
            i,
            Event::OperatorSwitch {
                to: to.as_deref().map(Into::into),
            },
        )?;
        // Taken if the switchover's gates were asked for; never left for a later one.
        self.set_intent(i, None);
        let waiting = self.engine(i).is_some_and(|e| e.waiting_on_gates());
        if times.borrow().started.is_none() && !waiting {
            // Take the observer out again: the engine refused (e.g. already there).
            self.observers.pop();
            let why = self
                .recent(i)
                .last()
                .map(|(t, d)| crate::host::observe::describe(t, d).trim().to_owned())
                .unwrap_or_default();
            return Ok(Some(Reply::error(format!(
                "no switchover from {from}: {why}"
            ))));
        }
        Ok(None)
    }

    /// Every agent's row and the fleet's counts, for `drctl status` of a fleet watcher.
    pub(crate) fn fleet_status(&self) -> FleetReport {
        let now = self.now();
        let mut summary = FleetSummary {
            agents: self.len(),
            ..FleetSummary::default()
        };
        let mut sites: Vec<SiteCount> = self
            .agents
            .first()
            .map(|a| {
                a.engine
                    .config()
                    .sites
                    .iter()
                    .map(|s| SiteCount {
                        site: s.name.to_string(),
                        agents: 0,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut rows = Vec::with_capacity(self.len().min(FLEET_ROWS));
        for (i, agent) in self.agents.iter().enumerate() {
            let v = agent.engine.view();
            let watching = v.phase == PhaseKind::Watching;
            summary.watching += usize::from(watching);
            summary.in_service += usize::from(watching && v.dn == drctl_policy::ListenerStatus::On);
            summary.switching += usize::from(v.switchover.is_some());
            summary.paused += usize::from(v.paused);
            let alarms = self.active_alarms(i);
            summary.alarmed += usize::from(!alarms.as_slice().is_empty());
            let site = v.site.map(|s| s.to_string());
            if let Some(count) = sites.iter_mut().find(|c| Some(&c.site) == site.as_ref()) {
                count.agents += 1;
            }
            if rows.len() < FLEET_ROWS {
                rows.push(AgentRow {
                    agent: agent.engine.config().username.clone(),
                    phase: v.phase.as_str().to_owned(),
                    site,
                    dn: v.dn.as_str().to_owned(),
                    paused: v.paused,
                    alarms: alarms
                        .as_slice()
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .collect(),
                    switchover: v.switchover.map(|s| SwitchoverRow {
                        reason: s.reason.as_str().to_owned(),
                        from: s.from.to_string(),
                        to: s.to.to_string(),
                    }),
                });
            }
        }
        summary.sites = sites;
        FleetReport {
            backend: self.identity.as_ref().map(|i| i.backend.clone()),
            pid: std::process::id(),
            uptime: self.uptime(),
            now: now.as_nanos(),
            more: self.len() - rows.len(),
            agents: rows,
            summary,
        }
    }

    /// How long the watcher has run, whole seconds.
    fn uptime(&self) -> String {
        let uptime = self
            .identity
            .as_ref()
            .and_then(|i| i.started.elapsed().ok())
            .unwrap_or_default();
        humantime::format_duration(std::time::Duration::from_secs(uptime.as_secs())).to_string()
    }

    /// Agent `i`'s state for `drctl status`.
    pub(crate) fn status(&self, i: usize) -> StatusReport {
        // `i` is an agent of this host (`addressed`).
        let v = self.agents[i].engine.view();
        // The host's clock, not the engine's `now` (the last event it saw):
        // a countdown frozen at the last event would say "in 30s" for ever.
        let now = self.now().max(v.now);
        let uptime = self
            .identity
            .as_ref()
            .and_then(|i| i.started.elapsed().ok())
            .unwrap_or_default();
        let mut timers = v.timers.clone();
        timers.sort_by_key(|t| t.at);
        let timers = timers
            .iter()
            .map(|t| TimerRow {
                timer: t.kind.as_str().to_owned(),
                left: {
                    let left = if t.at > now {
                        t.at - now
                    } else {
                        Default::default()
                    };
                    humantime::format_duration(round_ms(left)).to_string()
                },
                at: t.at.as_nanos(),
            })
            .collect();
        let last_decisions = self
            .recent(i)
            .map(|(t, d)| {
                serde_json::to_value(DecisionRecord {
                    agent: None,
                    t: t.as_nanos(),
                    decision: d,
                })
                .unwrap_or_default()
            })
            .collect();
        StatusReport {
            // In a fleet the watcher's identity is not this agent's name.
            agent: if self.len() > 1 {
                Some(self.agents[i].engine.config().username.clone())
            } else {
                self.identity.as_ref().map(|i| i.agent.clone())
            },
            backend: self.identity.as_ref().map(|i| i.backend.clone()),
            pid: std::process::id(),
            uptime: humantime::format_duration(std::time::Duration::from_secs(uptime.as_secs()))
                .to_string(),
            now: now.as_nanos(),
            phase: v.phase.as_str().to_owned(),
            site: v.site.map(|s| s.to_string()),
            preferred_site: v.preferred_site.map(|s| s.to_string()),
            sites: self.agents[i]
                .engine
                .config()
                .sites
                .iter()
                .map(|s| s.name.to_string())
                .collect(),
            epoch: v.epoch,
            listeners: Listeners {
                telephony: v.telephony.as_str().to_owned(),
                configuration: v.configuration.as_str().to_owned(),
                statistic: v.statistic.as_str().to_owned(),
                dn: v.dn.as_str().to_owned(),
            },
            paused: v.paused,
            pause: self.pause_info(i).filter(|_| v.paused).map(|p| PauseRow {
                by: p.by.clone(),
                reason: p.reason.clone(),
                left: p.until.map(|u| {
                    let left = if u > now { u - now } else { Default::default() };
                    humantime::format_duration(round_ms(left)).to_string()
                }),
                until: p.until.map(|u| u.as_nanos()),
            }),
            alarms: self
                .active_alarms(i)
                .as_slice()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            timers,
            switchover: v.switchover.map(|s| SwitchoverRow {
                reason: s.reason.as_str().to_owned(),
                from: s.from.to_string(),
                to: s.to.to_string(),
            }),
            dr_options: [
                ("site-timeout", v.site_timeout, v.site_timeout_source),
                (
                    "site-sip-register-timeout",
                    v.site_sip_register_timeout,
                    v.site_sip_register_timeout_source,
                ),
            ]
            .into_iter()
            .filter_map(|(option, value, source)| {
                source.map(|source| DrOptionRow {
                    option: option.to_owned(),
                    value: value.map(|d| humantime::format_duration(d).to_string()),
                    source: source.as_str().to_owned(),
                })
            })
            .collect(),
            last_decisions,
        }
    }
}

fn round_ms(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Clock;
    use drctl_plugin_api::messages::Password;
    use drctl_policy::{Engine, EngineConfig, Timestamp};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::host::tests::Silent;

    fn host(names: &[&str]) -> Host<Silent> {
        let agents = names
            .iter()
            .map(|n| {
                let mut cfg = EngineConfig::two_sites(n);
                cfg.startup_timeout = Some(Duration::from_secs(10));
                let engine = Engine::new(cfg).unwrap();
                (format!("s-{n}"), Password::new(""), engine)
            })
            .collect();
        let wake = Arc::new(tokio::sync::Notify::new());
        Host::fleet(agents, Silent, Clock::virtual_at_zero(), wake)
    }

    #[test]
    fn timer_countdowns_are_computed_from_the_hosts_now_not_the_last_event() {
        let mut host = host(&["ann"]);
        host.inject(0, Event::Start).unwrap();
        // Nothing happens for 4 s: the engine's `now` stays at 0.
        let four = Timestamp::ZERO + Duration::from_secs(4);
        host.clock = Clock::Virtual { now: four };
        let status = host.status(0);
        assert_eq!(status.timers[0].timer, "startup-timeout");
        assert_eq!(status.timers[0].left, "6s");
        assert_eq!(status.now, four.as_nanos());
    }

    #[test]
    fn a_request_names_its_agent_or_the_only_one_is_meant() {
        let one = host(&["ann"]);
        assert_eq!(one.addressed(None), Ok(0));
        assert_eq!(one.addressed(Some("ann")), Ok(0));
        let e = one.addressed(Some("bob")).unwrap_err();
        assert_eq!(e, "this watcher does not run agent bob; it runs ann");
        let two = host(&["ann", "bob"]);
        assert_eq!(two.addressed(Some("bob")), Ok(1));
        assert_eq!(two.addressed(Some("s-bob")), Ok(1));
        let e = two.addressed(None).unwrap_err();
        assert!(
            e.contains("runs 2 agents (ann, bob): name one with --agent NAME"),
            "{e}"
        );
    }
}

//! The host's side of the control socket: answering status, pause, resume
//! and switch requests from inside the loop, where the engine lives.

use crate::control::{Incoming, Reply, Request};
use crate::host::drill::{Drill, SharedDrill, Stream};
use crate::host::gate::OperatorIntent;
use crate::host::observe::DecisionRecord;
use crate::host::{Backend, Host, HostError, PauseInfo};
use crate::report::{
    AgentRow, DrOptionRow, FleetReport, FleetSummary, Listeners, PauseRow, SiteCount, StatusReport,
    SwitchoverRow, TimerRow, FLEET_ROWS,
};
use drctl_policy::{Event, PhaseKind};
use std::cell::RefCell;
use std::rc::Rc;

/// A drill's limits from the wire: each at most
/// [`crate::schedule::MAX_WAVE_WAIT`] (a client other than drctl may send
/// anything); `--timeout` 2 minutes when not given.
fn drill_limits(
    ask: crate::control::DrillAsk,
    timeout_ms: Option<u64>,
) -> Result<crate::host::drill::Limits, String> {
    let max = crate::schedule::MAX_WAVE_WAIT;
    let ms = std::time::Duration::from_millis;
    let limits = crate::host::drill::Limits {
        timeout: ms(timeout_ms.unwrap_or(120_000)),
        abort_after: ask.abort_after_ms.map(ms),
        lifetime: ask.lifetime_ms.map(ms),
        rto: ask.rto_ms.map(ms),
    };
    let longest = [limits.abort_after, limits.lifetime, limits.rto]
        .into_iter()
        .flatten()
        .chain([limits.timeout])
        .max()
        .unwrap_or_default();
    if longest > max {
        return Err(format!(
            "--timeout, --abort-after, --lifetime and --rto of a drill are at most {}: \
             nothing was changed",
            humantime::format_duration(max)
        ));
    }
    Ok(limits)
}

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
        let by = incoming
            .peer_uid
            .map_or_else(|| "unknown".to_owned(), crate::control::owner);
        let fleet_wide = match &incoming.request {
            Request::Switch { agents, wave, .. } => agents.is_some() || wave.is_some(),
            Request::Cancel => incoming.agent.is_none() && self.len() > 1,
            _ => false,
        };
        if fleet_wide {
            let reply = self.fleet_request(incoming.request, incoming.agent, &by, &incoming.reply);
            if let Some(reply) = reply {
                let _ = incoming.reply.send(reply);
            }
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
                at_ms: Some(at_ms),
                drill,
                ..
            } => {
                let intent = OperatorIntent {
                    skip: skip_gates,
                    why: reason,
                };
                if drill.is_some() {
                    Reply::error(
                        "a drill (--abort-after, --lifetime, --rto, --report) runs now, not \
                         scheduled with --at: nothing was scheduled",
                    )
                } else {
                    self.schedule_switch(i, to, intent, &by, at_ms)
                }
            }
            Request::Switch {
                to,
                skip_gates,
                reason,
                timeout_ms,
                drill: Some(ask),
                ..
            } => {
                let intent = OperatorIntent {
                    skip: skip_gates,
                    why: reason,
                };
                match drill_limits(ask, timeout_ms) {
                    Err(why) => Reply::error(why),
                    Ok(limits) => {
                        let order = crate::host::plans::DrillOrder {
                            to,
                            intent,
                            by: Some(by),
                            limits,
                            streams: true,
                            recording: None,
                        };
                        match self.start_drill(i, order, incoming.reply.clone())? {
                            Some(reply) => reply,
                            // The drill answers with its report at its end.
                            None => return Ok(()),
                        }
                    }
                }
            }
            Request::Switch {
                to,
                skip_gates,
                reason,
                ..
            } => {
                let intent = OperatorIntent {
                    skip: skip_gates,
                    why: reason,
                };
                match self.begin_switch(
                    i,
                    to,
                    intent,
                    Some(&by),
                    Some(incoming.reply.clone()),
                    Stream::Answers,
                )? {
                    // The progress observer answers from here on.
                    Ok(_) => return Ok(()),
                    Err(why) => Reply::error(why),
                }
            }
            Request::Cancel => match self.cancel_scheduled(i, &by) {
                Some(row) => Reply {
                    scheduled: Some(row),
                    ..Reply::ok()
                },
                None => Reply::error(format!(
                    "no switch is scheduled for {}: nothing was cancelled",
                    self.agents[i].engine.username()
                )),
            },
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
            let names: Vec<&str> = self.agents.iter().map(|a| a.engine.username()).collect();
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
                .position(|a| a.engine.username() == name || a.session == name)
                .ok_or_else(|| {
                    format!(
                        "this watcher does not run agent {}; it runs {}",
                        crate::logging::escape(name),
                        names()
                    )
                }),
        }
    }

    /// `switch --at`: schedules agent `i`'s switch at `at_ms` (wall clock);
    /// the reply shows it, or why not.
    fn schedule_switch(
        &mut self,
        i: usize,
        to: Option<String>,
        intent: OperatorIntent,
        by: &str,
        at_ms: u64,
    ) -> Reply {
        if intent.why.is_none() {
            return Reply::error("a scheduled switch needs --reason TEXT: nothing was scheduled");
        }
        if let Err(why) = self.switchable(i, to.as_deref(), &intent) {
            return Reply::error(why);
        }
        let Some(wall) = crate::schedule::from_unix_ms(at_ms) else {
            return Reply::error(format!("at_ms {at_ms}: not a time: nothing was scheduled"));
        };
        let s = crate::host::plans::Scheduled {
            agent: i,
            at: self.now(),
            wall,
            to,
            intent,
            by: by.to_owned(),
            held_since: None,
        };
        match self.schedule(s) {
            Ok(row) => Reply {
                scheduled: Some(row),
                status: Some(self.status(i)),
                ..Reply::ok()
            },
            Err(why) => Reply::error(why),
        }
    }

    /// Whether agent `i` can be asked to switch to `to` skipping
    /// `intent.skip`: known gates, a known site; why not.
    fn switchable(
        &self,
        i: usize,
        to: Option<&str>,
        intent: &OperatorIntent,
    ) -> Result<(), String> {
        self.known_gates(&intent.skip)?;
        let engine = self.engine(i).ok_or_else(|| format!("no agent #{i}"))?;
        let sites: Vec<String> = engine
            .config()
            .sites
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        match to.filter(|t| !sites.iter().any(|s| s == t)) {
            // Refused here, never fed to the engine (it would be a suppressed switchover).
            Some(unknown) => Err(format!(
                "--to {}: unknown site; expected one of: {}",
                crate::logging::escape(unknown),
                sites.join(", ")
            )),
            None => Ok(()),
        }
    }

    /// Injects an operator switchover for agent `i` and attaches a [`Drill`]
    /// observer that times it and streams its decisions to `client`: its
    /// last line too (the timing table or the error) as `stream` says. The drill, or why
    /// the switchover did not start.
    pub(crate) fn begin_switch(
        &mut self,
        i: usize,
        to: Option<String>,
        intent: OperatorIntent,
        by: Option<&str>,
        client: Option<tokio::sync::mpsc::UnboundedSender<Reply>>,
        stream: Stream,
    ) -> Result<Result<Rc<RefCell<Drill>>, String>, HostError> {
        if let Err(why) = self.switchable(i, to.as_deref(), &intent) {
            return Ok(Err(why));
        }
        let (Some(engine), Some(session)) = (self.engine(i), self.session(i)) else {
            return Ok(Err(format!("no agent #{i}")));
        };
        let view = engine.view();
        let session = session.to_owned();
        if view.phase != PhaseKind::Watching {
            return Ok(Err(format!(
                "the watcher is not watching a site now (phase {}); try again",
                view.phase.as_str()
            )));
        }
        let from = view.site.map(|s| s.to_string()).unwrap_or_default();
        let mut drill = Drill::new(session.clone(), from.clone(), to.clone(), client);
        drill = match stream {
            Stream::Answers => drill,
            Stream::Named(name) => drill.streaming_as(name),
            Stream::Decisions => drill.streaming(),
        };
        let drill = Rc::new(RefCell::new(drill));
        let times = drill.borrow().times.clone();
        self.observe(Box::new(SharedDrill(drill.clone())));
        self.before_operator_switch(i, intent, by);
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
            // Gates that answered in the same instant (a virtual clock) refused it.
            if let Some(refused) = times.borrow().refused.clone() {
                return Ok(Err(refused));
            }
            let why = self
                .recent(i)
                .last()
                .map(|(t, d)| crate::host::observe::describe(t, d).trim().to_owned())
                .unwrap_or_default();
            return Ok(Err(format!("no switchover from {from}: {why}")));
        }
        Ok(Ok(drill))
    }

    /// A request for the fleet as a whole: a wave plan (`switch --agents
    /// --wave`), or cancelling it. The reply, unless the plan answers later.
    fn fleet_request(
        &mut self,
        request: Request,
        agent: Option<String>,
        by: &str,
        client: &tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Option<Reply> {
        let Request::Switch {
            to,
            skip_gates,
            reason,
            at_ms,
            agents,
            wave,
            wave_interval_ms,
            timeout_ms,
            drill,
        } = request
        else {
            return Some(match self.cancel_wave(by) {
                Some(report) => Reply {
                    wave: Some(report),
                    ..Reply::ok()
                },
                None => Reply::error(format!(
                    "no wave plan is in progress, and this watcher runs {} agents: a scheduled                      switch is cancelled with --agent NAME",
                    self.len()
                )),
            });
        };
        if let Some(agent) = agent {
            let agent = crate::logging::escape(&agent).into_owned();
            return Some(Reply::error(format!(
                "--agent {agent} with --agents/--wave: name one agent or a share, not both"
            )));
        }
        if at_ms.is_some() {
            return Some(Reply::error(
                "--at schedules one agent's switch (--agent NAME), not a wave plan",
            ));
        }
        if drill.is_some() {
            return Some(Reply::error(
                "--abort-after, --lifetime, --rto and --report are for one agent's drill, not a \
                 wave plan: nothing was changed",
            ));
        }
        if reason.is_none() {
            return Some(Reply::error(
                "a wave plan needs --reason TEXT: nothing was changed",
            ));
        }
        if self.wave_running() {
            return Some(Reply::error(
                "a wave plan is in progress already (drctl status shows it; drctl switch --cancel stops it)",
            ));
        }
        let intent = OperatorIntent {
            skip: skip_gates,
            why: reason,
        };
        if let Err(why) =
            (0..self.len().min(1)).try_for_each(|i| self.switchable(i, to.as_deref(), &intent))
        {
            return Some(Reply::error(why));
        }
        // Those that can move: watching, not at the target already.
        let (mut away, mut there) = (0, 0);
        let candidates: Vec<(usize, String)> = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                let v = a.engine.view();
                let watching = v.phase == PhaseKind::Watching;
                let at_target = to.is_some() && v.site.map(|s| s.to_string()) == to;
                away += usize::from(!watching);
                there += usize::from(watching && at_target);
                watching && !at_target
            })
            .map(|(i, a)| (i, a.engine.username().to_owned()))
            .collect();
        let selected = crate::schedule::select(candidates, self.len(), agents);
        if selected.is_empty() {
            return Some(Reply::error(format!(
                "no agent to move: of {} agents, {there} are on {} already and {away} are not                  watching a site",
                self.len(),
                to.as_deref().unwrap_or("their target")
            )));
        }
        let waves = crate::schedule::waves(selected, wave);
        let ms =
            |v: Option<u64>, default: u64| std::time::Duration::from_millis(v.unwrap_or(default));
        let max = crate::schedule::MAX_WAVE_WAIT;
        if ms(wave_interval_ms, 0) > max || ms(timeout_ms, 0) > max {
            return Some(Reply::error(format!(
                "--wave-interval and --timeout of a wave plan are at most {}",
                humantime::format_duration(max)
            )));
        }
        let order = crate::host::plans::WaveOrder {
            to,
            intent,
            by: by.to_owned(),
            interval: ms(wave_interval_ms, 0),
            timeout: ms(timeout_ms, 120_000),
        };
        let plan = crate::host::plans::Wave::new(order, waves, client.clone(), self.now());
        self.start_wave(plan);
        None
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
                    agent: agent.engine.username().to_owned(),
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
            wave: self.wave_report(),
            scheduled: self.scheduled_rows(now),
            drills: self.drill_rows(now),
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
                    crate::report::time_left(left)
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
                Some(self.agents[i].engine.username().to_owned())
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
                    crate::report::time_left(left)
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
            scheduled: self.scheduled_row(i, now),
            drill: self.drill_row(i, now),
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
        let agents: Vec<_> = names
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

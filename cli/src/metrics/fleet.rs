//! The metrics of a fleet watcher: the one-agent series that alert rules and
//! the dashboard select on, labelled per agent, and fleet aggregates.
//!
//! Cardinality stays at 27 series per agent (site 2, phase 9, listeners 4,
//! alarms 8, alarms up, paused, epoch, backend faults): what is per agent is
//! what an alert names an agent by. Switchover counts, their durations and
//! time in phase are the fleet's (no `agent` label): 10 000 agents times 18
//! reason/outcome pairs and 14 histogram buckets would be 500 000 series for
//! numbers nobody reads per agent.

use super::{
    gauge_value, listeners, series, up, Common, Handles, InFlight, PhaseLabel, SiteLabel, LISTENERS,
};
use crate::host::observe::Observer;
use drctl_plugin_api::messages::{Event as WireEvent, Output};
use drctl_policy::{Alarm, Decision, Engine, ListenerStatus, PhaseKind, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Agent {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentSite {
    agent: String,
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentPhase {
    agent: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentListener {
    agent: String,
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentAlarm {
    agent: String,
    alarm: &'static str,
}

const IN_FLIGHT_HELP: &str = "agents with a switchover started and not completed";

/// What the observer remembers of one agent between passes.
#[derive(Debug, Default)]
struct Seen {
    /// Since when, in which phase, at which site, in service.
    last: Option<(Timestamp, &'static str, Option<String>, bool)>,
    /// The switchover in flight: since when, why.
    in_flight: InFlight,
}

/// The metrics of a fleet watcher, and the observer that keeps them current.
pub struct FleetMetrics {
    common: Common,
    /// What the observer remembers of each agent, and how many watch.
    agents: HashMap<String, Seen>,
    watching: usize,
    site: Family<AgentSite, Gauge>,
    phase: Family<AgentPhase, Gauge>,
    listener: Family<AgentListener, Gauge>,
    alarm: Family<AgentAlarm, Gauge>,
    alarms_active: Family<Agent, Gauge>,
    paused: Family<Agent, Gauge>,
    epoch: Family<Agent, Gauge>,
    faults: Family<Agent, Counter>,
    agents_at: Family<SiteLabel, Gauge>,
    agents_in: Family<PhaseLabel, Gauge>,
    in_service: Gauge,
    in_flight: Gauge,
}

impl FleetMetrics {
    /// Every series of `agents` (session ids, which are their login names in
    /// a fleet) and `sites`, at 0 (every agent idle).
    pub fn new(agents: &[String], sites: &[String]) -> FleetMetrics {
        let mut r = Registry::with_prefix("drctl");
        let mut m = FleetMetrics {
            common: Common::new(),
            site: Family::default(),
            phase: Family::default(),
            listener: Family::default(),
            alarm: Family::default(),
            alarms_active: Family::default(),
            paused: Family::default(),
            epoch: Family::default(),
            faults: Family::default(),
            agents_at: Family::default(),
            agents_in: Family::default(),
            in_service: Gauge::default(),
            in_flight: Gauge::default(),
            agents: agents
                .iter()
                .map(|a| (a.clone(), Seen::default()))
                .collect(),
            watching: 0,
        };
        for agent in agents {
            let a = || agent.clone();
            for site in sites {
                m.site
                    .get_or_create(&AgentSite {
                        agent: a(),
                        site: site.clone(),
                    })
                    .set(0);
            }
            for p in PhaseKind::ALL {
                m.phase
                    .get_or_create(&AgentPhase {
                        agent: a(),
                        phase: p.as_str(),
                    })
                    .set(i64::from(p == PhaseKind::Idle));
            }
            for listener in LISTENERS {
                m.listener
                    .get_or_create(&AgentListener {
                        agent: a(),
                        listener,
                    })
                    .set(0);
            }
            for alarm in Alarm::ALL {
                m.alarm
                    .get_or_create(&AgentAlarm {
                        agent: a(),
                        alarm: alarm.as_str(),
                    })
                    .set(0);
            }
            // Creating the series is the point: set to 0, or 0 added.
            m.alarms_active.get_or_create(&Agent { agent: a() }).set(0);
            m.paused.get_or_create(&Agent { agent: a() }).set(0);
            m.epoch.get_or_create(&Agent { agent: a() }).set(0);
            m.faults.get_or_create(&Agent { agent: a() }).inc_by(0);
        }
        for site in sites {
            m.agents_at
                .get_or_create(&SiteLabel { site: site.clone() })
                .set(0);
        }
        for p in PhaseKind::ALL {
            let label = PhaseLabel { phase: p.as_str() };
            let idle = if p == PhaseKind::Idle {
                agents.len()
            } else {
                0
            };
            m.agents_in.get_or_create(&label).set(gauge_value(idle));
        }
        let phase = ("phase", "1 for the agent's engine's current phase");
        register!(r, m, series::SITE => site, phase => phase, series::LISTENER_UP => listener,
            series::ALARM_ACTIVE => alarm, series::ALARMS_ACTIVE => alarms_active,
            series::PAUSED => paused, series::EPOCH => epoch, series::BACKEND_FAULTS => faults);
        m.common.switchovers.register(
            &mut r,
            "switchover outcomes of the whole fleet by reason: completed, failed (one per failed attempt), suppressed",
            "from switchover-started to switchover-completed, every agent's",
        );
        let seconds = "agent-seconds spent in each phase, summed over the fleet";
        register!(r, m.common, ("phase_seconds", seconds) => phase_seconds);
        register!(r, m,
            ("fleet_agents", "agents connected at each site") => agents_at,
            ("fleet_phase_agents", "agents in each phase") => agents_in,
            ("fleet_in_service", "agents watching with their DN in service") => in_service,
            ("fleet_switchovers_in_flight", IN_FLIGHT_HELP) => in_flight);
        m.common.serve(r);
        m
    }

    /// What the endpoint serves: ready (`GET /readyz`) once every agent
    /// watches a site; `drctl_shadow_divergences_total` stays 0 (a fleet
    /// runs no shadow today).
    pub fn handles(&self) -> Handles {
        self.common.handles()
    }

    fn agent(agent: &str) -> Agent {
        Agent {
            agent: agent.to_owned(),
        }
    }
}

impl Observer for FleetMetrics {
    fn output(&mut self, _t: Timestamp, output: &Output) {
        let session = match output {
            Output::Event {
                session,
                event: WireEvent::Disconnected,
                ..
            }
            | Output::Result {
                session,
                result: Err(_),
                ..
            } => session,
            _ => return,
        };
        // Only agents of this fleet: a backend's stray session names no series.
        if self.agents.contains_key(session) {
            self.faults.get_or_create(&Self::agent(session)).inc();
        }
    }

    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let Some(seen) = self.agents.get_mut(agent) else {
            return;
        };
        let change = self.common.switchovers.count(t, d, &mut seen.in_flight);
        self.in_flight.inc_by(change);
    }

    fn settled(&mut self, t: Timestamp, agent: &str, engine: &Engine) {
        let Some(seen) = self.agents.get_mut(agent) else {
            return;
        };
        let v = engine.view();
        let phase = v.phase.as_str();
        let site = v.site.as_ref().map(|s| s.to_string());
        let watching = v.phase == PhaseKind::Watching;
        let serving = watching && v.dn == ListenerStatus::On;
        let a = || agent.to_owned();
        // Leave the last state: its time, and the fleet counts it was in.
        let (last_phase, last_site, last_serving) = match seen.last.take() {
            Some((since, p, s, serving)) => {
                self.common
                    .phase_seconds
                    .get_or_create(&PhaseLabel { phase: p })
                    .inc_by((t - since).as_secs_f64());
                (Some(p), s, serving)
            }
            None => (Some(PhaseKind::Idle.as_str()), None, false),
        };
        if let Some(p) = last_phase.filter(|p| *p != phase) {
            self.phase
                .get_or_create(&AgentPhase {
                    agent: a(),
                    phase: p,
                })
                .set(0);
            self.agents_in.get_or_create(&PhaseLabel { phase: p }).dec();
            self.agents_in.get_or_create(&PhaseLabel { phase }).inc();
            if p == PhaseKind::Watching.as_str() {
                self.watching -= 1;
            }
            if watching {
                self.watching += 1;
            }
        }
        if last_site != site {
            if let Some(s) = last_site {
                self.site
                    .get_or_create(&AgentSite {
                        agent: a(),
                        site: s.clone(),
                    })
                    .set(0);
                self.agents_at.get_or_create(&SiteLabel { site: s }).dec();
            }
            if let Some(s) = &site {
                self.agents_at
                    .get_or_create(&SiteLabel { site: s.clone() })
                    .inc();
            }
        }
        if last_serving != serving {
            self.in_service.inc_by(if serving { 1 } else { -1 });
        }
        self.phase
            .get_or_create(&AgentPhase { agent: a(), phase })
            .set(1);
        if let Some(s) = &site {
            self.site
                .get_or_create(&AgentSite {
                    agent: a(),
                    site: s.clone(),
                })
                .set(1);
        }
        seen.last = Some((t, phase, site, serving));
        self.epoch
            .get_or_create(&Self::agent(agent))
            .set(v.epoch.map_or(0, gauge_value));
        for (name, s) in listeners(&v) {
            self.listener
                .get_or_create(&AgentListener {
                    agent: a(),
                    listener: name,
                })
                .set(up(s));
        }
        self.paused
            .get_or_create(&Self::agent(agent))
            .set(i64::from(v.paused));
        let total = self.agents.len();
        self.common.health.set_ready(
            self.watching == total,
            format!("{} of {total} agents watching", self.watching),
        );
    }

    fn alarms(&mut self, _t: Timestamp, agent: &str, active: &[Alarm]) {
        if !self.agents.contains_key(agent) {
            return;
        }
        for alarm in Alarm::ALL {
            self.alarm
                .get_or_create(&AgentAlarm {
                    agent: agent.to_owned(),
                    alarm: alarm.as_str(),
                })
                .set(i64::from(active.contains(&alarm)));
        }
        self.alarms_active
            .get_or_create(&Self::agent(agent))
            .set(gauge_value(active.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drctl_policy::{EngineConfig, Event, Reason};
    use std::time::Duration;

    fn scrape(m: &FleetMetrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.handles().registry).unwrap();
        out
    }

    /// Asserts each of `lines` is in a scrape of `m`.
    fn assert_scraped(m: &FleetMetrics, lines: &[&str]) {
        let text = scrape(m);
        for line in lines {
            assert!(text.contains(line), "{line}: {text}");
        }
    }

    #[test]
    fn each_agent_has_its_series_and_the_fleet_its_counts() {
        let names = ["ann".to_owned(), "bob".to_owned()];
        let sites = ["site1".to_owned(), "site2".to_owned()];
        let mut m = FleetMetrics::new(&names, &sites);
        assert_scraped(
            &m,
            &[
                r#"drctl_phase{agent="bob",phase="idle"} 1"#,
                r#"drctl_fleet_phase_agents{phase="idle"} 2"#,
                r#"drctl_fleet_agents{site="site1"} 0"#,
                "drctl_fleet_in_service 0",
            ],
        );

        // ann starts (connecting), then switches: the fleet counts follow.
        let mut cfg = EngineConfig::two_sites("ann");
        cfg.startup_timeout = Some(Duration::from_secs(10));
        let mut engine = Engine::new(cfg).unwrap();
        engine.handle_event(Timestamp::ZERO, Event::Start);
        let one = Timestamp::ZERO + Duration::from_secs(1);
        m.settled(one, "ann", &engine);
        let started = Decision::SwitchoverStarted {
            reason: Reason::Operator,
            from: "site1".into(),
            to: "site2".into(),
        };
        m.decision(one, "ann", &started);
        m.decision(one, "ann", &started);
        assert_scraped(
            &m,
            &[
                r#"drctl_phase{agent="ann",phase="connecting"} 1"#,
                r#"drctl_phase{agent="ann",phase="idle"} 0"#,
                r#"drctl_fleet_phase_agents{phase="idle"} 1"#,
                r#"drctl_fleet_phase_agents{phase="connecting"} 1"#,
            ],
        );
        let text = scrape(&m);
        assert!(
            text.contains("drctl_fleet_switchovers_in_flight 1"),
            "once per agent: {text}"
        );
        // A session that is not the fleet's names no series.
        m.decision(one, "mallory", &started);
        assert!(!scrape(&m).contains("mallory"));
    }
}

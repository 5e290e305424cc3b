//! The statistics `drctl simulate` reports of a fleet (time to recover, login rates, failures, agents still down).

pub mod plot;

use crate::host::observe::Observer;
use drctl_plugin_api::messages::{Command, Event, Input, Output, Reply, Service, ServiceState};
use drctl_policy::{Decision, Timestamp};
use rustc_hash::FxHashMap;
use serde::Serialize;

/// One agent as the statistics follow it.
#[derive(Debug, Default, Clone)]
struct Follow {
    /// The agent's connect in flight: (command id, site). A second one at
    /// once (rare) waits in `FleetStats::connects`; a slot here spares a
    /// map of 100 000 entries a lookup for every connect and result.
    connect: Option<(u64, usize)>,
    /// The site the agent is on, once connected.
    site: Option<usize>,
    /// In service (DN back in service) at `site`.
    in_service: bool,
    /// When the current outage began (first sign of trouble while in service).
    down_since: Option<Timestamp>,
    /// A switchover completed since the outage began.
    switched: bool,
}

/// What `drctl simulate` measures, fed by the host loop.
pub struct FleetStats {
    sites: Vec<String>,
    agents: Vec<Follow>,
    /// (agent, command id) -> site of a connect in flight, beside the one
    /// in the agent's own slot ([`Follow::connect`]).
    connects: FxHashMap<(usize, u64), usize>,
    /// Successful logins per site per second of session time.
    logins: Vec<Vec<u32>>,
    /// Login attempts (connects sent) per site per second: the load a CS Proxy sees.
    attempts: Vec<Vec<u32>>,
    failed_logins: Vec<u64>,
    recover: Vec<f64>,
    /// Agents in service per site, sampled each second: (second, counts).
    series: Vec<Vec<u32>>,
    in_service: Vec<u32>,
}

impl FleetStats {
    /// Statistics for `n` agents `agent-1..n` over the two `sites`.
    pub fn new(sites: Vec<String>, n: usize) -> FleetStats {
        let k = sites.len();
        FleetStats {
            sites,
            agents: vec![Follow::default(); n],
            connects: FxHashMap::default(),
            logins: vec![Vec::new(); k],
            attempts: vec![Vec::new(); k],
            failed_logins: vec![0; k],
            recover: Vec::new(),
            series: Vec::new(),
            in_service: vec![0; k],
        }
    }

    /// The agent whose session id is `session`: the inverse of
    /// [`session_id`](crate::ops::agents::session_id) (`agent-1` is 0), read from the digits instead of a
    /// map of 100 000 strings looked up for every message.
    fn agent(&self, session: &str) -> Option<usize> {
        let digits = session.strip_prefix("agent-")?;
        // Only the spelling `session_id` writes (no sign, no leading zero).
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i = digits.parse::<usize>().ok()?.checked_sub(1)?;
        (i < self.agents.len()).then_some(i)
    }

    fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s == name)
    }

    /// Records the in-service counts up to second `sec`.
    fn sample(&mut self, t: Timestamp) {
        let sec = usize::try_from(t.as_nanos() / 1_000_000_000).unwrap_or(usize::MAX);
        while self.series.len() <= sec.min(1_000_000) {
            self.series.push(self.in_service.clone());
        }
        if let Some(last) = self.series.last_mut() {
            last.clone_from(&self.in_service);
        }
    }

    fn leave_service(&mut self, i: usize, t: Timestamp) {
        let a = &mut self.agents[i];
        if a.in_service {
            a.in_service = false;
            if let Some(s) = a.site {
                self.in_service[s] -= 1;
            }
            a.down_since.get_or_insert(t);
            a.switched = false;
            self.sample(t);
        }
    }

    /// The report at session time `end`.
    pub fn report(&self, end: Timestamp) -> Report {
        let mut ttr = self.recover.clone();
        ttr.sort_by(f64::total_cmp);
        let pct = |p: f64| -> Option<f64> {
            if ttr.is_empty() {
                return None;
            }
            // Nearest rank.
            let rank = ((p / 100.0) * ttr.len() as f64).ceil() as usize;
            ttr.get(rank.clamp(1, ttr.len()) - 1).copied()
        };
        let down = self
            .agents
            .iter()
            .filter(|a| a.down_since.is_some() || !a.in_service)
            .count();
        Report {
            agents: self.agents.len(),
            end_s: end.as_nanos() as f64 / 1e9,
            recovered: ttr.len(),
            still_down: down,
            ttr_p50_s: pct(50.0),
            ttr_p95_s: pct(95.0),
            ttr_p99_s: pct(99.0),
            ttr_max_s: ttr.last().copied(),
            sites: self
                .sites
                .iter()
                .enumerate()
                .map(|(i, name)| SiteReport {
                    site: name.clone(),
                    peak_attempts_per_s: self.attempts[i].iter().copied().max().unwrap_or(0),
                    peak_logins_per_s: self.logins[i].iter().copied().max().unwrap_or(0),
                    logins: self.logins[i].iter().map(|&n| u64::from(n)).sum(),
                    failed_logins: self.failed_logins[i],
                    in_service_at_end: self.in_service[i],
                })
                .collect(),
        }
    }

    /// Agents in service per site, one sample a second from 0 to `end`
    /// (the counts hold after the last change, so the series covers the
    /// whole simulated time).
    pub fn series_until(&self, end: Timestamp) -> Vec<Vec<u32>> {
        let secs = usize::try_from(end.as_nanos() / 1_000_000_000)
            .unwrap_or(usize::MAX)
            .min(1_000_000);
        let mut series = self.series.clone();
        series.truncate(secs + 1);
        let last = series
            .last()
            .cloned()
            .unwrap_or_else(|| self.in_service.clone());
        series.resize(secs + 1, last);
        series
    }
}

impl Observer for FleetStats {
    fn command(&mut self, t: Timestamp, input: &Input) {
        let Input::Command {
            session,
            id,
            command: Command::Connect { site, .. },
        } = input
        else {
            return;
        };
        if let (Some(i), Some(s)) = (self.agent(session), self.site_index(site)) {
            match &mut self.agents[i].connect {
                slot @ None => *slot = Some((*id, s)),
                Some(_) => {
                    self.connects.insert((i, *id), s);
                }
            }
            bump(&mut self.attempts[s], t);
            // Connecting elsewhere: out of service until the DN is back.
            self.leave_service(i, t);
        }
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        match output {
            Output::Result {
                session,
                id,
                result,
            } => {
                let Some(i) = self.agent(session) else {
                    return;
                };
                let slot = &mut self.agents[i].connect;
                let site = match *slot {
                    Some((c, s)) if c == *id => {
                        *slot = None;
                        Some(s)
                    }
                    _ => self.connects.remove(&(i, *id)),
                };
                let Some(s) = site else {
                    return;
                };
                match result {
                    Ok(Reply::Connected { .. }) => bump(&mut self.logins[s], t),
                    _ => self.failed_logins[s] += 1,
                }
            }
            Output::Event { session, event, .. } => {
                let Some(i) = self.agent(session) else {
                    return;
                };
                match event {
                    Event::DnBackInService { .. } => {
                        let a = &mut self.agents[i];
                        let Some(s) = a.site else { return };
                        if !a.in_service {
                            a.in_service = true;
                            self.in_service[s] += 1;
                            if let Some(since) = a.down_since.take() {
                                if a.switched {
                                    self.recover.push((t - since).as_secs_f64());
                                } else {
                                    // Back where it was without a switch: not a DR recovery.
                                    a.down_since = None;
                                }
                            }
                            self.sample(t);
                        }
                    }
                    Event::ServiceStatus {
                        service: Service::Telephony,
                        status: ServiceState::Off,
                    }
                    | Event::DnOutOfService { .. }
                    | Event::Disconnected
                    | Event::AgentLogout { .. } => self.leave_service(i, t),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn decision(&mut self, _t: Timestamp, agent: &str, d: &Decision) {
        let Some(i) = self.agent(agent) else {
            return;
        };
        match d {
            Decision::StartupConnected { site } => {
                self.agents[i].site = self.site_index(site);
            }
            Decision::SwitchoverCompleted { to, from, .. } => {
                let to_index = self.site_index(to);
                let a = &mut self.agents[i];
                a.site = to_index;
                if to != from {
                    a.switched = true;
                }
            }
            _ => {}
        }
    }
}

/// Counts one more in the second of `t`.
fn bump(per_second: &mut Vec<u32>, t: Timestamp) {
    let sec = usize::try_from(t.as_nanos() / 1_000_000_000).unwrap_or(0);
    if per_second.len() <= sec {
        per_second.resize(sec + 1, 0);
    }
    per_second[sec] += 1;
}

/// One site's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// Site name.
    pub site: String,
    /// The most login attempts (connects) the site saw in one second.
    pub peak_attempts_per_s: u32,
    /// The most successful logins in one second.
    pub peak_logins_per_s: u32,
    /// Successful logins in all.
    pub logins: u64,
    /// Connects that failed (unreachable, overloaded).
    pub failed_logins: u64,
    /// Agents in service there at the end.
    pub in_service_at_end: u32,
}

/// What `drctl simulate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Agents simulated.
    pub agents: usize,
    /// Session time simulated, seconds.
    pub end_s: f64,
    /// Agents back in service at another site after an outage.
    pub recovered: usize,
    /// Agents not in service at the end.
    pub still_down: usize,
    /// Time to recover (outage start to DN back in service at the new site), seconds.
    pub ttr_p50_s: Option<f64>,
    /// 95th percentile.
    pub ttr_p95_s: Option<f64>,
    /// 99th percentile.
    pub ttr_p99_s: Option<f64>,
    /// Maximum.
    pub ttr_max_s: Option<f64>,
    /// Per site.
    pub sites: Vec<SiteReport>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::agents::session_id;

    #[test]
    fn an_agent_is_found_by_its_session_id_only() {
        let s = FleetStats::new(vec!["site1".into(), "site2".into()], 12);
        for i in 0..12 {
            assert_eq!(s.agent(&session_id(i)), Some(i));
        }
        for other in [
            "agent-0",
            "agent-13",
            "agent-01",
            "agent-+1",
            "agent-",
            "agent-1x",
            "ann",
            "agent-99999999999999999999999",
        ] {
            assert_eq!(s.agent(other), None, "{other}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s = FleetStats::new(vec!["site1".into(), "site2".into()], 0);
        s.recover = (1..=100).map(f64::from).collect();
        let r = s.report(Timestamp::ZERO);
        assert_eq!(
            (r.ttr_p50_s, r.ttr_p95_s, r.ttr_p99_s, r.ttr_max_s),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
    }
}

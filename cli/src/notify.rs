//! systemd notifications for `Type=notify` (`sd_notify(3)`): `READY=1` once
//! every agent has started up (S1–S4 done, watching), `STATUS=` lines as the
//! agents' phases change, `STOPPING=1` at shutdown, and `WATCHDOG=1` from
//! the host loop itself when the unit sets `WatchdogSec=`.
//!
//! Nothing is sent, and nothing is attached, unless `$NOTIFY_SOCKET` is set.

use crate::host::observe::Observer;
use crate::host::session::Session;
use crate::host::supervise::Supervised;
use drctl_policy::{Engine, Event, PhaseKind, Timestamp};
use sd_notify::NotifyState;
use std::collections::HashMap;

/// Attaches the notifier and, with `$WATCHDOG_USEC`, the watchdog heartbeat
/// to `session` (a live watcher of `agents` agents). Does nothing outside
/// systemd.
pub fn attach(session: &mut Session<Supervised>, agents: usize) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    session.host.observe(Box::new(Notifier::new(agents)));
    if let Some(timeout) = sd_notify::watchdog_enabled() {
        // Half the timeout, as sd_watchdog_enabled(3) recommends: one late
        // pass of the loop does not trip it, a wedged loop does.
        let every = timeout / 2;
        tracing::info!(
            "systemd watchdog: {} (a ping every {})",
            humantime::format_duration(timeout),
            humantime::format_duration(every)
        );
        session
            .host
            .heartbeat(every, || send(&[NotifyState::Watchdog]));
    }
}

/// Sends `states`; a failure is logged (a warning the first time, then at
/// debug: the watchdog would repeat it every few seconds), never fatal.
fn send(states: &[NotifyState]) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = sd_notify::notify(states) {
        if WARNED.swap(true, Ordering::Relaxed) {
            tracing::debug!("systemd notification failed: {e}");
        } else {
            tracing::warn!("systemd notification failed: {e} ($NOTIFY_SOCKET); further failures at debug level");
        }
    }
}

/// Tells systemd when the watcher is ready and what it is doing.
pub struct Notifier {
    /// How many agents the watcher runs.
    agents: usize,
    /// Each agent's phase and site, as last settled.
    phases: HashMap<String, (PhaseKind, Option<String>)>,
    /// Agents that have been watching at least once (startup done).
    started: std::collections::HashSet<String>,
    /// `READY=1` was sent.
    ready: bool,
    /// The last `STATUS=` line sent.
    status: String,
}

impl Notifier {
    /// A notifier for a watcher of `agents` agents.
    pub fn new(agents: usize) -> Notifier {
        Notifier {
            agents,
            phases: HashMap::new(),
            started: std::collections::HashSet::new(),
            ready: false,
            status: String::new(),
        }
    }

    /// The status line: one agent's phase and site, or a fleet's count.
    fn status_line(&self) -> String {
        if self.agents == 1 {
            if let Some((phase, site)) = self.phases.values().next() {
                return match site {
                    Some(site) => format!("{} on {site}", phase.as_str()),
                    None => phase.as_str().to_owned(),
                };
            }
        }
        let watching = self
            .phases
            .values()
            .filter(|(p, _)| *p == PhaseKind::Watching)
            .count();
        format!("{watching} of {} agents watching", self.agents)
    }
}

impl Observer for Notifier {
    fn settled(&mut self, _t: Timestamp, agent: &str, engine: &Engine) {
        let view = engine.view();
        if view.phase == PhaseKind::Watching {
            self.started.insert(agent.to_owned());
        }
        self.phases.insert(
            agent.to_owned(),
            (view.phase, view.site.map(|s| s.to_string())),
        );
        let status = self.status_line();
        let ready = !self.ready && self.started.len() >= self.agents;
        if ready {
            self.ready = true;
            tracing::info!("ready: startup done, watching; telling systemd (READY=1)");
            send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        } else if status != self.status {
            send(&[NotifyState::Status(&status)]);
        }
        self.status = status;
    }

    fn input(&mut self, _t: Timestamp, event: &Event) {
        if matches!(event, Event::Shutdown) {
            send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_status_counts_the_agents_watching() {
        let mut n = Notifier::new(3);
        n.phases
            .insert("ann".into(), (PhaseKind::Watching, Some("site1".into())));
        n.phases.insert("bob".into(), (PhaseKind::Connecting, None));
        assert_eq!(n.status_line(), "1 of 3 agents watching");
        let mut one = Notifier::new(1);
        one.phases
            .insert("ann".into(), (PhaseKind::Watching, Some("site2".into())));
        assert_eq!(one.status_line(), "watching on site2");
    }
}

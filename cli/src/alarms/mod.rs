//! Alarms to upstream monitoring (`[[alarms.sinks]]`): every alarm raised or
//! cleared and every switchover started, completed or failed goes to each
//! sink. The engine never waits: decisions are queued to one task per sink,
//! which delivers them in order (webhook: HTTP POST with timeout and retries;
//! exec: a command with the notification in its environment, with a timeout;
//! alertmanager: alarms as alerts, resent while up).
//! `webhook.rs`, `exec.rs` and `alertmanager.rs` hold the kinds of delivery.

mod alertmanager;
pub(crate) mod exec;
mod webhook;

use crate::host::observe::Observer;
use drctl_config::{SinkConfig, SinkKind};
use drctl_policy::{Decision, Engine, Timestamp};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a sink receives (the webhook's JSON body; exec's `DRCTL_*` variables).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Notification {
    /// `alarm` or `switchover`.
    pub event: &'static str,
    /// alarm: `raised`/`cleared`; switchover: `started`/`completed`/`failed`/`suppressed`.
    pub state: &'static str,
    /// The alarm's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<&'static str>,
    /// The switchover's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The site left (a switchover), or the site an alarm cleared because
    /// the agent left it was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A failed switchover's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why an alarm cleared when it is not a recovery: `agent-left-site`
    /// (the agent no longer listens at `from`; the service may still be
    /// down); why a switchover was suppressed: `paused`, `hold-down`...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    /// The agent.
    pub agent: String,
    /// The site the agent is connected to after the event; `null` while it
    /// is connected nowhere (a switchover under way, a lost session).
    pub site: Option<String>,
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// Nanoseconds since the session start.
    pub t: u64,
}

impl Notification {
    /// The notification for a decision, if sinks get it.
    fn from_decision(
        d: &Decision,
        agent: &str,
        site: Option<String>,
        t: Timestamp,
    ) -> Option<Self> {
        let base = |event, state| Notification {
            event,
            state,
            alarm: None,
            reason: None,
            from: None,
            to: None,
            error: None,
            cause: None,
            agent: agent.to_owned(),
            site: site.clone(),
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            t: t.as_nanos(),
        };
        Some(match d {
            Decision::AlarmRaised { alarm, .. } => Notification {
                alarm: Some(alarm.as_str()),
                ..base("alarm", "raised")
            },
            Decision::AlarmCleared { alarm } => Notification {
                alarm: Some(alarm.as_str()),
                ..base("alarm", "cleared")
            },
            Decision::SwitchoverStarted { reason, from, to } => Notification {
                reason: Some(reason.as_str()),
                from: Some(from.to_string()),
                to: Some(to.to_string()),
                ..base("switchover", "started")
            },
            Decision::SwitchoverCompleted { reason, from, to } => Notification {
                reason: Some(reason.as_str()),
                from: Some(from.to_string()),
                to: Some(to.to_string()),
                ..base("switchover", "completed")
            },
            Decision::SwitchoverFailed { to, error } => Notification {
                to: Some(to.to_string()),
                error: Some(error.clone()),
                ..base("switchover", "failed")
            },
            // Upstream must hear that a switchover is due but held (E1, E3).
            Decision::SwitchoverSuppressed { reason, why } => Notification {
                reason: Some(reason.as_str()),
                cause: Some(why.as_str()),
                ..base("switchover", "suppressed")
            },
            _ => return None,
        })
    }

    /// The `DRCTL_*` environment of an exec sink.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("DRCTL_EVENT", self.event.to_owned()),
            ("DRCTL_STATE", self.state.to_owned()),
            ("DRCTL_AGENT", self.agent.clone()),
            ("DRCTL_TIME", self.time.clone()),
        ];
        let optional = [
            ("DRCTL_ALARM", self.alarm.map(str::to_owned)),
            ("DRCTL_REASON", self.reason.map(str::to_owned)),
            ("DRCTL_FROM", self.from.clone()),
            ("DRCTL_TO", self.to.clone()),
            ("DRCTL_ERROR", self.error.clone()),
            ("DRCTL_CAUSE", self.cause.map(str::to_owned)),
            ("DRCTL_SITE", self.site.clone()),
        ];
        env.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        env
    }
}

/// What `drctl watch` refuses about the sinks before it starts: an exec
/// sink's program that cannot run (`drctl config check` asks the same).
pub fn check(sinks: &[SinkConfig]) -> anyhow::Result<()> {
    for (i, sink) in sinks.iter().enumerate() {
        if sink.kind == SinkKind::Exec {
            exec::runnable(&sink.command, &sink.env)
                .map_err(|e| anyhow::anyhow!("alarms.sinks[{i}].command: {e}"))?;
        }
    }
    Ok(())
}

/// How many notifications wait per sink before new ones are dropped (logged).
const QUEUE: usize = 1024;

/// The observer: queues notifications to each sink's task, never blocking.
/// A decision's notification waits until its agent's engine settles (the
/// same pass of the loop), so that `site` is where the agent is after it.
pub struct AlarmSinks {
    agent: String,
    /// Fleet mode: name each decision's own agent.
    fleet: bool,
    /// Each agent's site as last settled (`None`: connected nowhere).
    sites: std::collections::HashMap<String, Option<String>>,
    /// Agents leaving a site now: `(when, the site)`, from a
    /// `switchover-started` or a lost session to their next other decision.
    leaving: std::collections::HashMap<String, (Timestamp, String)>,
    /// Notifications waiting for their agent to settle: (agent, notification).
    pending: Vec<(String, Notification)>,
    queues: Vec<(String, mpsc::Sender<Notification>)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    dropped: u64,
}

impl AlarmSinks {
    /// Starts one delivery task per sink (on the current tokio runtime);
    /// `fleet`: notifications name each decision's agent instead of `agent`.
    pub fn start(sinks: &[SinkConfig], agent: &str, fleet: bool) -> anyhow::Result<AlarmSinks> {
        check(sinks)?;
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for sink in sinks {
            let (tx, rx) = mpsc::channel(QUEUE);
            // The URL as `Display` shows it: credentials redacted.
            let url = || {
                sink.url
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            };
            let name = match sink.kind {
                SinkKind::Webhook => format!("webhook {}", url()),
                SinkKind::Exec => format!("exec {}", sink.command.join(" ")),
                SinkKind::Alertmanager => format!("alertmanager {}", url()),
            };
            let deliver = Delivery::new(sink)?;
            tasks.push(tokio::spawn(deliver.run(rx, name.clone())));
            queues.push((name, tx));
        }
        Ok(AlarmSinks {
            agent: agent.to_owned(),
            fleet,
            sites: std::collections::HashMap::new(),
            leaving: std::collections::HashMap::new(),
            pending: Vec::new(),
            queues,
            tasks,
            dropped: 0,
        })
    }

    /// Closes the queues (no more notifications); the delivery tasks finish
    /// what is queued. Await them with [`drain`].
    pub fn close(&mut self) -> Vec<tokio::task::JoinHandle<()>> {
        self.queues.clear();
        std::mem::take(&mut self.tasks)
    }
}

/// Waits up to `grace` for the sinks' queued notifications to go out (at
/// shutdown); then stops the deliveries still going, which kills the process
/// groups of exec sinks still running.
pub async fn drain(mut tasks: Vec<tokio::task::JoinHandle<()>>, grace: Duration) {
    // Finished tasks leave the list: a JoinHandle must not be awaited twice.
    let all = async {
        while let Some(t) = tasks.first_mut() {
            let _ = t.await;
            tasks.remove(0);
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(
            "alarm sinks: undelivered notifications dropped after {} at shutdown",
            humantime::format_duration(grace)
        );
    }
    for t in &tasks {
        t.abort();
    }
    // An aborted task is dropped at its next poll: its runs' guards kill
    // their process groups before drctl goes on to exit.
    for t in tasks {
        let _ = t.await;
    }
}

impl AlarmSinks {
    /// The agent a notification names: the session's in a fleet, else the
    /// configured one.
    fn name(&self, agent: &str) -> String {
        let name = if self.fleet { agent } else { &self.agent };
        name.to_owned()
    }

    /// Queues `n` to every sink without waiting (a full queue drops it, logged).
    fn send(&mut self, n: Notification) {
        for (name, q) in &self.queues {
            if q.try_send(n.clone()).is_err() {
                self.dropped += 1;
                // Log the first drop and then every 100th, not each one.
                if self.dropped % 100 == 1 {
                    tracing::warn!(
                        "alarm sink {name} is behind: notification dropped ({} so far)",
                        self.dropped
                    );
                }
            }
        }
    }

    /// Sends what waits for `agent` (every agent's: `None`), with the site
    /// each is at now.
    fn flush(&mut self, agent: Option<&str>) {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(a, _)| agent.is_none_or(|x| x == a));
        self.pending = waiting;
        for (a, mut n) in ready {
            n.site = self.sites.get(&a).cloned().flatten();
            self.send(n);
        }
    }
}

/// The alarms about the site the agent is connected to, which it clears
/// when it leaves that site (D5).
fn site_alarm(alarm: drctl_policy::Alarm) -> bool {
    use drctl_policy::Alarm;
    matches!(
        alarm,
        Alarm::TelephonyServiceDown | Alarm::ConfigurationServiceDown | Alarm::StatisticServiceDown
    )
}

impl Observer for AlarmSinks {
    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let name = self.name(agent);
        // Leaving a site: a switchover starts, or the session is lost; the
        // site alarms cleared right after are the agent's leaving, not a recovery.
        let left = match d {
            Decision::SwitchoverStarted { from, .. } => Some(from.to_string()),
            Decision::AlarmRaised {
                alarm: drctl_policy::Alarm::BackendDisconnected,
                ..
            } => self.sites.get(&name).cloned().flatten(),
            _ => None,
        };
        let cleared_by_leaving =
            matches!(d, Decision::AlarmCleared { alarm } if site_alarm(*alarm));
        match left {
            Some(site) => {
                self.leaving.insert(name.clone(), (t, site));
            }
            None if !cleared_by_leaving => {
                self.leaving.remove(&name);
            }
            None => {}
        }
        let Some(mut n) = Notification::from_decision(d, &name, None, t) else {
            return;
        };
        if cleared_by_leaving {
            if let Some((_, site)) = self.leaving.get(&name).filter(|(at, _)| *at == t) {
                n.cause = Some("agent-left-site");
                n.from = Some(site.clone());
            }
        }
        self.pending.push((name, n));
    }

    fn settled(&mut self, _t: Timestamp, agent: &str, engine: &Engine) {
        let name = self.name(agent);
        let v = engine.view();
        // Connected means a live connection (an epoch), not a site being left or tried.
        let site = v.epoch.and(v.site).map(|s| s.to_string());
        self.sites.insert(name.clone(), site);
        self.flush(Some(&name));
    }

    fn close(&mut self) {
        // The last decisions (the stop) may not have settled: send them as they are.
        self.flush(None);
    }
}

/// One sink's delivery.
enum Delivery {
    Webhook(webhook::Webhook),
    Exec(exec::Exec),
    Alertmanager(alertmanager::Alertmanager),
}

impl Delivery {
    fn new(sink: &SinkConfig) -> anyhow::Result<Delivery> {
        Ok(match sink.kind {
            SinkKind::Webhook => Delivery::Webhook(webhook::Webhook::new(sink)?),
            SinkKind::Exec => Delivery::Exec(exec::Exec::new(sink)?),
            SinkKind::Alertmanager => {
                Delivery::Alertmanager(alertmanager::Alertmanager::new(sink)?)
            }
        })
    }

    async fn run(self, mut rx: mpsc::Receiver<Notification>, name: String) {
        if let Delivery::Alertmanager(a) = self {
            // It keeps the alarms up and resends them on a timer: a loop of its own.
            return a.run(rx, &name).await;
        }
        while let Some(n) = rx.recv().await {
            let sent = match &self {
                Delivery::Webhook(w) => w.deliver(&n).await,
                Delivery::Exec(e) => e.deliver(&n, &name).await,
                Delivery::Alertmanager(_) => continue,
            };
            if let Err(e) = sent {
                // `{e:#}`: the whole chain, so the warning says why.
                tracing::warn!(
                    "alarm sink {name}: {} {} not delivered: {e:#}",
                    n.event,
                    n.state
                );
            }
        }
    }
}

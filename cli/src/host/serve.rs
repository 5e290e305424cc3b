//! The host's side of the control socket: answering status, pause, resume
//! and switch requests from inside the loop, where the engine lives.

use crate::control::{Incoming, Reply, Request};
use crate::host::observe::{DecisionRecord, Observer, PhaseTimer, PhaseTimes};
use crate::host::{Backend, Host, HostError};
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Engine, Event, ListenerStatus, PhaseKind, Timestamp};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

/// Who the watcher is, for `status`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The agent's login name.
    pub agent: String,
    /// The backend plugin.
    pub backend: String,
    /// When the watcher started (wall clock).
    pub started: std::time::SystemTime,
}

impl<B: Backend> Host<B> {
    /// Handles one control request (called by the loop when one arrives).
    pub(crate) fn on_control(&mut self, incoming: Incoming) -> Result<(), HostError> {
        let reply = match incoming.request {
            Request::Status => Reply {
                status: Some(self.status()),
                ..Reply::ok()
            },
            Request::Pause => {
                self.inject(Event::Pause)?;
                Reply {
                    status: Some(self.status()),
                    ..Reply::ok()
                }
            }
            Request::Resume => {
                self.inject(Event::Resume)?;
                Reply {
                    status: Some(self.status()),
                    ..Reply::ok()
                }
            }
            Request::Switch { to } => match self.start_switch(to, incoming.reply.clone())? {
                // The progress observer answers from here on.
                None => return Ok(()),
                Some(refusal) => refusal,
            },
        };
        let _ = incoming.reply.send(reply);
        Ok(())
    }

    /// Injects an operator switchover and attaches an observer that streams
    /// its decisions and, once verified, the timing table. `Some(reply)` when refused.
    fn start_switch(
        &mut self,
        to: Option<String>,
        reply: tokio::sync::mpsc::UnboundedSender<Reply>,
    ) -> Result<Option<Reply>, HostError> {
        let view = self.engine().view();
        if view.phase != PhaseKind::Watching {
            return Ok(Some(Reply::error(format!(
                "the watcher is not watching a site now (phase {}); try again",
                view.phase.as_str()
            ))));
        }
        let from = view.site.map(|s| s.to_string()).unwrap_or_default();
        let times = Rc::new(RefCell::new(PhaseTimes::default()));
        let progress = SwitchProgress {
            timer: PhaseTimer(times.clone()),
            times: times.clone(),
            reply,
            from: from.clone(),
            target: to.clone(),
            done: false,
        };
        self.observe(Box::new(progress));
        self.inject(Event::OperatorSwitch {
            to: to.as_deref().map(Into::into),
        })?;
        if times.borrow().started.is_none() {
            // Take the observer out again: the engine refused (e.g. already there).
            self.observers.pop();
            let why = self
                .recent
                .back()
                .map(|(t, d)| crate::host::observe::describe(*t, d).trim().to_owned())
                .unwrap_or_default();
            return Ok(Some(Reply::error(format!(
                "no switchover from {from}: {why}"
            ))));
        }
        Ok(None)
    }

    /// The watcher's state for `drctl status`.
    pub(crate) fn status(&self) -> serde_json::Value {
        let v = self.engine().view();
        let now = v.now;
        let uptime = self
            .identity
            .as_ref()
            .and_then(|i| i.started.elapsed().ok())
            .unwrap_or_default();
        let timers: Vec<_> = {
            let mut t = v.timers.clone();
            t.sort_by_key(|t| t.at);
            t.iter()
                .map(|t| {
                    let left = if t.at > now {
                        t.at - now
                    } else {
                        Default::default()
                    };
                    json!({
                        "timer": t.kind.as_str(),
                        "in": humantime::format_duration(round_ms(left)).to_string(),
                        "at": t.at.as_nanos(),
                    })
                })
                .collect()
        };
        let recent: Vec<_> = self
            .recent
            .iter()
            .map(|(t, d)| {
                serde_json::to_value(DecisionRecord {
                    agent: None,
                    t: t.as_nanos(),
                    decision: d,
                })
                .unwrap_or_default()
            })
            .collect();
        json!({
            "agent": self.identity.as_ref().map(|i| i.agent.clone()),
            "backend": self.identity.as_ref().map(|i| i.backend.clone()),
            "pid": std::process::id(),
            "uptime": humantime::format_duration(std::time::Duration::from_secs(uptime.as_secs())).to_string(),
            "now": now.as_nanos(),
            "phase": v.phase.as_str(),
            "site": v.site.map(|s| s.to_string()),
            "preferred_site": v.preferred_site.map(|s| s.to_string()),
            "epoch": v.epoch,
            "listeners": {
                "telephony": v.telephony.as_str(),
                "configuration": v.configuration.as_str(),
                "statistic": v.statistic.as_str(),
                "dn": v.dn.as_str(),
            },
            "paused": v.paused,
            "alarms": self.active_alarms().as_slice().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "timers": timers,
            "switchover": v.switchover.as_ref().map(|s| serde_json::to_value(s).unwrap_or_default()),
            "last_decisions": recent,
        })
    }
}

fn round_ms(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Streams a watcher-run switchover to its client and ends with the verdict.
struct SwitchProgress {
    timer: PhaseTimer,
    times: Rc<RefCell<PhaseTimes>>,
    reply: tokio::sync::mpsc::UnboundedSender<Reply>,
    from: String,
    target: Option<String>,
    done: bool,
}

impl SwitchProgress {
    fn finish(&mut self, reply: Reply) {
        let _ = self.reply.send(reply);
        self.done = true;
    }
}

impl Observer for SwitchProgress {
    fn command(&mut self, t: Timestamp, input: &Input) {
        self.timer.command(t, input);
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        self.timer.output(t, output);
    }

    fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
        self.timer.decision(t, _agent, d);
        let record = DecisionRecord {
            agent: None,
            t: t.as_nanos(),
            decision: d,
        };
        let value = serde_json::to_value(record).unwrap_or_default();
        if self.reply.send(Reply::progress(value)).is_err() {
            // The client left; the switchover goes on without it.
            self.done = true;
        }
    }

    fn settled(&mut self, _t: Timestamp, engine: &Engine) {
        if self.done {
            return;
        }
        let times = self.times.borrow().clone();
        let Some((_, landed)) = &times.completed else {
            return;
        };
        let view = engine.view();
        let wrong_site = *landed == self.from || self.target.as_ref().is_some_and(|t| t != landed);
        if wrong_site {
            return self.finish(Reply::error(format!(
                "switchover from {} did not reach its target: the agent is on {landed}",
                self.from
            )));
        }
        if view.telephony == ListenerStatus::On && view.dn == ListenerStatus::On {
            let phases: Vec<_> = times
                .rows()
                .into_iter()
                .map(|(phase, d)| json!({"phase": phase, "seconds": d.map(|d| d.as_secs_f64())}))
                .collect();
            self.finish(Reply {
                switched: Some(json!({"from": self.from, "to": landed, "phases": phases})),
                ..Reply::ok()
            });
        }
    }

    fn done(&self) -> bool {
        self.done
    }
}

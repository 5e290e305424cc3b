//! A backend instance that is replaced when it fails (SPEC §9): a plugin that
//! panics, returns garbage or an oversized output, floods the host, or leaves
//! a command unanswered past `backend.command-timeout` is dropped; the host
//! lives on.
//!
//! What the engines see is what a lost AIL session looks like: a
//! `disconnected` event on each session's current epoch (alarm
//! `backend-disconnected`, reconnect as at startup) and an error result for
//! every command in flight. A new instance is created on the next command, so
//! the engines' own backoff paces the restarts.

use crate::host::{Backend, HostError};
use drctl_plugin_api::loader::{Instance, Plugin};
use drctl_plugin_api::messages::{Command, CommandError, Event, Input, Output, Reply};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

/// How many outputs one instant may carry before the backend counts as flooding.
const FLOOD: u64 = 100_000;

/// A new instance of `plugin` whose wakes notify `wake` and whose logs go to tracing.
pub fn create_instance(
    plugin: &Plugin,
    config: &serde_json::Value,
    wake: &Arc<Notify>,
) -> Result<Instance, drctl_plugin_api::loader::PluginError> {
    let notify = wake.clone();
    plugin.create(
        config,
        Arc::new(move || notify.notify_one()),
        plugin.tracing_log_sink(),
    )
}

/// The supervised backend.
pub struct Supervised {
    plugin: Plugin,
    config: serde_json::Value,
    wake: Arc<Notify>,
    instance: Option<Instance>,
    name: String,
    command_timeout: u64,
    /// Commands sent and not answered: (session, id) -> deadline (host ns).
    pending: HashMap<(String, u64), u64>,
    deadlines: BTreeSet<(u64, String, u64)>,
    /// Connects in flight, to learn each session's epoch from the answer.
    connects: HashSet<(String, u64)>,
    /// Each session's current epoch.
    epochs: HashMap<String, u64>,
    /// Outputs made up by the supervisor (after a fault), sent first.
    synthetic: VecDeque<Output>,
    /// Outputs seen at `burst_at`.
    burst: u64,
    burst_at: u64,
    faults: u64,
}

impl Supervised {
    /// Starts the first instance of `plugin` (an error here is bad config: no retry).
    pub fn start(
        plugin: Plugin,
        config: serde_json::Value,
        wake: Arc<Notify>,
        command_timeout: std::time::Duration,
    ) -> Result<Supervised, drctl_plugin_api::loader::PluginError> {
        let mut s = Supervised {
            name: plugin.name().to_owned(),
            plugin,
            config,
            wake,
            instance: None,
            command_timeout: u64::try_from(command_timeout.as_nanos()).unwrap_or(u64::MAX),
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            connects: HashSet::new(),
            epochs: HashMap::new(),
            synthetic: VecDeque::new(),
            burst: 0,
            burst_at: 0,
            faults: 0,
        };
        s.instance = Some(s.create()?);
        Ok(s)
    }

    fn create(&self) -> Result<Instance, drctl_plugin_api::loader::PluginError> {
        create_instance(&self.plugin, &self.config, &self.wake)
    }

    /// The instance is unusable: drop it, tell the engines their sessions are
    /// gone and fail what was in flight.
    fn fault(&mut self, why: &str) {
        self.faults += 1;
        tracing::error!(
            backend = %self.name,
            faults = self.faults,
            "backend fault: {why}; the instance is replaced on the next command"
        );
        self.instance = None;
        let mut epochs: Vec<_> = self.epochs.drain().collect();
        epochs.sort();
        for (session, epoch) in epochs {
            self.synthetic.push_back(Output::Event {
                session,
                epoch,
                event: Event::Disconnected,
            });
        }
        let mut pending: Vec<_> = self.pending.drain().map(|(k, _)| k).collect();
        pending.sort();
        self.deadlines.clear();
        self.connects.clear();
        for (session, id) in pending {
            self.synthetic.push_back(Output::Result {
                session,
                id,
                result: Err(CommandError::new(format!(
                    "backend {} failed: {why}",
                    self.name
                ))),
            });
        }
    }

    fn answered(&mut self, session: &str, id: u64) {
        let key = (session.to_owned(), id);
        if let Some(deadline) = self.pending.remove(&key) {
            self.deadlines.remove(&(deadline, key.0, key.1));
        }
    }
}

impl Backend for Supervised {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&mut self, now: u64, input: &Input) -> Result<(), HostError> {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        if self.instance.is_none() {
            match self.create() {
                Ok(instance) => {
                    tracing::info!(backend = %self.name, "backend instance restarted");
                    self.instance = Some(instance);
                }
                Err(e) => {
                    tracing::warn!(backend = %self.name, "backend restart failed: {e}");
                    self.synthetic.push_back(Output::Result {
                        session: session.clone(),
                        id: *id,
                        result: Err(CommandError::new(format!(
                            "backend {} is restarting: {e}",
                            self.name
                        ))),
                    });
                    return Ok(());
                }
            }
        }
        let Some(instance) = self.instance.as_mut() else {
            return Ok(());
        };
        let deadline = now.saturating_add(self.command_timeout);
        self.pending.insert((session.clone(), *id), deadline);
        self.deadlines.insert((deadline, session.clone(), *id));
        if matches!(command, Command::Connect { .. }) {
            self.connects.insert((session.clone(), *id));
        }
        if let Err(e) = instance.handle(now, input) {
            self.fault(&e.to_string());
        }
        Ok(())
    }

    fn poll_output(&mut self, now: u64) -> Result<Option<Output>, HostError> {
        if let Some(out) = self.synthetic.pop_front() {
            return Ok(Some(out));
        }
        if let Some((deadline, session, id)) = self.deadlines.first().cloned() {
            if deadline <= now {
                let timeout = std::time::Duration::from_nanos(self.command_timeout);
                self.fault(&format!(
                    "command {id} of {session} got no answer within {}",
                    humantime::format_duration(timeout)
                ));
                return Ok(self.synthetic.pop_front());
            }
        }
        let Some(instance) = self.instance.as_mut() else {
            return Ok(None);
        };
        let out = match instance.poll_output(now) {
            Ok(Some(out)) => out,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.fault(&e.to_string());
                return Ok(self.synthetic.pop_front());
            }
        };
        if self.burst_at == now {
            self.burst += 1;
            if self.burst > FLOOD {
                self.burst = 0;
                self.fault(&format!(
                    "more than {FLOOD} outputs at one instant (a flood)"
                ));
                return Ok(self.synthetic.pop_front());
            }
        } else {
            self.burst_at = now;
            self.burst = 1;
        }
        if let Output::Result {
            session,
            id,
            result,
        } = &out
        {
            self.answered(session, *id);
            if self.connects.remove(&(session.clone(), *id)) {
                if let Ok(Reply::Connected { epoch }) = result {
                    self.epochs.insert(session.clone(), *epoch);
                }
            }
        }
        Ok(Some(out))
    }

    fn poll_timeout(&self) -> Option<u64> {
        let command = self.deadlines.first().map(|d| d.0);
        let backend = self
            .instance
            .as_ref()
            .and_then(|i| match i.try_poll_timeout() {
                Ok(deadline) => deadline,
                Err(_) => {
                    // Keep the failure for the next poll_output, and poll at once.
                    let _ = i.poll_timeout();
                    Some(0)
                }
            });
        let synthetic = (!self.synthetic.is_empty()).then_some(0);
        [command, backend, synthetic].into_iter().flatten().min()
    }

    fn stalled(&mut self) -> bool {
        if self.instance.is_none() {
            return false;
        }
        self.fault("it keeps asking to be polled without producing output");
        true
    }
}

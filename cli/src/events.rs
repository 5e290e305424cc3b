//! The live event stream of a watcher (`drctl events`, `GET /events`): every
//! decision as the loop makes it, and `--shadow` divergences.
//!
//! The loop publishes into a [`Hub`] and never waits: each client has a
//! bounded queue of its own ([`QUEUE`] items). A client that does not keep up
//! loses what does not fit, and sees one `{"type":"dropped","count":N}`
//! marker where the gap is, then the events after it. The hub also keeps the
//! last [`RING`] events for a client that asks without `--follow`.
//!
//! The queue is a mutex-guarded `VecDeque` with a drop count rather than
//! `tokio::sync::broadcast`: a broadcast receiver's lag counts every event
//! missed, other agents' too, while a client following one agent must be told
//! how many of *its* events it lost.

use crate::host::observe::{DecisionRecord, Observer};
use drctl_policy::{Decision, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// Events a client's queue holds before it drops what comes next.
pub const QUEUE: usize = 1024;

/// Events the hub keeps for a client that asks for the recent ones.
pub const RING: usize = 256;

/// Clients (control socket and SSE together) streaming at once.
pub const MAX_CLIENTS: usize = 8;

/// What the stream carries besides decision records (`type` tells them apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Marker {
    /// This client was too slow: `count` of its events were dropped here.
    Dropped {
        /// How many.
        count: u64,
    },
    /// `watch --shadow`: only one of the two policies decided `decision`.
    ShadowDivergence {
        /// Nanoseconds since the session start.
        t: u64,
        /// The agent.
        agent: String,
        /// `live` or `shadow`: the policy that decided it.
        by: String,
        /// The decision record (`type` and its fields).
        decision: serde_json::Value,
    },
}

/// One published event: its agent (for filters) and its JSON object.
#[derive(Debug)]
pub struct Published {
    /// The agent's name.
    pub agent: String,
    /// `decision`, `shadow-divergence` or `dropped` (an SSE event's name).
    pub kind: &'static str,
    /// The JSON object, one line.
    pub json: String,
}

/// What a client reads next.
#[derive(Debug, Clone)]
pub enum Next {
    /// An event.
    Event(Arc<Published>),
    /// `n` events did not fit this client's queue.
    Dropped(u64),
    /// The watcher stopped: nothing more will come.
    End,
}

impl Next {
    /// The SSE event name of this item, `None` at the end.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Next::Event(e) => Some(e.kind),
            Next::Dropped(_) => Some("dropped"),
            Next::End => None,
        }
    }

    /// The JSON object of this item (the marker's for a drop), `None` at the end.
    pub fn json(&self) -> Option<String> {
        match self {
            Next::Event(e) => Some(e.json.clone()),
            Next::Dropped(count) => serde_json::to_string(&Marker::Dropped { count: *count }).ok(),
            Next::End => None,
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Arc<Published>>,
    /// Events dropped since the last item queued (the marker still to come).
    dropped: u64,
    closed: bool,
}

/// One streaming client: its filter and its bounded queue.
#[derive(Debug)]
pub struct Subscriber {
    agent: Option<String>,
    queue: Mutex<Queue>,
    notify: Notify,
}

impl Subscriber {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding it leaves a queue that is still consistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wants(&self, agent: &str) -> bool {
        self.agent.as_deref().is_none_or(|a| a == agent)
    }

    /// Queues `event`, or counts it dropped when the queue is full; never waits.
    fn push(&self, event: &Arc<Published>) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if q.items.len() >= QUEUE {
            q.dropped += 1;
            return;
        }
        if q.dropped > 0 {
            // The gap goes where it happened: before this event.
            let n = std::mem::take(&mut q.dropped);
            q.items.push_back(Arc::new(Published {
                agent: String::new(),
                kind: "dropped",
                json: serde_json::to_string(&Marker::Dropped { count: n }).unwrap_or_default(),
            }));
        }
        q.items.push_back(event.clone());
        drop(q);
        self.notify.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// The next item without waiting (`None`: nothing yet).
    pub fn try_next(&self) -> Option<Next> {
        let mut q = self.lock();
        if let Some(item) = q.items.pop_front() {
            return Some(Next::Event(item));
        }
        if q.dropped > 0 {
            return Some(Next::Dropped(std::mem::take(&mut q.dropped)));
        }
        q.closed.then_some(Next::End)
    }

    /// The next item, waiting for one.
    pub async fn next(&self) -> Next {
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            // `notify_one` keeps a permit when nobody waits: no wake-up is lost
            // between the look above and this wait.
            self.notify.notified().await;
        }
    }
}

#[derive(Debug, Default)]
struct HubState {
    subscribers: Vec<Weak<Subscriber>>,
    ring: VecDeque<Arc<Published>>,
    closed: bool,
}

/// Where the loop publishes and clients subscribe.
#[derive(Debug)]
pub struct Hub {
    /// `(session id, name)` of every agent, for filters.
    agents: Vec<(String, String)>,
    state: Mutex<HubState>,
}

/// Why a client cannot subscribe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter names an agent the watcher does not run.
    #[error("this watcher does not run agent {agent}; it runs {runs}")]
    UnknownAgent {
        /// The name asked for (escaped).
        agent: String,
        /// The agents it runs.
        runs: String,
    },
    /// [`MAX_CLIENTS`] stream already.
    #[error("{MAX_CLIENTS} event clients are streaming already (the limit); try again later")]
    Busy,
    /// The watcher is stopping.
    #[error("the watcher is stopping")]
    Closed,
}

impl Hub {
    /// A hub for agents `(session id, name)`.
    pub fn new(agents: Vec<(String, String)>) -> Hub {
        Hub {
            agents,
            state: Mutex::new(HubState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name of agent `session` (its session id when unknown).
    pub fn name<'a>(&'a self, session: &'a str) -> &'a str {
        self.agents
            .iter()
            .find(|(s, _)| s == session)
            .map_or(session, |(_, n)| n.as_str())
    }

    /// A client of the events of `agent` (by name or session id; `None`:
    /// all), its queue holding the recent ones first when `recent`.
    pub fn subscribe(
        &self,
        agent: Option<&str>,
        recent: bool,
    ) -> Result<Arc<Subscriber>, SubscribeError> {
        let agent = match agent {
            None => None,
            Some(a) => Some(
                self.agents
                    .iter()
                    .find(|(s, n)| s == a || n == a)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| SubscribeError::UnknownAgent {
                        agent: crate::logging::escape(a).into_owned(),
                        runs: self
                            .agents
                            .iter()
                            .map(|(_, n)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?,
            ),
        };
        let mut state = self.lock();
        state.subscribers.retain(|s| s.strong_count() > 0);
        if state.subscribers.len() >= MAX_CLIENTS {
            return Err(SubscribeError::Busy);
        }
        let sub = Arc::new(Subscriber {
            agent,
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        });
        if recent {
            let mut q = sub.lock();
            q.items = state
                .ring
                .iter()
                .filter(|e| sub.wants(&e.agent))
                .cloned()
                .collect();
            q.closed = state.closed;
        } else if state.closed {
            return Err(SubscribeError::Closed);
        }
        state.subscribers.push(Arc::downgrade(&sub));
        Ok(sub)
    }

    /// Hands `json` (an event of `agent`, `kind` as [`Published::kind`]) to
    /// every client that wants it; never waits.
    pub fn publish(&self, agent: &str, kind: &'static str, json: String) {
        let event = Arc::new(Published {
            agent: agent.to_owned(),
            kind,
            json,
        });
        let mut state = self.lock();
        if state.ring.len() == RING {
            state.ring.pop_front();
        }
        state.ring.push_back(event.clone());
        state.subscribers.retain(|s| match s.upgrade() {
            Some(sub) => {
                if sub.wants(agent) {
                    sub.push(&event);
                }
                true
            }
            None => false,
        });
    }

    /// The watcher stops: every client gets what is queued, then the end.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Kept (weakly) until each client is done: `flushed` waits for them.
        for sub in state.subscribers.iter().filter_map(Weak::upgrade) {
            sub.close();
        }
    }

    /// Once every client has been handed the end (after [`Hub::close`]):
    /// what was queued is written before the watcher exits. The caller bounds
    /// the wait (a client that does not read never finishes).
    pub async fn flushed(&self) {
        while self.clients() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Clients streaming now.
    pub fn clients(&self) -> usize {
        let mut state = self.lock();
        state.subscribers.retain(|s| s.strong_count() > 0);
        state.subscribers.len()
    }
}

/// The loop's side: publishes every decision into the hub.
pub struct Tap(pub Arc<Hub>);

impl Tap {
    /// Publishes a `--shadow` divergence of `session`.
    pub fn divergence(hub: &Hub, session: &str, t: Timestamp, by: &str, decision: &Decision) {
        let agent = hub.name(session).to_owned();
        let marker = Marker::ShadowDivergence {
            t: t.as_nanos(),
            agent: agent.clone(),
            by: by.to_owned(),
            decision: serde_json::to_value(decision).unwrap_or_default(),
        };
        if let Ok(json) = serde_json::to_string(&marker) {
            hub.publish(&agent, "shadow-divergence", json);
        }
    }
}

impl Observer for Tap {
    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let name = self.0.name(agent);
        let record = DecisionRecord {
            t: t.as_nanos(),
            agent: Some(name),
            decision: d,
        };
        if let Ok(json) = serde_json::to_string(&record) {
            let name = name.to_owned();
            self.0.publish(&name, "decision", json);
        }
    }

    fn close(&mut self) {
        self.0.close();
    }
}

/// One stream item for people: a decision line naming its agent, a
/// divergence, or the drop marker (`json` is the item's JSON object).
pub fn render(json: &str, colour: bool) -> String {
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => return format!("{}\n", crate::logging::escape(json)),
    };
    let pad = |agent: &str| format!("{:<10} ", crate::logging::escape(agent));
    match serde_json::from_value::<Marker>(value.clone()) {
        Ok(Marker::Dropped { count }) => {
            return format!(
                "{:>12}  {count} event{} dropped (this client read too slowly)\n",
                "...",
                if count == 1 { "" } else { "s" }
            )
        }
        Ok(Marker::ShadowDivergence {
            t,
            agent,
            by,
            decision,
        }) => {
            let t = Timestamp::from_nanos(t);
            let what = serde_json::from_value::<Decision>(decision)
                .map(|d| crate::host::observe::describe(t, &d).trim().to_owned())
                .unwrap_or_else(|_| "a decision".to_owned());
            return format!(
                "{:>12}  {}shadow-divergence      only the {} policy decided {}\n",
                crate::host::observe::millis(t),
                pad(&agent),
                crate::logging::escape(&by),
                what
            );
        }
        Err(_) => {}
    }
    let t = Timestamp::from_nanos(value["t"].as_u64().unwrap_or_default());
    let agent = value["agent"].as_str().unwrap_or("-");
    let line = match serde_json::from_value::<Decision>(value.clone()) {
        Ok(d) => crate::host::observe::render(t, &d, colour),
        // A watcher of a newer drctl may decide what this one cannot parse.
        Err(_) => format!(
            "{:>12}  {}",
            crate::host::observe::millis(t),
            crate::logging::escape(value["type"].as_str().unwrap_or("-"))
        ),
    };
    let (time, rest) = line.split_at(12.min(line.len()));
    format!("{time}  {}{}\n", pad(agent), rest.trim_start())
}

/// Per agent name, the session ids of `engines` (fleet: the same; one
/// agent: `agent-1` is shown as the agent's login name).
pub fn names<'a>(
    engines: impl Iterator<Item = &'a str>,
    single_name: Option<&str>,
) -> Vec<(String, String)> {
    let sessions: Vec<&str> = engines.collect();
    let map: HashMap<&str, &str> = match (sessions.as_slice(), single_name) {
        ([one], Some(name)) => [(*one, name)].into_iter().collect(),
        _ => HashMap::new(),
    };
    sessions
        .iter()
        .map(|s| ((*s).to_owned(), map.get(s).unwrap_or(s).to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub::new(vec![
            ("ann".to_owned(), "ann".to_owned()),
            ("bob".to_owned(), "bob".to_owned()),
        ])
    }

    fn event(n: usize) -> String {
        format!("{{\"n\":{n}}}")
    }

    fn drain(sub: &Subscriber) -> Vec<String> {
        std::iter::from_fn(|| sub.try_next())
            .map_while(|n| n.json())
            .collect()
    }

    #[test]
    fn a_client_that_does_not_read_loses_what_does_not_fit_and_is_told_where() {
        let hub = hub();
        let slow = hub.subscribe(None, false).unwrap();
        let fast = hub.subscribe(None, false).unwrap();
        let mut fast_seen = Vec::new();
        for n in 0..QUEUE + 10 {
            hub.publish("ann", "decision", event(n));
            // The fast client keeps up; the slow one reads nothing yet.
            fast_seen.extend(drain(&fast));
        }
        let expected: Vec<String> = (0..QUEUE + 10).map(event).collect();
        assert_eq!(fast_seen, expected, "the fast client loses nothing");
        // The slow client reads now: the first QUEUE, then the marker; the
        // marker is there even though nothing came after the gap.
        let seen = drain(&slow);
        assert_eq!(seen.len(), QUEUE + 1);
        assert_eq!(seen[..QUEUE], expected[..QUEUE]);
        assert_eq!(seen[QUEUE], r#"{"type":"dropped","count":10}"#);
        // What comes after the gap follows the marker, in order.
        hub.publish("ann", "decision", event(5000));
        assert_eq!(drain(&slow), [event(5000)]);
    }

    #[test]
    fn the_marker_sits_at_the_gap_when_events_follow_it() {
        let hub = hub();
        let slow = hub.subscribe(Some("bob"), false).unwrap();
        for n in 0..QUEUE + 3 {
            hub.publish("bob", "decision", event(n));
            // Other agents' events neither fill nor count against bob's client.
            hub.publish("ann", "decision", event(99_999));
        }
        // Half read, then more come.
        let first: Vec<String> = (0..QUEUE / 2)
            .filter_map(|_| slow.try_next().and_then(|n| n.json()))
            .collect();
        hub.publish("bob", "decision", event(7777));
        let rest = drain(&slow);
        let mut all = first;
        all.extend(rest);
        assert_eq!(all.len(), QUEUE + 2);
        assert_eq!(all[QUEUE - 1], event(QUEUE - 1));
        assert_eq!(all[QUEUE], r#"{"type":"dropped","count":3}"#);
        assert_eq!(all[QUEUE + 1], event(7777));
    }

    #[test]
    fn clients_are_bounded_and_an_unknown_agent_is_named() {
        let hub = hub();
        let held: Vec<_> = (0..MAX_CLIENTS)
            .map(|_| hub.subscribe(None, false).unwrap())
            .collect();
        assert_eq!(
            hub.subscribe(None, false).unwrap_err(),
            SubscribeError::Busy
        );
        drop(held);
        assert_eq!(hub.clients(), 0);
        let e = hub.subscribe(Some("cid"), false).unwrap_err().to_string();
        assert_eq!(e, "this watcher does not run agent cid; it runs ann, bob");
    }

    #[test]
    fn the_recent_ones_come_first_then_the_end_when_the_watcher_stops() {
        let hub = hub();
        hub.publish("ann", "decision", event(1));
        hub.publish("bob", "decision", event(2));
        let sub = hub.subscribe(Some("ann"), true).unwrap();
        hub.publish("ann", "decision", event(3));
        hub.close();
        let items: Vec<Next> = (0..3).filter_map(|_| sub.try_next()).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0].json(), Some(event(1)));
        assert_eq!(items[1].json(), Some(event(3)));
        assert!(matches!(items[2], Next::End));
    }

    #[test]
    fn items_for_people() {
        let d = r#"{"t":40000000000,"agent":"bob","type":"switchover-started","reason":"telephony-timeout","from":"site1","to":"site2"}"#;
        assert_eq!(
            render(d, false),
            "    +40.000s  bob        switchover-started     telephony-timeout site1 -> site2\n"
        );
        assert_eq!(
            render(r#"{"type":"dropped","count":3}"#, false),
            "         ...  3 events dropped (this client read too slowly)\n"
        );
    }
}

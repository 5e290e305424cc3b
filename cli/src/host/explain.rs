//! `drctl replay --explain`: beside each decision, the rule that made it
//! (SPEC §3), the input that caused it (the recording's line, or the timer
//! and when it was armed) and the config values the rule used, with where
//! each came from.
//!
//! The observer sees what the host feeds the engine in the order the engine
//! sees it: a backend output (from the replay plugin, in the recording's
//! order), an operator input, or a timer about to fire. A decision is
//! explained by the last of these, which is what the engine was handling.

use crate::host::observe::{describe, DecisionRecord, Observer};
use drctl_plugin_api::messages::Output;
use drctl_policy::{
    Alarm, Decision, Engine, Event, LogoutClass, PendingTimer, Reason, SuppressWhy, Timestamp,
};
use drctl_protocol::recording::{Kind, RecordReader, RecordingError};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The rule (SPEC §3 id) behind a decision, and the config keys it reads.
pub fn rule(d: &Decision) -> (&'static str, &'static [&'static str]) {
    const BACKOFF: &[&str] = &[
        "startup.backoff.initial",
        "startup.backoff.factor",
        "startup.backoff.max",
        "startup.backoff.jitter",
    ];
    const E2_KEYS: &[&str] = &[
        "policy.failback",
        "policy.failback-after",
        "policy.failback-probe-interval",
    ];
    type Rule = (&'static str, &'static [&'static str]);
    let by_reason = |r: &Reason| -> Rule {
        match r {
            Reason::StartupRelocate => ("S4", &[]),
            Reason::TelephonyTimeout => ("D1", &["policy.site-timeout"]),
            Reason::SipRegisterTimeout => ("D4", &["policy.site-sip-register-timeout"]),
            Reason::GracefulShutdown => ("D4", &[]),
            Reason::Operator => ("W3", &[]),
            Reason::Failback => ("E2", E2_KEYS),
            Reason::PreferredChanged => {
                ("E5", &["policy.directives", "genesys.preferred-app-option"])
            }
            Reason::Directive => ("E5", &["policy.directives", "genesys.evacuate-option"]),
        }
    };
    match d {
        Decision::StartupConnected { .. } => ("S1", &["startup.first-site"]),
        Decision::StartupFailed { .. } => ("S1", &["startup.timeout"]),
        Decision::SwitchoverStarted { reason, .. }
        | Decision::SwitchoverCompleted { reason, .. } => by_reason(reason),
        Decision::SwitchoverFailed { .. } => ("W4", BACKOFF),
        // A held failback is E2's; any other held trigger is the holding rule's.
        Decision::SwitchoverSuppressed {
            reason: Reason::Failback,
            ..
        } => ("E2", E2_KEYS),
        Decision::SwitchoverSuppressed { why, .. } => match why {
            SuppressWhy::HoldDown => ("E1", &["policy.hold-down"]),
            SuppressWhy::Paused => ("E3", &[]),
            SuppressWhy::InProgress => ("D6", &[]),
            SuppressWhy::AlreadyOnSite | SuppressWhy::UnknownSite => ("W3", &[]),
        },
        Decision::AlarmRaised { alarm, .. } | Decision::AlarmCleared { alarm } => match alarm {
            Alarm::TelephonyServiceDown => ("D1", &["policy.site-timeout"]),
            Alarm::ConfigurationServiceDown => ("D2", &[]),
            Alarm::StatisticServiceDown => ("D3", &[]),
            Alarm::SipRegistrationLost => ("D4", &["policy.site-sip-register-timeout"]),
            Alarm::PreferredSiteUnreachable => ("S4", &[]),
            Alarm::PreferredSiteUnknown => ("S2", &[]),
            Alarm::SwitchoverFailed => ("W4", BACKOFF),
            Alarm::BackendDisconnected => ("D5", &[]),
            Alarm::RecordingFailed => ("host", &["--record"]),
        },
        Decision::ApplicationFallback { .. } => ("S3", &[]),
        Decision::LogoutClassified { class, .. } => match class {
            LogoutClass::Supervisor => ("D4", &["policy.supervisor-logout-reasons"]),
            LogoutClass::Manual | LogoutClass::DrForce | LogoutClass::GracefulShutdown => {
                ("D4", &[])
            }
        },
        // Not a SPEC rule: the host's gates (issue 17).
        Decision::GateRefused { .. } | Decision::GateSkipped { .. } => ("gates", &["switch.gates"]),
    }
}

/// What the engine was handling when it decided.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// A backend event or command result from the recording.
    Record {
        /// Its line in the recording (`None`: not found in order).
        line: Option<u64>,
        /// What it said, briefly.
        what: String,
    },
    /// An operator input (start, switch, pause, resume, shutdown).
    Operator {
        /// Which.
        what: String,
    },
    /// A timer of the engine fired.
    Timer {
        /// Which timer (e.g. `site-timeout`).
        timer: String,
        /// When it was armed (session time, ns).
        armed: Option<u64>,
        /// When it was due (ns).
        due: u64,
    },
}

impl Cause {
    fn to_text(&self) -> String {
        match self {
            Cause::Record {
                line: Some(l),
                what,
            } => format!("line {l}: {what}"),
            Cause::Record { line: None, what } => what.clone(),
            Cause::Operator { what } => format!("operator {what}"),
            Cause::Timer { timer, armed, due } => {
                let due = Timestamp::from_nanos(*due);
                match armed {
                    Some(a) => format!(
                        "timer {timer} armed at {}, due {due}",
                        Timestamp::from_nanos(*a)
                    ),
                    None => format!("timer {timer} due {due}"),
                }
            }
        }
    }
}

/// A config value a rule used, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Used {
    /// The dotted key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Where it came from (the recording, `--set`, a default).
    pub origin: String,
}

/// The explaining observer: prints each decision with its explanation.
pub struct Explainer<W: Write> {
    out: W,
    json: bool,
    /// The recording's events and results, read in step with the replay.
    records: RecordReader,
    cause: Option<Cause>,
    /// (timer, due) -> when it was first seen armed.
    armed: HashMap<(String, u64), u64>,
    /// Effective config values by dotted key, with their origin.
    config: HashMap<String, (String, String)>,
    /// The one agent of a fleet recording replayed (`--agent`): the
    /// others' records are not its causes.
    session: Option<String>,
}

impl<W: Write> Explainer<W> {
    /// An explainer of the replay of `path` under `cfg`, printing to `out`.
    pub fn new(
        path: &Path,
        cfg: &drctl_config::Config,
        out: W,
        json: bool,
    ) -> Result<Self, RecordingError> {
        let (_, records) = RecordReader::open(path)?;
        let config = cfg
            .origins()
            .into_iter()
            .map(|l| {
                // TOML renders strings quoted; the value is what matters here.
                let value = l.value.trim_matches('"').to_owned();
                (l.key, (value, l.origin.to_string()))
            })
            .collect();
        Ok(Explainer {
            out,
            json,
            records,
            cause: None,
            armed: HashMap::new(),
            config,
            session: None,
        })
    }

    /// Explains the decisions of one agent of a fleet recording.
    pub fn only_session(mut self, session: String) -> Self {
        self.session = Some(session);
        self
    }

    /// The line of the next recorded event or result at `t` (the replay
    /// plugin emits them in the recording's order).
    fn line_of(&mut self, t: Timestamp) -> Option<u64> {
        while let Ok(Some(rec)) = self.records.next_record() {
            let theirs = self
                .session
                .as_deref()
                .is_some_and(|s| rec.session().as_deref() != Some(s));
            if matches!(rec.kind, Kind::Event | Kind::Result) && !theirs {
                return (rec.t == t.as_nanos()).then_some(rec.line);
            }
        }
        None
    }

    fn used(&self, keys: &[&str]) -> Vec<Used> {
        keys.iter()
            .map(|k| {
                // Not set locally: the DR options come from the preferred
                // AIL Application (S3), anything else is drctl's default.
                let (value, origin) = self.config.get(*k).cloned().unwrap_or_else(|| {
                    let dr = matches!(
                        *k,
                        "policy.site-timeout" | "policy.site-sip-register-timeout"
                    );
                    let origin = if dr {
                        "not set locally: the AIL Application's (S3)"
                    } else {
                        "default"
                    };
                    ("(not set)".to_owned(), origin.to_owned())
                });
                Used {
                    key: (*k).to_owned(),
                    value,
                    origin,
                }
            })
            .collect()
    }
}

/// A brief of a backend output: `event service_status telephony off (epoch 2)`.
fn brief(output: &Output) -> String {
    match output {
        Output::Event { epoch, event, .. } => {
            let body = serde_json::to_value(event).unwrap_or_default();
            let mut s = format!("event {}", body["type"].as_str().unwrap_or("?"));
            for k in ["service", "status", "dn", "reason"] {
                if let Some(v) = body.get(k).and_then(|v| v.as_str()) {
                    s.push(' ');
                    s.push_str(v);
                }
            }
            format!("{s} (epoch {epoch})")
        }
        Output::Result { id, result, .. } => {
            let body = serde_json::to_value(result).unwrap_or_default();
            let what = match (body.get("Ok"), body.get("Err")) {
                (Some(ok), _) => ok["type"].as_str().unwrap_or("ok").to_owned(),
                (_, Some(err)) => format!("failed: {}", err["message"].as_str().unwrap_or("")),
                _ => body.to_string(),
            };
            format!("result of command {id}: {what}")
        }
        other => format!("{:?}", other).chars().take(80).collect(),
    }
}

impl<W: Write> Observer for Explainer<W> {
    fn output(&mut self, t: Timestamp, output: &Output) {
        if matches!(output, Output::Event { .. } | Output::Result { .. }) {
            let line = self.line_of(t);
            self.cause = Some(Cause::Record {
                line,
                what: brief(output),
            });
        }
    }

    fn input(&mut self, _t: Timestamp, event: &Event) {
        let what = format!("{event:?}").to_lowercase();
        self.cause = Some(Cause::Operator { what });
    }

    fn timeout(&mut self, t: Timestamp, _agent: &str, engine: &Engine) {
        let due: Vec<PendingTimer> = engine
            .view()
            .timers
            .into_iter()
            .filter(|p| p.at <= t)
            .collect();
        if let Some(p) = due.iter().min_by_key(|p| p.at) {
            let timer = p.kind.as_str().to_owned();
            let armed = self.armed.get(&(timer.clone(), p.at.as_nanos())).copied();
            self.cause = Some(Cause::Timer {
                timer,
                armed,
                due: p.at.as_nanos(),
            });
        }
    }

    fn settled(&mut self, t: Timestamp, _agent: &str, engine: &Engine) {
        let timers = engine.view().timers;
        self.armed.retain(|(k, at), _| {
            timers
                .iter()
                .any(|p| p.kind.as_str() == k && p.at.as_nanos() == *at)
        });
        for p in timers {
            self.armed
                .entry((p.kind.as_str().to_owned(), p.at.as_nanos()))
                .or_insert(t.as_nanos());
        }
    }

    fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
        let (rule, keys) = rule(d);
        let used = self.used(keys);
        let cause = self.cause.clone();
        let written = if self.json {
            #[derive(Serialize)]
            struct Explained<'a> {
                #[serde(flatten)]
                record: DecisionRecord<'a>,
                rule: &'a str,
                cause: &'a Option<Cause>,
                config: &'a [Used],
            }
            let line = Explained {
                record: DecisionRecord {
                    agent: None,
                    t: t.as_nanos(),
                    decision: d,
                },
                rule,
                cause: &cause,
                config: &used,
            };
            serde_json::to_string(&line)
                .map(|s| writeln!(self.out, "{s}"))
                .unwrap_or(Ok(()))
        } else {
            let mut text = format!("{}\n{:>16}rule {rule}", describe(t, d), "");
            if let Some(c) = &cause {
                text.push_str(&format!("; because {}", c.to_text()));
            }
            for u in &used {
                text.push_str(&format!(
                    "\n{:>16}{} = {}  # {}",
                    "", u.key, u.value, u.origin
                ));
            }
            writeln!(self.out, "{text}")
        };
        if let Err(e) = written {
            tracing::debug!("explain output: {e}");
        }
    }

    fn close(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_and_alarm_names_a_spec_rule() {
        let started = |reason| Decision::SwitchoverStarted {
            reason,
            from: "site1".into(),
            to: "site2".into(),
        };
        assert_eq!(rule(&started(Reason::TelephonyTimeout)).0, "D1");
        assert_eq!(rule(&started(Reason::Failback)).0, "E2");
        assert_eq!(
            rule(&started(Reason::TelephonyTimeout)).1,
            ["policy.site-timeout"]
        );
        let held = Decision::SwitchoverSuppressed {
            reason: Reason::TelephonyTimeout,
            why: SuppressWhy::HoldDown,
        };
        assert_eq!(rule(&held).0, "E1");
        for alarm in Alarm::ALL {
            let deadline = None;
            let (id, _) = rule(&Decision::AlarmRaised { alarm, deadline });
            assert!(id == "host" || id.len() == 2, "{alarm:?} -> {id}");
        }
    }
}

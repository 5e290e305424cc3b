//! Observers of the host loop: decision output (text or JSON lines).

use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Engine, Timestamp};
use serde::Serialize;
use std::io::Write;

/// Sees what passes through the host loop.
pub trait Observer {
    /// A command is sent to the backend.
    fn command(&mut self, _t: Timestamp, _input: &Input) {}
    /// The backend produced an output.
    fn output(&mut self, _t: Timestamp, _output: &Output) {}
    /// The engine decided something.
    fn decision(&mut self, _t: Timestamp, _decision: &Decision) {}
    /// Everything due at `t` has been handled.
    fn settled(&mut self, _t: Timestamp, _engine: &Engine) {}
}

/// A decision record as printed with `--output json` (SPEC §6).
#[derive(Serialize)]
pub struct DecisionRecord<'a> {
    /// Nanoseconds since the session start.
    pub t: u64,
    /// The decision, flattened: `type` and its fields.
    #[serde(flatten)]
    pub decision: &'a Decision,
}

/// How decisions are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line a decision, for people.
    Text,
    /// One JSON object a line, exactly the decision records.
    Json,
}

/// Prints decisions to a writer (stdout) and to tracing.
pub struct DecisionPrinter<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> DecisionPrinter<W> {
    /// A printer in `format` to `out`.
    pub fn new(out: W, format: Format) -> Self {
        DecisionPrinter { out, format }
    }
}

/// One line for people: `+40.200s  switchover-started  telephony-timeout site1 -> site2`.
pub fn describe(t: Timestamp, d: &Decision) -> String {
    let detail = match d {
        Decision::StartupConnected { site } => format!("connected to {site}"),
        Decision::StartupFailed { error } => error.clone(),
        Decision::SwitchoverStarted { reason, from, to }
        | Decision::SwitchoverCompleted { reason, from, to } => {
            format!("{} {from} -> {to}", reason.as_str())
        }
        Decision::SwitchoverFailed { to, error } => format!("{to}: {error}"),
        Decision::SwitchoverSuppressed { reason, why } => {
            let why = serde_json::to_value(why)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{} ({why})", reason.as_str())
        }
        Decision::AlarmRaised { alarm } | Decision::AlarmCleared { alarm } => {
            alarm.as_str().to_owned()
        }
        Decision::LogoutClassified { reason, class } => {
            let class = serde_json::to_value(class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let reason = if reason.is_empty() { "(none)" } else { reason };
            format!("reason {reason}: {class}")
        }
    };
    format!("{:>12}  {:<22} {detail}", t.to_string(), d.type_name())
}

impl<W: Write> Observer for DecisionPrinter<W> {
    fn decision(&mut self, t: Timestamp, d: &Decision) {
        tracing::info!(target: "drctl::decision", t = t.as_nanos(), r#type = d.type_name(), "{}", describe(t, d).trim_start());
        let written = match self.format {
            Format::Json => {
                let record = DecisionRecord {
                    t: t.as_nanos(),
                    decision: d,
                };
                serde_json::to_writer(&mut self.out, &record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(self.out))
            }
            Format::Text => writeln!(self.out, "{}", describe(t, d)),
        };
        // stdout closed (a pipe's reader left): nothing useful left to do with it.
        let _ = written.and_then(|()| self.out.flush());
    }
}

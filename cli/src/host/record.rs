//! The recorder (`--record FILE`): every command, backend output, decision and
//! operator input of a session as JSON Lines (SPEC §6), for `drctl replay`.

use crate::host::observe::Observer;
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Event, Timestamp};
use drctl_protocol::recording::{Header, OperatorAction, RecordWriter};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Writes a recording through a buffer, flushed at every decision and at the
/// end, so a crash loses at most the records since the last decision.
///
/// A write error (disk full) stops the recording, logged once; the session goes on.
pub struct Recorder {
    writer: Option<RecordWriter<BufWriter<File>>>,
    path: PathBuf,
    /// `recording-failed`, raised once when a write fails.
    alarm: Option<drctl_policy::Alarm>,
}

impl Recorder {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: &Path, header: &Header) -> anyhow::Result<Recorder> {
        use anyhow::Context;
        let file = File::create(path).with_context(|| format!("--record {}", path.display()))?;
        let writer = RecordWriter::new(BufWriter::with_capacity(1 << 16, file), header)
            .with_context(|| format!("--record {}", path.display()))?;
        Ok(Recorder {
            writer: Some(writer),
            path: path.to_owned(),
            alarm: None,
        })
    }

    /// Runs one write; the first error ends the recording.
    fn write(&mut self, f: impl FnOnce(&mut RecordWriter<BufWriter<File>>) -> std::io::Result<()>) {
        let Some(writer) = &mut self.writer else {
            return;
        };
        if let Err(e) = f(writer) {
            tracing::error!(
                path = %self.path.display(),
                "recording stopped: {e}; the session goes on without it"
            );
            self.writer = None;
            self.alarm = Some(drctl_policy::Alarm::RecordingFailed);
        }
    }
}

impl Observer for Recorder {
    fn command(&mut self, t: Timestamp, input: &Input) {
        self.write(|w| w.command(t.as_nanos(), input));
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        self.write(|w| w.output(t.as_nanos(), output));
    }

    fn decision(&mut self, t: Timestamp, _agent: &str, decision: &Decision) {
        self.write(|w| {
            w.decision(t.as_nanos(), decision)?;
            w.flush()
        });
    }

    fn input(&mut self, t: Timestamp, event: &Event) {
        let action = match event {
            Event::OperatorSwitch { to } => OperatorAction::Switch {
                to: to.as_ref().map(|s| s.to_string()),
            },
            Event::Pause => OperatorAction::Pause,
            Event::Resume => OperatorAction::Resume,
            Event::Shutdown => OperatorAction::Shutdown,
            // `start` is always at t = 0; backend events are recorded as outputs.
            _ => return,
        };
        self.write(|w| w.operator(t.as_nanos(), &action));
    }

    fn close(&mut self) {
        self.write(|w| w.flush());
    }

    fn take_alarm(&mut self) -> Option<drctl_policy::Alarm> {
        self.alarm.take()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
    }
}

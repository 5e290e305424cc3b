//! The recorder (`--record FILE`, `--record-dir DIR`): every command, backend
//! output, decision and operator input of a session as JSON Lines (SPEC §6),
//! for `drctl replay`.
//!
//! A recording is the evidence of an incident, so it is never destroyed by
//! accident: `--record FILE` refuses a file that exists (unless `--force`),
//! and `--record-dir` writes a new `drctl-<agent>-<UTC time>.jsonl` each run,
//! deleting only the oldest of that agent's own files beyond `--record-keep`.
//!
//! A fleet's recording (its header lists the agents) holds every agent's
//! session: each decision and each operator input for one agent names its
//! session; commands, results and events name theirs anyway (SPEC §5).

use crate::args::RecordTarget;
use crate::host::observe::Observer;
use anyhow::{anyhow, Context};
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Event, Timestamp};
use drctl_protocol::recording::{Header, OperatorAction, RecordWriter};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Writes a recording through a buffer, flushed at every decision and at the
/// end, so a crash loses at most the records since the last decision.
///
/// A write error (disk full) stops the recording, logged once; the session goes on.
pub struct Recorder {
    writer: Option<RecordWriter<BufWriter<File>>>,
    path: PathBuf,
    /// `recording-failed`, raised once when a write fails.
    alarm: Option<drctl_policy::Alarm>,
    /// A fleet's recording: decisions and operator inputs name their session.
    fleet: bool,
}

impl Recorder {
    /// Opens `target` (see the module docs) and writes the header.
    pub fn open(target: &RecordTarget, header: &Header) -> anyhow::Result<Recorder> {
        let (file, path) = match target {
            RecordTarget::File { path, force } => (create_file(path, *force)?, path.clone()),
            RecordTarget::Dir { dir, agent, keep } => {
                let (file, path) = create_in_dir(dir, agent, SystemTime::now())?;
                rotate(dir, agent, *keep, &path);
                (file, path)
            }
        };
        tracing::info!(path = %path.display(), "recording to {}", path.display());
        let writer = RecordWriter::new(BufWriter::with_capacity(1 << 16, file), header)
            .with_context(|| format!("recording {}", path.display()))?;
        Ok(Recorder {
            writer: Some(writer),
            path,
            alarm: None,
            fleet: header.is_fleet(),
        })
    }

    /// The file it writes (under `--record-dir`, the name chosen at open).
    pub fn path(&self) -> &std::path::Path {
        &self.path
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

    fn decision(&mut self, t: Timestamp, agent: &str, decision: &Decision) {
        let fleet = self.fleet;
        self.write(|w| {
            if fleet {
                w.fleet_decision(t.as_nanos(), agent, decision)?;
            } else {
                w.decision(t.as_nanos(), decision)?;
            }
            w.flush()
        });
    }

    fn input_for(&mut self, t: Timestamp, agent: Option<&str>, event: &Event) {
        let action = match event {
            Event::OperatorSwitch { to } => OperatorAction::Switch {
                to: to.as_ref().map(|s| s.to_string()),
            },
            Event::Pause => OperatorAction::Pause,
            Event::Resume => OperatorAction::Resume,
            Event::Shutdown => OperatorAction::Shutdown,
            Event::GateVerdict(verdict) => OperatorAction::Gates {
                verdict: verdict.clone(),
            },
            // `start` is always at t = 0; backend events are recorded as outputs.
            _ => return,
        };
        let fleet = self.fleet;
        self.write(|w| match fleet {
            true => w.fleet_operator(t.as_nanos(), agent, &action),
            false => w.operator(t.as_nanos(), &action),
        });
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

/// `--record FILE`: a new file; an existing regular file only with `force`
/// (then truncated). A device or FIFO (`/dev/null`, a pipe to a compressor)
/// is written to as it is: there is no recording there to lose.
fn create_file(path: &Path, force: bool) -> anyhow::Result<File> {
    let context = || format!("--record {}", path.display());
    match private_new().open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(context),
    }
    // Opened without truncating, then looked at: what is checked is what is written.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(context)?;
    if file.metadata().with_context(context)?.is_file() {
        if !force {
            return Err(anyhow!(
                "--record {}: the file exists; drctl never overwrites a recording \
                 (--force replaces it; --record-dir DIR writes a new file each run)",
                path.display()
            ));
        }
        file.set_len(0).with_context(context)?;
    }
    Ok(file)
}

/// Options for a new recording file, 0600 whatever the umask: it holds the
/// configuration, hosts and the agent's name.
fn private_new() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

/// The prefix of `agent`'s recordings: `drctl-<agent>-`, with anything but
/// letters, digits, `-`, `_` and `.` in the name as `_`.
fn prefix(agent: &str) -> String {
    format!("drctl-{}-", crate::paths::file_safe(agent))
}

/// `20261128T023422Z`: ISO 8601 basic format, UTC, sorting as time does.
fn stamp(now: SystemTime) -> String {
    humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// How many names a second may take (`…Z.jsonl`, `…Z-1.jsonl`, …): restarts
/// within one second do not collide.
const SAME_SECOND: u32 = 100;

/// `--record-dir DIR`: a new `drctl-<agent>-<stamp>.jsonl` in `dir` (made
/// private if missing), never an existing file.
fn create_in_dir(dir: &Path, agent: &str, now: SystemTime) -> anyhow::Result<(File, PathBuf)> {
    crate::paths::create_private_dir(dir)
        .with_context(|| format!("--record-dir {}", dir.display()))?;
    let base = format!("{}{}", prefix(agent), stamp(now));
    for n in 0..SAME_SECOND {
        let name = match n {
            0 => format!("{base}.jsonl"),
            n => format!("{base}-{n}.jsonl"),
        };
        let path = dir.join(name);
        match private_new().open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow!("--record-dir {}: {e}", path.display())),
        }
    }
    Err(anyhow!(
        "--record-dir {}: {SAME_SECOND} recordings named {base}* already exist",
        dir.display()
    ))
}

/// Whether `name` is one of `agent`'s recordings as [`create_in_dir`] names
/// them: `<prefix>YYYYMMDDTHHMMSSZ[-N].jsonl`, nothing else.
fn is_own(name: &str, prefix: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(".jsonl"))
    else {
        return false;
    };
    let (stamp, n) = rest.split_once('-').unwrap_or((rest, "0"));
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && !n.is_empty()
        && n.len() <= 2
        && n.bytes().all(|c| c.is_ascii_digit())
}

/// The sort key of an own recording's name: its stamp, then its number.
fn order(name: &str, prefix: &str) -> (String, u32) {
    let rest = name
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(".jsonl"))
        .unwrap_or(name);
    let (stamp, n) = rest.split_once('-').unwrap_or((rest, "0"));
    (stamp.to_owned(), n.parse().unwrap_or(0))
}

/// Deletes `agent`'s oldest recordings in `dir` beyond the newest `keep`
/// (`current`, just made, is always kept). Only regular files named as drctl
/// names them are touched; a failure is logged, the session goes on.
fn rotate(dir: &Path, agent: &str, keep: u32, current: &Path) {
    let prefix = prefix(agent);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("--record-dir {}: not rotated: {e}", dir.display());
            return;
        }
    };
    let mut own: Vec<(String, u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            is_own(&name, &prefix).then(|| {
                let (stamp, n) = order(&name, &prefix);
                (stamp, n, e.path())
            })
        })
        .filter(|(_, _, p)| p != current)
        .collect();
    own.sort();
    // Newest last; the current one counts towards `keep`.
    let keep_old = usize::try_from(keep.saturating_sub(1)).unwrap_or(usize::MAX);
    let excess = own.len().saturating_sub(keep_old);
    for (_, _, path) in own.into_iter().take(excess) {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!("--record-keep {keep}: deleted {}", path.display()),
            Err(e) => tracing::warn!("--record-keep {keep}: {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_sort_as_time_and_only_drctls_own_are_recognised() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(stamp(t), "20261118T110640Z");
        let p = prefix("agent 007");
        assert_eq!(p, "drctl-agent_007-");
        assert!(is_own("drctl-agent_007-20261121T083320Z.jsonl", &p));
        assert!(is_own("drctl-agent_007-20261121T083320Z-12.jsonl", &p));
        for other in [
            "drctl-agent_007-20261121T083320Z.jsonl.bak",
            "drctl-agent_007-latest.jsonl",
            "drctl-agent_0070-20261121T083320Z.jsonl",
            "drctl-agent_007-20261121T083320Z-.jsonl",
            "drctl-agent_007-20261121T083320Z-123.jsonl",
            "drctl-agent_007-2026112xT083320Z.jsonl",
            "incident.jsonl",
        ] {
            assert!(!is_own(other, &p), "{other}");
        }
    }
}

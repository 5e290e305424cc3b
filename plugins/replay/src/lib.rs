//! `replay`: a drctl backend that plays back a recording (SPEC §6), driven only
//! by host time (`DETERMINISTIC`), so `drctl replay` runs it on the virtual clock.
//!
//! Config (JSON, from the host): `{"recording": "/path/to/incident.jsonl"}`,
//! with `"sessions": ["ann"]` to play only some agents of a fleet recording.
//!
//! - **Events** come out at their recorded times, whatever the host does.
//! - **Commands** are matched against the recorded commands by kind and order,
//!   not by time, each session's among its own (a fleet recording holds many):
//!   the host's n-th command for a session meets the recording's next
//!   unmatched command of that session. When they agree (same command, passwords aside) the recorded
//!   result is answered with the host's id, as long after the command as it was
//!   recorded (the recorded latency).
//! - **Divergence**: when they disagree, or the recording has no command left,
//!   the backend emits an [`Output::Divergence`] with both sides and answers the
//!   host's command at once with an error result whose message begins
//!   `replay: diverged:`; the recorded command stays next in line. So a connect
//!   the recording does not have fails (W4 for the engine), a kill-factory or
//!   subscribe it does not have is refused, and the replay goes on.
//! - A command recorded without a result (the recording ends first) is never answered.
//!
//! One reader streams the file for events, commands and results (the
//! commands read on alone when they must look far ahead of the events or
//! the events of them; an agent whose commands run far from the recording's
//! order gets a cursor of its own): memory stays bounded whatever the
//! recording's size. Recorded
//! events cross the ABI as the recording has them (their lines are the
//! events' JSON), unparsed here: the host reads them once.

pub mod player;

use drctl_plugin_api::abi::Capabilities;
use drctl_plugin_api::messages::{Input, Output};
use drctl_plugin_api::plugin::{Backend, HostHandle};
use serde::Deserialize;
use std::path::PathBuf;

pub use player::Player;

/// The replay backend's config, as the host sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayConfig {
    recording: PathBuf,
    /// Play only these sessions' records (some agents of a fleet recording).
    #[serde(default)]
    sessions: Option<Vec<String>>,
}

/// The plugin: a [`Player`] behind the ABI.
pub struct ReplayBackend {
    player: Player,
    host: HostHandle,
    reported: bool,
}

impl ReplayBackend {
    /// Logs the first fault reading the recording; the host validated the file
    /// before the replay, so this only happens if it changed underneath.
    fn report(&mut self) {
        if self.reported {
            return;
        }
        if let Some(e) = self.player.fault() {
            self.host
                .error(format!("replay stopped reading the recording: {e}"));
            self.reported = true;
        }
    }
}

impl Backend for ReplayBackend {
    fn create(config: serde_json::Value, host: HostHandle) -> Result<Self, String> {
        let cfg: ReplayConfig =
            serde_json::from_value(config).map_err(|e| format!("replay backend config: {e}"))?;
        let sessions = cfg.sessions.map(|s| s.into_iter().collect());
        let player = Player::open_for(&cfg.recording, sessions).map_err(|e| e.to_string())?;
        host.debug(format!("replaying {}", cfg.recording.display()));
        Ok(ReplayBackend {
            player,
            host,
            reported: false,
        })
    }

    fn handle(&mut self, now_ns: u64, input: Input) -> Result<(), String> {
        self.player.handle(now_ns, input);
        self.report();
        Ok(())
    }

    fn poll_output(&mut self, now_ns: u64) -> Option<Output> {
        let out = self.player.poll_output(now_ns);
        self.report();
        out
    }

    fn poll_output_json(&mut self, now_ns: u64, out: &mut Vec<u8>) -> Result<bool, String> {
        let out = self.player.poll_output_json(now_ns, out);
        self.report();
        out
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.player.poll_timeout()
    }
}

drctl_plugin_api::export_plugin! {
    backend: ReplayBackend,
    name: "replay",
    capabilities: Capabilities::DETERMINISTIC,
}

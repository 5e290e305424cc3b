//! What goes into the engine: backend events, command results and operator requests.
//!
//! Backend events and command results are the protocol's own types
//! (`drctl-protocol`, SPEC §5), as the plugin sent them.

use crate::config::SiteName;
use drctl_protocol::CommandResult;

/// A connection generation: each successful `connect` yields a new one (D5).
pub type Epoch = u64;

/// An event a backend reports on a connection (SPEC §5): the wire event
/// itself, named apart from the engine's own [`Event`].
pub type BackendEvent = drctl_protocol::Event;

/// Identifies a command the engine issued, so its result can be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(pub u64);

/// Everything the engine reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Begin startup (S1).
    Start,
    /// The answer to a command the engine issued.
    CommandResult {
        /// The command's id.
        id: CommandId,
        /// Its reply, or the backend's error.
        result: CommandResult,
    },
    /// An event from a backend connection.
    Backend {
        /// The connection it came from (D5).
        epoch: Epoch,
        /// What happened.
        event: BackendEvent,
    },
    /// An operator asks for a switchover (W3), to a named site or the other one.
    OperatorSwitch {
        /// The target site; `None` means the other site.
        to: Option<SiteName>,
    },
    /// Pause automatic switchovers (E3).
    Pause,
    /// Resume automatic switchovers (E3).
    Resume,
    /// Stop: shut the backend down and go quiet.
    Shutdown,
    /// The host's answer to [`crate::Action::CheckGates`]: the switchover
    /// waiting on its gates starts, or is refused.
    GateVerdict(drctl_protocol::GateVerdict),
}

//! What comes out of the engine: backend commands and decision records.
//!
//! Both are the protocol's own types (`drctl-protocol`): a command is the wire
//! command, a decision the record; the engine only pairs a command with the id
//! its result will carry.

use crate::input::CommandId;
use drctl_protocol::{Decision, Reason, SiteName};

/// A backend command (SPEC §5), the wire type itself. The engine leaves
/// `Connect`'s password empty: the host fills it in at the edge, so the
/// secret never reaches the engine.
pub type CommandKind = drctl_protocol::Command;

/// A command with the id its result will carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Matches the result to the command.
    pub id: CommandId,
    /// What to do.
    pub kind: CommandKind,
}

/// What the engine asks its caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a command to the backend; feed its result back as an event.
    Command(Command),
    /// Record (print, log, alarm) a decision.
    Decision(Decision),
    /// Run the switchover gates configured for `reason` (the host's
    /// `[[switch.gates]]`) and answer with [`crate::Event::GateVerdict`]; the
    /// switchover waits for it (only for the reasons in
    /// [`crate::EngineConfig::gated`]).
    CheckGates {
        /// The switchover's reason.
        reason: Reason,
        /// The site it would leave.
        from: SiteName,
        /// Its target.
        to: SiteName,
    },
}

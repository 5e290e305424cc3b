//! `drctl-protocol`: drctl's one message vocabulary, serde only (no I/O
//! beyond the recording's reader and writer over `std::io`).
//!
//! - [`messages`]: the backend messages (SPEC §5) as they cross the plugin
//!   boundary: [`Input`] / [`Output`], [`Command`], [`Reply`], [`Event`].
//!   The policy engine takes and gives these very types.
//! - [`decision`]: the decision records (SPEC §6) and the names they use.
//! - [`recording`]: the recording format (SPEC §6), with the operator
//!   actions it records, its writer and its streaming reader.
//! - [`memo`]: parsing the bytes of a repeated line once (a replay's events and decisions).

#![warn(missing_docs)]

pub mod decision;
pub mod memo;
pub mod messages;
pub mod recording;

pub use decision::{
    Alarm, Decision, GateRefusal, GateVerdict, LogoutClass, Reason, SiteName, SuppressWhy,
};
pub use messages::{
    Command, CommandError, CommandResult, ConfigObject, Event, Input, Listener, Output, Password,
    RecordedCommand, Reply, Service, ServiceState, SessionId,
};
pub use recording::OperatorAction;

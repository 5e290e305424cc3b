//! `drctl-policy`: the sans-IO Disaster Recovery policy engine of drctl.
//!
//! The engine implements the desktop-side DR procedure of a two-site Genesys
//! SIP Server deployment (SPEC §3: rules S1–S5, D1–D6, W1–W4, E1–E4). It
//! owns no clock, socket or thread: the caller feeds it events with the time
//! they happened, carries out the actions it asks for, and calls it back at
//! the deadline it names. The same engine runs on the real clock, on a
//! virtual clock and under replay, and every decision is reproducible from
//! the inputs and the RNG seed.
//!
//! ```
//! use drctl_policy::{Action, Engine, EngineConfig, Event, Timestamp};
//!
//! let mut engine = Engine::new(EngineConfig::two_sites("agent007")).unwrap();
//! engine.handle_event(Timestamp::ZERO, Event::Start);
//! while let Some(action) = engine.poll_action() {
//!     match action {
//!         // Send to the backend; feed its answer back as Event::CommandResult.
//!         Action::Command(cmd) => println!("command {:?}", cmd.kind),
//!         // Print, record, alarm.
//!         Action::Decision(d) => println!("decision {}", d.type_name()),
//!     }
//! }
//! // Sleep (or jump, on a virtual clock) until engine.poll_timeout(), then
//! // call engine.handle_timeout(now).
//! ```
//!
//! Where each rule lives: `startup.rs` (S1–S5), `detection.rs` (D1–D5),
//! `switchover.rs` (D6, W1–W4, E1, E3, E4), `engine.rs` (timers, E2 arming).

#![warn(missing_docs)]

mod backoff;
mod config;
mod detection;
mod engine;
mod failback;
mod input;
mod output;
mod startup;
mod switchover;
mod time;
mod timers;

#[cfg(test)]
mod timer_ties;

pub use config::{BackoffConfig, ConfigError, EngineConfig, Failback, SiteConfig, SiteName};
pub use detection::{DR_FORCE_LOGOUT, GRACEFUL_SHUTDOWN_LOGOUT};
pub use engine::{Engine, ListenerStatus, PhaseKind, SwitchoverView, View};
pub use input::{BackendEvent, CommandId, CommandOutput, Epoch, Event, Service, ServiceStatus};
pub use output::{
    Action, Alarm, Command, CommandKind, Decision, Listener, LogoutClass, Reason, SuppressWhy,
};
pub use time::Timestamp;
pub use timers::{PendingTimer, TimerKind};

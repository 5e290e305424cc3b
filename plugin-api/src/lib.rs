//! `drctl-plugin-api`: the stable C ABI between the drctl host and its backend
//! plugins, and safe helpers for both sides.
//!
//! - [`messages`]: [`Input`] / [`Output`] and friends (SPEC §5), JSON on the
//!   wire: `drctl-protocol`'s, re-exported for plugin authors.
//! - [`abi`]: the `#[repr(C)]` header, vtable and buffer types (SPEC §4).
//! - [`plugin`]: for plugin authors, the [`Backend`] trait and [`export_plugin!`].
//! - [`duration`]: durations as people write them, bounded ([`duration::MAX`]).
//! - [`loader`]: for the host, [`find_plugin`](loader::find_plugin),
//!   [`load`](loader::load), [`Plugin`](loader::Plugin) and [`Instance`](loader::Instance).
//!
//! A plugin in a few lines:
//!
//! ```
//! use drctl_plugin_api::{export_plugin, Backend, Capabilities, HostHandle, Input, Output};
//! use std::collections::VecDeque;
//!
//! struct Null { out: VecDeque<Output> }
//!
//! impl Backend for Null {
//!     fn create(_config: serde_json::Value, host: HostHandle) -> Result<Self, String> {
//!         host.info("null backend up");
//!         Ok(Null { out: VecDeque::new() })
//!     }
//!     fn handle(&mut self, _now_ns: u64, input: Input) -> Result<(), String> {
//!         let Input::Command { session, id, .. } = input;
//!         self.out.push_back(Output::Result {
//!             session, id, result: Ok(drctl_plugin_api::Reply::Done),
//!         });
//!         Ok(())
//!     }
//!     fn poll_output(&mut self, _now_ns: u64) -> Option<Output> { self.out.pop_front() }
//!     fn poll_timeout(&self) -> Option<u64> { None }
//! }
//!
//! export_plugin! {
//!     backend: Null,
//!     name: "null",
//!     capabilities: Capabilities::DETERMINISTIC,
//! }
//! ```

pub mod abi;
pub mod duration;
pub mod loader;
pub mod plugin;

pub use drctl_protocol::messages;

pub use abi::{Capabilities, LogLevel, ABI_MAJOR, ABI_MINOR};
pub use loader::{Encoding, Instance, LogSink, Plugin, PluginError, PluginInfo};
pub use messages::{
    Command, CommandError, CommandResult, Event, Input, Listener, Output, Password,
    RecordedCommand, Reply, Service, ServiceState, SessionId,
};
pub use plugin::{Backend, HostHandle};

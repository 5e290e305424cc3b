//! `drctl-policy`: the sans-IO Disaster Recovery policy engine of drctl.
//!
//! The engine implements the desktop-side DR procedure of a two-site Genesys
//! SIP Server deployment (SPEC §3: rules S1–S5, D1–D6, W1–W5, E1–E4). It
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
//!         // Run the host's switchover gates; answer with Event::GateVerdict.
//!         Action::CheckGates { reason, .. } => println!("gates for {}", reason.as_str()),
//!     }
//! }
//! // Sleep (or jump, on a virtual clock) until engine.poll_timeout(), then
//! // call engine.handle_timeout(now).
//! ```
//!
//! # Where each rule lives
//!
//! Each rule's functions carry its id (`d1_…`, `e2_…`), and each rule's
//! module arms, cancels and fires its own timers in the one table
//! (`timers.rs`) that `poll_timeout`, `handle_timeout` and `view` read.
//!
//! | Rule | File | Functions | Timer |
//! |---|---|---|---|
//! | S1 connect, backoff, `startup.timeout` | `startup.rs` | `s1_start`, `s1_begin_round`, `s1_connect_next`, `s1_on_connect_result`, `s1_w4_connect_failed`, `s1_backoff_fired`, `s1_startup_timeout_fired` | `StartupTimeout`, `Backoff` |
//! | S2 Person object | `startup.rs` | `s2_on_person_sites` | |
//! | S3 both AIL Applications (each site's CS Proxy), DR options and their source | `startup.rs` | `s3_on_application`, `s3_on_secondary_application`, `s3_fall_back_to_local`, `s3_set_dr_options`, `s3_preferred_unknown` | |
//! | S4 relocate to the preferred site | `startup.rs` | `s4_relocate_or_watch`, `s1_w4_connect_failed` (its alarm) | |
//! | S5 cached preferred site | `startup.rs` | `s5_first_site` | |
//! | D1 telephony, `site-timeout`, alarm `telephony-service-down` | `detection.rs` | `d1_on_telephony`, `d1_arm_site_timer`, `d1_cancel_site_timer`, `d1_site_timeout_fired`, `d1_sync_alarm` | `SiteTimeout` |
//! | D2 configuration | `detection.rs` | `d2_on_configuration` | |
//! | D3 statistic | `detection.rs` | `d3_on_statistic` | |
//! | D4 agent logout, `site-sip-register-timeout`, alarm `sip-registration-lost` | `detection.rs` | `d4_on_agent_logout`, `classify_logout`, `d4_on_dn_back_in_service`, `d4_arm_sip_register_timer`, `d4_cancel_sip_register_timer`, `d4_sip_register_timeout_fired` | `SipRegisterTimeout` |
//! | D5 stale epochs | `detection.rs` | `d5_on_backend`, `d5_leave_site` | |
//! | D6 one switchover at a time | `switchover.rs` | `d6_evaluate`, `d6_due_trigger` | |
//! | W1 kill factory, reconnect | `switchover.rs` | `w1_start_switchover`, `w1_on_factory_killed` | |
//! | W2 listeners | `startup.rs` | `w2_subscribe`, `w2_on_subscribed`, `w2_watching` | |
//! | W3 operator's target | `switchover.rs` | `w3_on_operator_switch` | |
//! | W4 retries | `startup.rs` | `s1_w4_connect_failed` | `Backoff` |
//! | W5 agent login | `startup.rs` | `w2_on_subscribed` (sends it), `w5_on_login` | |
//! | E1 hold-down | `switchover.rs` | `e1_arm_hold_down`, `e1_holds`, `e1_hold_down_ended` | `HoldDown` |
//! | E2 failback on evidence, back from a dead site at once | `failback.rs` | `e2_on_watching`, `e2_send_probe`, `e2_probe_fired`, `e2_on_probe_result`, `e2_health_broken`, `e2_arm_verify`, `e2_on_telephony_on`, `e2_failback_verify_fired`, `e2_penalize`, `e2_cancel_failback`; `d6_due_trigger` (its precedence) | `FailbackProbe`, `FailbackVerify` |
//! | E3 pause | `switchover.rs` | `e3_set_paused` | |
//! | E4 jitter | `switchover.rs` | `e4_jitter_elapsed`, `e4_cancel_jitter` | `SwitchoverJitter` |
//! | E5 Configuration Server directives: preferred site changed, site evacuated | `directive.rs` | `e5_on_config_changed`, `e5_due`, `e5_evacuated`, `e5_relocation_started`; `d6_due_trigger` (its precedence) | — |
//!
//! `engine.rs` holds the state, the public API and the status view;
//! `timers.rs` the timer table; `backoff.rs` the S1/W4 delay schedule.

#![warn(missing_docs)]

mod backoff;
mod config;
mod detection;
mod directive;
mod engine;
mod failback;
mod input;
mod output;
mod startup;
mod switchover;
mod time;
mod timers;

#[cfg(test)]
mod timer_tests;

pub use config::{
    BackoffConfig, ConfigError, DirectiveNames, EngineConfig, Failback, LoginConfig, SiteConfig,
    SiteName, DEFAULT_FAILBACK_PROBE_INTERVAL, FAILBACK_MAX_MULTIPLIER,
};
pub use detection::{DR_FORCE_LOGOUT, GRACEFUL_SHUTDOWN_LOGOUT};
pub use engine::{
    DrOptionSource, Engine, FailbackView, ListenerStatus, PhaseKind, SiteSource, SiteView,
    SwitchoverView, View,
};
pub use input::{BackendEvent, CommandId, Epoch, Event};
pub use output::{Action, Command, CommandKind};

// The protocol types the engine takes and gives, for its callers' convenience.
pub use drctl_protocol::{
    Alarm, CommandError, CommandResult, ConfigObject, Decision, GateRefusal, GateVerdict, Listener,
    LogoutClass, Password, Reason, Reply, Service, ServiceState, SuppressWhy,
};
pub use time::Timestamp;
pub use timers::{PendingTimer, TimerKind};

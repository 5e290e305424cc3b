//! Decision records (SPEC §6): every choice the policy engine makes, with a
//! stable `type`, and the names they use (reasons, alarms, logout classes).
//!
//! On `--output json` a decision is one object tagged `type`; in a recording
//! the same object with `t` and `kind: "decision"` added.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A site's name as configured (`site1`, `site2`, …): cheap to clone.
pub type SiteName = Arc<str>;

/// Why a switchover happens (SPEC §6 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// S4: the agent started on the secondary site.
    StartupRelocate,
    /// D1: telephony was OFF longer than `site-timeout`.
    TelephonyTimeout,
    /// D4: no EventDNBackInService within `site-sip-register-timeout`.
    SipRegisterTimeout,
    /// D4: SIP Server went into graceful shutdown.
    GracefulShutdown,
    /// W3: an operator asked.
    Operator,
    /// E2: back to the preferred site.
    Failback,
    /// E5: the agent's Person object now names the other site preferred.
    PreferredChanged,
    /// E5: the site's AIL Application says to evacuate it.
    Directive,
}

impl Reason {
    /// Every reason (the metrics show each from the start).
    pub const ALL: [Reason; 8] = [
        Reason::StartupRelocate,
        Reason::TelephonyTimeout,
        Reason::SipRegisterTimeout,
        Reason::GracefulShutdown,
        Reason::Operator,
        Reason::Failback,
        Reason::PreferredChanged,
        Reason::Directive,
    ];

    /// The stable name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::StartupRelocate => "startup-relocate",
            Reason::TelephonyTimeout => "telephony-timeout",
            Reason::SipRegisterTimeout => "sip-register-timeout",
            Reason::GracefulShutdown => "graceful-shutdown",
            Reason::Operator => "operator",
            Reason::Failback => "failback",
            Reason::PreferredChanged => "preferred-changed",
            Reason::Directive => "directive",
        }
    }

    /// Automatic switchovers are the ones pause (E3) and jitter (E4) apply to.
    pub fn is_automatic(self) -> bool {
        !matches!(self, Reason::StartupRelocate | Reason::Operator)
    }

    /// Hold-down (E1) spares graceful shutdown: the site is going away regardless.
    pub fn held_down(self) -> bool {
        // E5: a relocation is one try, ordered by ops: like S4, not held.
        self.is_automatic() && !matches!(self, Reason::GracefulShutdown | Reason::PreferredChanged)
    }
}

/// An alarm for upstream monitoring (SPEC §6 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alarm {
    /// D1: the site's telephony is OFF (raised on every OFF; with
    /// `site-timeout` on, a switchover is pending at the alarm's deadline).
    TelephonyServiceDown,
    /// D2: both Configuration Servers are unavailable.
    ConfigurationServiceDown,
    /// D3: both Stat Servers are unavailable.
    StatisticServiceDown,
    /// D4: `dr-force_logout`: the agent's SIP registration expired; cleared
    /// by EventDNBackInService.
    SipRegistrationLost,
    /// S4: the preferred site could not be reached; the agent stays on the secondary.
    PreferredSiteUnreachable,
    /// S2/S3: the Person or AIL Application objects did not name a known site.
    PreferredSiteUnknown,
    /// W4: a switchover target could not be reached.
    SwitchoverFailed,
    /// The backend lost the AIL session; drctl is reconnecting.
    BackendDisconnected,
    /// Raised by the host, never the engine: the recording could not be
    /// written (disk full); the session goes on without it.
    RecordingFailed,
}

impl Alarm {
    /// Every alarm, in a fixed order (the bit order of the engine's alarm set).
    pub const ALL: [Alarm; 9] = [
        Alarm::TelephonyServiceDown,
        Alarm::ConfigurationServiceDown,
        Alarm::StatisticServiceDown,
        Alarm::SipRegistrationLost,
        Alarm::PreferredSiteUnreachable,
        Alarm::PreferredSiteUnknown,
        Alarm::SwitchoverFailed,
        Alarm::BackendDisconnected,
        Alarm::RecordingFailed,
    ];

    /// The stable name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::TelephonyServiceDown => "telephony-service-down",
            Alarm::ConfigurationServiceDown => "configuration-service-down",
            Alarm::StatisticServiceDown => "statistic-service-down",
            Alarm::SipRegistrationLost => "sip-registration-lost",
            Alarm::PreferredSiteUnreachable => "preferred-site-unreachable",
            Alarm::PreferredSiteUnknown => "preferred-site-unknown",
            Alarm::SwitchoverFailed => "switchover-failed",
            Alarm::BackendDisconnected => "backend-disconnected",
            Alarm::RecordingFailed => "recording-failed",
        }
    }
}

/// How an EventAgentLogout was classified (D4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogoutClass {
    /// The agent logged out (no reason, or a reason drctl does not act on).
    Manual,
    /// A supervisor forced the logout (`policy.supervisor-logout-reasons`).
    Supervisor,
    /// `dr-force_logout`: the SIP registration expired.
    DrForce,
    /// `graceful_shutdown_logout`: SIP Server is shutting down gracefully.
    GracefulShutdown,
}

impl LogoutClass {
    /// The stable name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutClass::Manual => "manual",
            LogoutClass::Supervisor => "supervisor",
            LogoutClass::DrForce => "dr-force",
            LogoutClass::GracefulShutdown => "graceful-shutdown",
        }
    }
}

/// Why a switchover trigger did not start one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuppressWhy {
    /// E1: within `policy.hold-down` of the last switchover.
    HoldDown,
    /// E3: an operator paused automatic switchovers.
    Paused,
    /// D6: a switchover (or startup) is already in flight; coalesced into it.
    InProgress,
    /// W3: the operator named the site the agent is already on.
    AlreadyOnSite,
    /// W3: the operator named a site that is not configured.
    UnknownSite,
}

impl SuppressWhy {
    /// The stable name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressWhy::HoldDown => "hold-down",
            SuppressWhy::Paused => "paused",
            SuppressWhy::InProgress => "in-progress",
            SuppressWhy::AlreadyOnSite => "already-on-site",
            SuppressWhy::UnknownSite => "unknown-site",
        }
    }
}

/// A decision record (SPEC §6): every choice the engine makes, with a stable `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Decision {
    /// S1: connected to a site's CS Proxy at startup (or on reconnect).
    StartupConnected {
        /// The site.
        site: SiteName,
    },
    /// S1: no site could be reached within `startup.timeout`; startup gave up.
    StartupFailed {
        /// What was tried.
        error: String,
    },
    /// W1: a switchover begins.
    SwitchoverStarted {
        /// Why.
        reason: Reason,
        /// The site being left.
        from: SiteName,
        /// The target.
        to: SiteName,
    },
    /// W2: connected and listening at `to`.
    SwitchoverCompleted {
        /// Why it started.
        reason: Reason,
        /// The site left.
        from: SiteName,
        /// Where the agent is now (the origin when W4 fell back to it).
        to: SiteName,
    },
    /// W4: connecting to `to` failed; retrying.
    SwitchoverFailed {
        /// The site that did not answer.
        to: SiteName,
        /// The backend's error.
        error: String,
    },
    /// A trigger that did not start a switchover.
    SwitchoverSuppressed {
        /// The trigger.
        reason: Reason,
        /// Why not.
        why: SuppressWhy,
    },
    /// An alarm went up.
    AlarmRaised {
        /// Which.
        alarm: Alarm,
        /// When the switchover the alarm announces is due (ns since the
        /// session start), if a timer runs for it (D1 `site-timeout`, D4
        /// `site-sip-register-timeout`); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<u64>,
    },
    /// An alarm went down.
    AlarmCleared {
        /// Which.
        alarm: Alarm,
    },
    /// S3: an AIL Application could not be read; the site is reached through
    /// the local `[[sites]]` entry instead.
    ApplicationFallback {
        /// The site whose Application could not be read.
        site: SiteName,
        /// The backend's error.
        error: String,
    },
    /// D4: an EventAgentLogout and what it means.
    LogoutClassified {
        /// The reason code as received ("" when none).
        reason: String,
        /// Its class.
        class: LogoutClass,
    },
    /// A switchover gate (`[[switch.gates]]`) vetoed a switchover: it did not start.
    GateRefused {
        /// The switchover's reason.
        reason: Reason,
        /// The gate's name.
        gate: String,
        /// Why, as the gate said it (its output or HTTP status, bounded).
        output: String,
    },
    /// An operator skipped a gate (`switch --skip-gate NAME --reason TEXT`).
    GateSkipped {
        /// The switchover's reason.
        reason: Reason,
        /// The gate's name.
        gate: String,
        /// The operator's `--reason`.
        why: String,
    },
}

/// The host's answer to an engine waiting on its switchover gates: the
/// first gate that vetoed, if any, and the gates the operator skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// The first gate that vetoed; `None`: every gate run passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<GateRefusal>,
    /// Gates not run because the operator skipped them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The operator's reason for skipping them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// A gate's veto.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRefusal {
    /// The gate's name.
    pub gate: String,
    /// What it said (its output or HTTP status, bounded).
    pub output: String,
}

impl Decision {
    /// The record's stable `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Decision::StartupConnected { .. } => "startup-connected",
            Decision::StartupFailed { .. } => "startup-failed",
            Decision::SwitchoverStarted { .. } => "switchover-started",
            Decision::SwitchoverCompleted { .. } => "switchover-completed",
            Decision::SwitchoverFailed { .. } => "switchover-failed",
            Decision::SwitchoverSuppressed { .. } => "switchover-suppressed",
            Decision::AlarmRaised { .. } => "alarm-raised",
            Decision::AlarmCleared { .. } => "alarm-cleared",
            Decision::ApplicationFallback { .. } => "application-fallback",
            Decision::LogoutClassified { .. } => "logout-classified",
            Decision::GateRefused { .. } => "gate-refused",
            Decision::GateSkipped { .. } => "gate-skipped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An alarm's deadline is written only when a timer runs, so records of
    /// alarms without one keep their shape.
    #[test]
    fn alarm_deadline_is_written_only_when_set() {
        let plain = Decision::AlarmRaised {
            alarm: Alarm::StatisticServiceDown,
            deadline: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"type":"alarm-raised","alarm":"statistic-service-down"}"#
        );
        let pending = Decision::AlarmRaised {
            alarm: Alarm::TelephonyServiceDown,
            deadline: Some(40_000_000_000),
        };
        let text = serde_json::to_string(&pending).unwrap();
        assert_eq!(
            text,
            r#"{"type":"alarm-raised","alarm":"telephony-service-down","deadline":40000000000}"#
        );
        assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), pending);
        let old = r#"{"type":"alarm-raised","alarm":"statistic-service-down"}"#;
        assert_eq!(serde_json::from_str::<Decision>(old).unwrap(), plain);
    }

    /// `as_str` (for text output) and serde (for records) name things alike.
    #[test]
    fn as_str_matches_the_serialized_names() {
        fn name<T: Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
        for a in Alarm::ALL {
            assert_eq!(a.as_str(), name(a));
        }
        for r in [
            Reason::StartupRelocate,
            Reason::TelephonyTimeout,
            Reason::SipRegisterTimeout,
            Reason::GracefulShutdown,
            Reason::Operator,
            Reason::Failback,
        ] {
            assert_eq!(r.as_str(), name(r));
        }
        for c in [
            LogoutClass::Manual,
            LogoutClass::Supervisor,
            LogoutClass::DrForce,
            LogoutClass::GracefulShutdown,
        ] {
            assert_eq!(c.as_str(), name(c));
        }
        for w in [
            SuppressWhy::HoldDown,
            SuppressWhy::Paused,
            SuppressWhy::InProgress,
            SuppressWhy::AlreadyOnSite,
            SuppressWhy::UnknownSite,
        ] {
            assert_eq!(w.as_str(), name(w));
        }
    }
}

//! What goes into the engine: backend events, command results and operator requests.

use crate::config::SiteName;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A connection generation: each successful `connect` yields a new one (D5).
pub type Epoch = u64;

/// Identifies a command the engine issued, so its result can be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub u64);

/// One of the three AIL services whose status the engine watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// The primary/backup SIP Server pair (D1).
    Telephony,
    /// The primary/backup Configuration Server pair (D2).
    Configuration,
    /// The primary/backup Stat Server pair (D3).
    Statistic,
}

/// A service's status as AIL reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// Connected to the primary or the backup.
    On,
    /// Both the primary and the backup are unavailable.
    Off,
}

/// An event a backend reports on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum BackendEvent {
    /// A service listener saw a status change.
    ServiceStatus {
        /// Which service.
        service: Service,
        /// Its new status.
        status: ServiceStatus,
    },
    /// EventAgentLogout on the agent's DN (D4).
    AgentLogout {
        /// The DN.
        dn: String,
        /// The reason code; `None` or empty for a manual logout.
        reason: Option<String>,
    },
    /// EventDNBackInService: the phone (re-)registered.
    DnBackInService {
        /// The DN.
        dn: String,
    },
    /// EventDNOutOfService.
    DnOutOfService {
        /// The DN.
        dn: String,
    },
    /// The backend lost the AIL session altogether.
    Disconnected,
}

/// The successful answer to a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CommandOutput {
    /// `connect` succeeded; events of this connection carry `epoch`.
    Connected {
        /// The new connection's epoch.
        epoch: Epoch,
    },
    /// `read_person_sites`: the agent's Person object names two AIL Applications (S2).
    PersonSites {
        /// The preferred (site 1) AIL Application.
        preferred_app: String,
        /// The secondary (site 2) AIL Application.
        secondary_app: String,
    },
    /// `read_application`: the AIL Application's CS Proxy and DR options (S3).
    Application {
        /// The application read.
        app_name: String,
        /// Its Configuration Server Proxy `host:port`.
        cs_proxy: String,
        /// Its `site-timeout`, if configured.
        #[serde(with = "humantime_serde")]
        site_timeout: Option<Duration>,
        /// Its `site-sip-register-timeout`, if configured.
        #[serde(with = "humantime_serde")]
        site_sip_register_timeout: Option<Duration>,
    },
    /// A command without a payload succeeded.
    Done,
}

/// Everything the engine reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Begin startup (S1).
    Start,
    /// The answer to a command the engine issued.
    CommandResult {
        /// The command's id.
        id: CommandId,
        /// Its output, or the backend's error message.
        result: Result<CommandOutput, String>,
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
}

//! The backend messages (SPEC §5), as they cross the plugin boundary: UTF-8 JSON.
//!
//! Host → plugin: [`Input`] (today only [`Input::Command`]).
//! Plugin → host: [`Output`] ([`Output::Result`] answers a command by its id,
//! [`Output::Event`] reports something the deployment did).
//!
//! Wire shapes (one JSON object each; the outer enums are tagged `kind`, the
//! inner ones `type`, all snake_case):
//!
//! ```json
//! {"kind":"command","session":"agent-1","id":7,"command":{"type":"read_application","app_name":"AIL_site1"}}
//! {"kind":"result","session":"agent-1","id":7,"result":{"type":"application","app_name":"AIL_site1","cs_proxy":"csp1:7000","site_timeout_s":2,"site_timeout_ns":1500000000,"site_sip_register_timeout_s":null,"site_sip_register_timeout_ns":null}}
//! {"kind":"result","session":"agent-1","id":8,"result":{"type":"error","message":"login failed"}}
//! {"kind":"event","session":"agent-1","epoch":2,"event":{"type":"service_status","service":"telephony","status":"off"}}
//! ```
//!
//! Time never appears in a message: it is the `now_ns` argument of every ABI
//! call, nanoseconds since the session start on the host's clock.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod compact;
mod de;

/// The agent session a message belongs to (one backend instance may serve many).
pub type SessionId = String;

/// A message from the host to a backend.
// Deserialize: hand-written in `de.rs` (fast path when the tag comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// A command for one agent session; answered by exactly one [`Output::Result`] with the same `id`.
    Command {
        /// Agent session id.
        session: SessionId,
        /// Host-chosen id, echoed in the result.
        id: u64,
        /// What to do.
        command: Command,
    },
}

impl Input {
    /// A copy safe to log or record: every password replaced by `<redacted>`.
    pub fn redacted(&self) -> Input {
        match self {
            Input::Command {
                session,
                id,
                command,
            } => Input::Command {
                session: session.clone(),
                id: *id,
                command: command.redacted(),
            },
        }
    }

    /// The JSON of [`Input::redacted`], for recorders and logs.
    pub fn to_redacted_json(&self) -> String {
        serde_json::to_string(&self.redacted()).expect("an Input always serializes")
    }
}

/// A command (SPEC §5), tagged `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// (Re)start AIL against a site's CS Proxy; answered by [`Reply::Connected`] with a new epoch.
    Connect {
        /// Site name, e.g. `site1`.
        site: String,
        /// CS Proxy `host:port`.
        cs_proxy: String,
        /// The AIL Application object to log in as.
        app_name: String,
        /// Agent user name.
        username: String,
        /// Agent password; travels to the backend, never into logs. The policy
        /// engine leaves it empty: the host fills it in at the edge
        /// ([`Command::with_password`]), so the secret never reaches the engine.
        password: Password,
        /// AIL `loading/on-demand`.
        on_demand_loading: bool,
    },
    /// Read the agent's Person object; answered by [`Reply::PersonSites`].
    ReadPersonSites {
        /// Agent user name.
        username: String,
    },
    /// Read an AIL Application object; answered by [`Reply::Application`].
    ReadApplication {
        /// Application name.
        app_name: String,
    },
    /// Subscribe listeners for an epoch; answered by [`Reply::Done`].
    Subscribe {
        /// The connection epoch the listeners belong to.
        epoch: u64,
        /// Which listeners.
        listeners: Vec<Listener>,
    },
    /// Kill the AIL factory (first step of a switchover); answered by [`Reply::Done`].
    KillFactory,
    /// Relaunch the embedded SIP endpoint; answered by [`Reply::Done`].
    RelaunchEndpoint,
    /// E2: is a site healthy (its CS Proxy answers and its telephony is ON)?
    /// The backend answers without leaving its current site; answered by
    /// [`Reply::Probed`] (an error is a failed probe).
    Probe {
        /// The site probed, e.g. `site1`.
        site: String,
        /// Its CS Proxy `host:port`, as its AIL Application names it (S3).
        cs_proxy: String,
    },
    /// W5: log the agent in on its DN on the connection of `epoch`; answered
    /// by [`Reply::Done`] (an error is a failed login: a failed switchover, W4).
    Login {
        /// The connection epoch to log in on.
        epoch: u64,
        /// The agent's DN.
        dn: String,
        /// The ACD queue to log in to, if the login takes one.
        #[serde(default)]
        queue: Option<String>,
        /// The work mode after login (AIL `AgentWorkmode`), if set.
        #[serde(default)]
        workmode: Option<String>,
        /// Reasons (key-value pairs) the login carries.
        #[serde(default)]
        reasons: BTreeMap<String, String>,
    },
    /// Stop serving this session; answered by [`Reply::Done`].
    Shutdown,
}

impl Command {
    /// The snake_case `type` tag of this command, e.g. `"connect"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::Connect { .. } => "connect",
            Command::ReadPersonSites { .. } => "read_person_sites",
            Command::ReadApplication { .. } => "read_application",
            Command::Subscribe { .. } => "subscribe",
            Command::KillFactory => "kill_factory",
            Command::RelaunchEndpoint => "relaunch_endpoint",
            Command::Probe { .. } => "probe",
            Command::Login { .. } => "login",
            Command::Shutdown => "shutdown",
        }
    }

    /// This command with `Connect`'s password set to `password` (others unchanged).
    pub fn with_password(mut self, secret: &Password) -> Command {
        if let Command::Connect { password, .. } = &mut self {
            *password = secret.clone();
        }
        self
    }

    /// A copy with every password replaced by `<redacted>`.
    pub fn redacted(&self) -> Command {
        match self {
            Command::Connect {
                site,
                cs_proxy,
                app_name,
                username,
                on_demand_loading,
                ..
            } => Command::Connect {
                site: site.clone(),
                cs_proxy: cs_proxy.clone(),
                app_name: app_name.clone(),
                username: username.clone(),
                password: Password::redacted(),
                on_demand_loading: *on_demand_loading,
            },
            other => other.clone(),
        }
    }
}

/// A listener kind for [`Command::Subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listener {
    /// Telephony service status.
    Telephony,
    /// Configuration service status.
    Configuration,
    /// Statistic service status.
    Statistic,
    /// The agent's DN (logout, in/out of service).
    Dn,
}

impl Listener {
    /// The four listeners of the seed, in its order (W2 subscribes them all).
    pub const ALL: [Listener; 4] = [
        Listener::Telephony,
        Listener::Configuration,
        Listener::Statistic,
        Listener::Dn,
    ];
}

/// A secret that must reach the backend but never a log: serializes its value,
/// `Debug` prints `<redacted>`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// The placeholder used by [`Password::redacted`].
    pub const REDACTED: &'static str = "<redacted>";

    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The placeholder password `<redacted>`.
    pub fn redacted() -> Self {
        Password(Self::REDACTED.to_owned())
    }

    /// The secret itself: only for handing it to the real backend.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

/// A message from a backend to the host.
///
/// Non-exhaustive: a later ABI minor may add kinds (e.g. a replay backend's
/// `divergence`). A host reading a kind it does not know gets [`Output::Unknown`]
/// and should skip it.
// Deserialize: hand-written in `de.rs` (fast path when the tag comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Output {
    /// The answer to the command with this `id`.
    Result {
        /// Agent session id.
        session: SessionId,
        /// The command's id.
        id: u64,
        /// Success payload or error; on the wire one object tagged `type`
        /// (`"error"` for the error case).
        #[serde(with = "command_result")]
        result: CommandResult,
    },
    /// Something happened in the deployment.
    Event {
        /// Agent session id.
        session: SessionId,
        /// The connection epoch the event came from (D5).
        epoch: u64,
        /// What happened.
        event: Event,
    },
    /// A replay backend's report: the host sent a command that the recording
    /// does not have next (today's policy decides differently). The command is
    /// still answered, by an ordinary [`Output::Result`].
    Divergence {
        /// Agent session id.
        session: SessionId,
        /// The host's id of the command sent.
        id: u64,
        /// The command the host sent (passwords redacted).
        sent: Command,
        /// The command the recording has next, if any is left.
        recorded: Option<RecordedCommand>,
    },
    /// An output kind this version of the crate does not know (from a newer plugin).
    /// Never sent; only produced when reading.
    #[serde(skip_serializing)]
    Unknown,
}

/// A command as found in a recording: when it was sent (ns since the start) and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCommand {
    /// Nanoseconds since the recorded session's start.
    pub t: u64,
    /// 1-based line of the recording.
    pub line: u64,
    /// The command (as recorded: passwords redacted).
    pub command: Command,
}

/// The outcome of a command: a [`Reply`] or a [`CommandError`].
pub type CommandResult = Result<Reply, CommandError>;

/// At most this many options in a [`Reply::Application`] (a backend keeps
/// the first ones; more is refused when read).
pub const MAX_APPLICATION_OPTIONS: usize = 256;

/// A successful command's payload, tagged `type`.
///
/// Serde: through [`command_result`]'s wire forms, for the DR options of
/// [`Reply::Application`] (exact nanoseconds, and whole seconds for older readers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// [`Command::Connect`] succeeded; events of this connection carry `epoch`.
    Connected {
        /// The new connection epoch.
        epoch: u64,
    },
    /// [`Command::ReadPersonSites`]: the agent's two AIL Application names.
    PersonSites {
        /// Site 1 (preferred) AIL Application.
        preferred_app: String,
        /// Site 2 (secondary) AIL Application.
        secondary_app: String,
    },
    /// [`Command::ReadApplication`]: the application's CS Proxy and DR options.
    Application {
        /// Application name.
        app_name: String,
        /// CS Proxy `host:port`.
        cs_proxy: String,
        /// DR option `site-timeout`; absent = `null`. On the wire
        /// `site_timeout_ns` (exact) and `site_timeout_s` (rounded up, for
        /// readers before `_ns`: a 100 ms timeout never reads as 0, off).
        site_timeout: Option<Duration>,
        /// DR option `site-sip-register-timeout`, on the wire like `site_timeout`.
        site_sip_register_timeout: Option<Duration>,
        /// The Application's options as text, keyed `section/option` (E5
        /// reads `dr/evacuate` here at startup); at most
        /// [`MAX_APPLICATION_OPTIONS`]. Absent on the wire when empty.
        options: BTreeMap<String, String>,
    },
    /// [`Command::Probe`]: the site's health, as the backend saw it.
    Probed {
        /// Its CS Proxy answered and its telephony is ON.
        healthy: bool,
        /// What was seen, for humans (logged, never parsed).
        detail: String,
    },
    /// The command was carried out; nothing to report.
    Done,
}

/// A failed command, on the wire `{"type":"error","message":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// What went wrong, for humans.
    pub message: String,
}

impl CommandError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CommandError {
            message: message.into(),
        }
    }
}

impl From<&str> for CommandError {
    fn from(message: &str) -> Self {
        CommandError::new(message)
    }
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        CommandError::new(message)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandError {}

/// A backend event (SPEC §5), tagged `type`.
// Deserialize: hand-written in `de.rs` (fast path when the tag comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A listener's service went on or off.
    ServiceStatus {
        /// Which service.
        service: Service,
        /// Its new status.
        status: ServiceState,
    },
    /// EventAgentLogout on the agent's DN.
    AgentLogout {
        /// The DN.
        dn: String,
        /// The logout reason, e.g. `dr-force_logout`; `null` = none.
        reason: Option<String>,
        /// The event's other extensions.
        extensions: BTreeMap<String, String>,
    },
    /// EventDNBackInService.
    DnBackInService {
        /// The DN.
        dn: String,
    },
    /// EventDNOutOfService.
    DnOutOfService {
        /// The DN.
        dn: String,
    },
    /// The connection of this epoch is gone.
    Disconnected,
    /// E5: an option of a Configuration Server object changed (the backend
    /// follows Configuration Server's notifications).
    ConfigChanged {
        /// Which kind of object.
        object: ConfigObject,
        /// Its name: the Person's user name, the Application's name.
        name: String,
        /// The options (annex) section, e.g. `dr`.
        section: String,
        /// The option, e.g. `evacuate`.
        option: String,
        /// The new value; `null` = the option was deleted.
        #[serde(default)]
        value: Option<String>,
    },
}

/// E5: the kinds of Configuration Server object drctl follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigObject {
    /// The agent's Person object (its annex names the preferred Application).
    Person,
    /// An AIL Application object (its options hold the DR options and directives).
    Application,
}

impl Event {
    /// The snake_case `type` tag of this event, e.g. `"service_status"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::ServiceStatus { .. } => "service_status",
            Event::AgentLogout { .. } => "agent_logout",
            Event::DnBackInService { .. } => "dn_back_in_service",
            Event::DnOutOfService { .. } => "dn_out_of_service",
            Event::Disconnected => "disconnected",
            Event::ConfigChanged { .. } => "config_changed",
        }
    }
}

/// A service whose status a listener reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Telephony (SIP Server).
    Telephony,
    /// Configuration Server.
    Configuration,
    /// Stat Server.
    Statistic,
}

/// A service status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Service available.
    On,
    /// Service lost.
    Off,
}

impl ServiceState {
    /// The snake_case name, `on` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::On => "on",
            ServiceState::Off => "off",
        }
    }
}

/// Serde for [`CommandResult`]: `Ok(reply)` is the reply's object, `Err(e)` is
/// `{"type":"error","message":...}`.
pub(crate) mod command_result {
    use super::*;
    use std::borrow::Cow;

    /// A result on the wire, tagged `type`: borrowed when written, owned when read.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Wire<'a> {
        Connected {
            epoch: u64,
        },
        PersonSites {
            preferred_app: Cow<'a, str>,
            secondary_app: Cow<'a, str>,
        },
        Application {
            app_name: Cow<'a, str>,
            cs_proxy: Cow<'a, str>,
            site_timeout_s: Option<u64>,
            site_timeout_ns: Option<u64>,
            site_sip_register_timeout_s: Option<u64>,
            site_sip_register_timeout_ns: Option<u64>,
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            options: Cow<'a, BTreeMap<String, String>>,
        },
        Probed {
            healthy: bool,
            #[serde(default)]
            detail: Cow<'a, str>,
        },
        Done,
        Error {
            message: Cow<'a, str>,
        },
    }

    /// A DR option's whole seconds, rounded up (so that a set option is never 0).
    fn secs_up(d: Option<Duration>) -> Option<u64> {
        d.map(|d| d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0)))
    }

    /// A DR option's exact nanoseconds, `None` past u64 (then `_s` carries it).
    fn nanos(d: Option<Duration>) -> Option<u64> {
        d.and_then(|d| u64::try_from(d.as_nanos()).ok())
    }

    /// `_ns` when present (exact), else `_s` (written before `_ns` existed).
    fn dr_option(ns: Option<u64>, s: Option<u64>) -> Option<Duration> {
        ns.map(Duration::from_nanos).or(s.map(Duration::from_secs))
    }

    fn reply_ref(r: &Reply) -> Wire<'_> {
        match r {
            Reply::Connected { epoch } => Wire::Connected { epoch: *epoch },
            Reply::PersonSites {
                preferred_app,
                secondary_app,
            } => Wire::PersonSites {
                preferred_app: Cow::Borrowed(preferred_app),
                secondary_app: Cow::Borrowed(secondary_app),
            },
            Reply::Application {
                app_name,
                cs_proxy,
                site_timeout,
                site_sip_register_timeout,
                options,
            } => Wire::Application {
                app_name: Cow::Borrowed(app_name),
                cs_proxy: Cow::Borrowed(cs_proxy),
                site_timeout_s: secs_up(*site_timeout),
                site_timeout_ns: nanos(*site_timeout),
                site_sip_register_timeout_s: secs_up(*site_sip_register_timeout),
                site_sip_register_timeout_ns: nanos(*site_sip_register_timeout),
                options: Cow::Borrowed(options),
            },
            Reply::Probed { healthy, detail } => Wire::Probed {
                healthy: *healthy,
                detail: Cow::Borrowed(detail),
            },
            Reply::Done => Wire::Done,
        }
    }

    pub fn serialize<S: Serializer>(r: &CommandResult, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Ok(reply) => reply_ref(reply).serialize(s),
            Err(e) => Wire::Error {
                message: Cow::Borrowed(&e.message),
            }
            .serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CommandResult, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Connected { epoch } => Ok(Reply::Connected { epoch }),
            Wire::PersonSites {
                preferred_app,
                secondary_app,
            } => Ok(Reply::PersonSites {
                preferred_app: preferred_app.into_owned(),
                secondary_app: secondary_app.into_owned(),
            }),
            Wire::Application {
                app_name,
                cs_proxy,
                site_timeout_s,
                site_timeout_ns,
                site_sip_register_timeout_s,
                site_sip_register_timeout_ns,
                options,
            } => {
                if options.len() > MAX_APPLICATION_OPTIONS {
                    return Err(serde::de::Error::custom(format!(
                        "application {app_name:?}: {} options, more than {MAX_APPLICATION_OPTIONS}",
                        options.len()
                    )));
                }
                Ok(Reply::Application {
                    app_name: app_name.into_owned(),
                    cs_proxy: cs_proxy.into_owned(),
                    site_timeout: dr_option(site_timeout_ns, site_timeout_s),
                    site_sip_register_timeout: dr_option(
                        site_sip_register_timeout_ns,
                        site_sip_register_timeout_s,
                    ),
                    options: options.into_owned(),
                })
            }
            Wire::Probed { healthy, detail } => Ok(Reply::Probed {
                healthy,
                detail: detail.into_owned(),
            }),
            Wire::Done => Ok(Reply::Done),
            Wire::Error { message } => Err(CommandError {
                message: message.into_owned(),
            }),
        })
    }

    impl Serialize for Reply {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            reply_ref(self).serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for Reply {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reply, D::Error> {
            deserialize(d)?.map_err(|e| {
                serde::de::Error::custom(format!("expected a reply, got an error: {e}"))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T>(value: &T, expected: serde_json::Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        let text = serde_json::to_string(value).unwrap();
        let as_value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(as_value, expected, "serialized shape of {value:?}");
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, value, "round trip of {text}");
        let from_expected: T = serde_json::from_value(expected).unwrap();
        assert_eq!(&from_expected, value);
    }

    fn cmd(id: u64, command: Command) -> Input {
        Input::Command {
            session: "agent-1".into(),
            id,
            command,
        }
    }

    #[test]
    fn dr_options_keep_sub_second_precision_and_old_readers_never_see_zero() {
        let app = |t: Option<Duration>| Output::Result {
            session: "agent-1".into(),
            id: 3,
            result: Ok(Reply::Application {
                app_name: "AIL_site1".into(),
                cs_proxy: "csp1:7000".into(),
                site_timeout: t,
                site_sip_register_timeout: Some(Duration::from_millis(1500)),
                options: BTreeMap::new(),
            }),
        };
        let out = app(Some(Duration::from_millis(100)));
        let json = serde_json::to_value(&out).unwrap();
        // Seconds rounded up for a reader that knows only `_s`: 1, not 0 (off).
        assert_eq!(json["result"]["site_timeout_s"], 1);
        assert_eq!(json["result"]["site_timeout_ns"], 100_000_000);
        assert_eq!(json["result"]["site_sip_register_timeout_s"], 2);
        assert_eq!(serde_json::from_value::<Output>(json).unwrap(), out);
        // A message from before `_ns` (a recording, an older plugin): seconds.
        let old = json!({"kind":"result","session":"agent-1","id":3,"result":{
            "type":"application","app_name":"AIL_site1","cs_proxy":"csp1:7000",
            "site_timeout_s":30,"site_sip_register_timeout_s":null}});
        let Output::Result {
            result:
                Ok(Reply::Application {
                    site_timeout,
                    site_sip_register_timeout,
                    ..
                }),
            ..
        } = serde_json::from_value(old).unwrap()
        else {
            panic!("not an application reply");
        };
        assert_eq!(site_timeout, Some(Duration::from_secs(30)));
        assert_eq!(site_sip_register_timeout, None);
    }

    #[test]
    fn application_options_are_carried_absent_when_empty_and_bounded() {
        let app = |options: BTreeMap<String, String>| Output::Result {
            session: "agent-1".into(),
            id: 3,
            result: Ok(Reply::Application {
                app_name: "AIL_site1".into(),
                cs_proxy: "csp1:7000".into(),
                site_timeout: None,
                site_sip_register_timeout: None,
                options,
            }),
        };
        // Empty: not on the wire (a recording from before options reads alike).
        let json = serde_json::to_value(app(BTreeMap::new())).unwrap();
        assert!(json["result"].get("options").is_none(), "{json}");
        let with = app(BTreeMap::from([("dr/evacuate".into(), "true".into())]));
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["result"]["options"]["dr/evacuate"], "true");
        assert_eq!(serde_json::from_value::<Output>(json).unwrap(), with);
        let many: BTreeMap<String, String> = (0..=MAX_APPLICATION_OPTIONS)
            .map(|k| (format!("dr/o{k}"), "x".into()))
            .collect();
        let json = serde_json::to_value(app(many)).unwrap();
        let err = serde_json::from_value::<Output>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("257 options, more than 256"), "{err}");
    }

    #[test]
    fn connect_command_shape() {
        round_trip(
            &cmd(
                1,
                Command::Connect {
                    site: "site1".into(),
                    cs_proxy: "csp1.example:7000".into(),
                    app_name: "AIL_site1".into(),
                    username: "jdoe".into(),
                    password: Password::new("s3cret"),
                    on_demand_loading: true,
                },
            ),
            json!({"kind":"command","session":"agent-1","id":1,"command":{
                "type":"connect","site":"site1","cs_proxy":"csp1.example:7000",
                "app_name":"AIL_site1","username":"jdoe","password":"s3cret",
                "on_demand_loading":true}}),
        );
    }

    #[test]
    fn other_command_shapes() {
        round_trip(
            &cmd(
                2,
                Command::ReadPersonSites {
                    username: "jdoe".into(),
                },
            ),
            json!({"kind":"command","session":"agent-1","id":2,
                   "command":{"type":"read_person_sites","username":"jdoe"}}),
        );
        round_trip(
            &cmd(
                3,
                Command::ReadApplication {
                    app_name: "AIL_site1".into(),
                },
            ),
            json!({"kind":"command","session":"agent-1","id":3,
                   "command":{"type":"read_application","app_name":"AIL_site1"}}),
        );
        round_trip(
            &cmd(
                4,
                Command::Subscribe {
                    epoch: 2,
                    listeners: vec![
                        Listener::Telephony,
                        Listener::Configuration,
                        Listener::Statistic,
                        Listener::Dn,
                    ],
                },
            ),
            json!({"kind":"command","session":"agent-1","id":4,"command":{
                "type":"subscribe","epoch":2,
                "listeners":["telephony","configuration","statistic","dn"]}}),
        );
        for (command, tag) in [
            (Command::KillFactory, "kill_factory"),
            (Command::RelaunchEndpoint, "relaunch_endpoint"),
            (Command::Shutdown, "shutdown"),
        ] {
            assert_eq!(command.type_name(), tag);
            round_trip(
                &cmd(5, command),
                json!({"kind":"command","session":"agent-1","id":5,"command":{"type":tag}}),
            );
        }
    }

    /// E2's probe and W5's login, and the probe's answer (SPEC §5).
    #[test]
    fn probe_and_login_shapes() {
        let probe = Command::Probe {
            site: "site1".into(),
            cs_proxy: "csp1:7000".into(),
        };
        assert_eq!(probe.type_name(), "probe");
        round_trip(
            &cmd(6, probe),
            json!({"kind":"command","session":"agent-1","id":6,"command":{
                "type":"probe","site":"site1","cs_proxy":"csp1:7000"}}),
        );
        let login = Command::Login {
            epoch: 3,
            dn: "7001".into(),
            queue: Some("8000".into()),
            workmode: None,
            reasons: BTreeMap::from([("why".into(), "dr".into())]),
        };
        assert_eq!(login.type_name(), "login");
        round_trip(
            &cmd(7, login),
            json!({"kind":"command","session":"agent-1","id":7,"command":{
                "type":"login","epoch":3,"dn":"7001","queue":"8000","workmode":null,
                "reasons":{"why":"dr"}}}),
        );
        // A login written without its optional fields reads with their defaults.
        let bare: Input = serde_json::from_value(json!({"kind":"command","session":"s","id":1,
            "command":{"type":"login","epoch":1,"dn":"7001"}}))
        .unwrap();
        let Input::Command { command, .. } = bare;
        assert_eq!(
            command,
            Command::Login {
                epoch: 1,
                dn: "7001".into(),
                queue: None,
                workmode: None,
                reasons: BTreeMap::new(),
            }
        );
        let probed = Output::Result {
            session: "agent-1".into(),
            id: 6,
            result: Ok(Reply::Probed {
                healthy: false,
                detail: "telephony off".into(),
            }),
        };
        round_trip(
            &probed,
            json!({"kind":"result","session":"agent-1","id":6,"result":{
                "type":"probed","healthy":false,"detail":"telephony off"}}),
        );
    }

    #[test]
    fn result_shapes() {
        let result = |id, result| Output::Result {
            session: "agent-1".into(),
            id,
            result,
        };
        round_trip(
            &result(1, Ok(Reply::Connected { epoch: 3 })),
            json!({"kind":"result","session":"agent-1","id":1,
                   "result":{"type":"connected","epoch":3}}),
        );
        round_trip(
            &result(
                2,
                Ok(Reply::PersonSites {
                    preferred_app: "AIL_site1".into(),
                    secondary_app: "AIL_site2".into(),
                }),
            ),
            json!({"kind":"result","session":"agent-1","id":2,"result":{
                "type":"person_sites","preferred_app":"AIL_site1","secondary_app":"AIL_site2"}}),
        );
        round_trip(
            &result(
                3,
                Ok(Reply::Application {
                    app_name: "AIL_site1".into(),
                    cs_proxy: "csp1:7000".into(),
                    site_timeout: Some(Duration::from_secs(30)),
                    site_sip_register_timeout: None,
                    options: BTreeMap::new(),
                }),
            ),
            json!({"kind":"result","session":"agent-1","id":3,"result":{
                "type":"application","app_name":"AIL_site1","cs_proxy":"csp1:7000",
                "site_timeout_s":30,"site_timeout_ns":30_000_000_000_u64,
                "site_sip_register_timeout_s":null,"site_sip_register_timeout_ns":null}}),
        );
        round_trip(
            &result(4, Ok(Reply::Done)),
            json!({"kind":"result","session":"agent-1","id":4,"result":{"type":"done"}}),
        );
        round_trip(
            &result(5, Err(CommandError::new("CS Proxy unreachable"))),
            json!({"kind":"result","session":"agent-1","id":5,
                   "result":{"type":"error","message":"CS Proxy unreachable"}}),
        );
    }

    /// E5's event, both ways, with its tag first (the fast reader hands it to
    /// the derived one) and last, and a deleted option's `null` value.
    #[test]
    fn config_changed_shapes() {
        let changed = Event::ConfigChanged {
            object: ConfigObject::Application,
            name: "AIL_site1".into(),
            section: "dr".into(),
            option: "evacuate".into(),
            value: Some("true".into()),
        };
        assert_eq!(changed.type_name(), "config_changed");
        let json = serde_json::to_value(&changed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"config_changed","object":"application","name":"AIL_site1",
                "section":"dr","option":"evacuate","value":"true"})
        );
        let tag_first: Event = serde_json::from_str(&json.to_string()).unwrap();
        assert_eq!(tag_first, changed);
        let tag_last: Event = serde_json::from_str(
            r#"{"object":"person","name":"agent007","section":"dr","option":"site1-application","type":"config_changed"}"#,
        )
        .unwrap();
        assert_eq!(
            tag_last,
            Event::ConfigChanged {
                object: ConfigObject::Person,
                name: "agent007".into(),
                section: "dr".into(),
                option: "site1-application".into(),
                value: None,
            }
        );
        assert!(
            serde_json::from_str::<Event>(r#"{"type":"config_changed","object":"place"}"#).is_err()
        );
    }

    #[test]
    fn event_shapes() {
        let event = |event| Output::Event {
            session: "agent-1".into(),
            epoch: 2,
            event,
        };
        round_trip(
            &event(Event::ServiceStatus {
                service: Service::Telephony,
                status: ServiceState::Off,
            }),
            json!({"kind":"event","session":"agent-1","epoch":2,"event":{
                "type":"service_status","service":"telephony","status":"off"}}),
        );
        round_trip(
            &event(Event::ServiceStatus {
                service: Service::Statistic,
                status: ServiceState::On,
            }),
            json!({"kind":"event","session":"agent-1","epoch":2,"event":{
                "type":"service_status","service":"statistic","status":"on"}}),
        );
        round_trip(
            &event(Event::AgentLogout {
                dn: "5001".into(),
                reason: Some("dr-force_logout".into()),
                extensions: BTreeMap::from([("ReasonCode".into(), "7".into())]),
            }),
            json!({"kind":"event","session":"agent-1","epoch":2,"event":{
                "type":"agent_logout","dn":"5001","reason":"dr-force_logout",
                "extensions":{"ReasonCode":"7"}}}),
        );
        round_trip(
            &event(Event::AgentLogout {
                dn: "5001".into(),
                reason: None,
                extensions: BTreeMap::new(),
            }),
            json!({"kind":"event","session":"agent-1","epoch":2,"event":{
                "type":"agent_logout","dn":"5001","reason":null,"extensions":{}}}),
        );
        round_trip(
            &event(Event::DnBackInService { dn: "5001".into() }),
            json!({"kind":"event","session":"agent-1","epoch":2,
                   "event":{"type":"dn_back_in_service","dn":"5001"}}),
        );
        round_trip(
            &event(Event::DnOutOfService { dn: "5001".into() }),
            json!({"kind":"event","session":"agent-1","epoch":2,
                   "event":{"type":"dn_out_of_service","dn":"5001"}}),
        );
        round_trip(
            &event(Event::Disconnected),
            json!({"kind":"event","session":"agent-1","epoch":2,"event":{"type":"disconnected"}}),
        );
    }

    #[test]
    fn lenient_reading() {
        // Field order does not matter, missing optional fields default.
        let out: Output = serde_json::from_value(json!({
            "event":{"dn":"5001","type":"agent_logout"},"epoch":1,"session":"s","kind":"event"}))
        .unwrap();
        assert_eq!(
            out,
            Output::Event {
                session: "s".into(),
                epoch: 1,
                event: Event::AgentLogout {
                    dn: "5001".into(),
                    reason: None,
                    extensions: BTreeMap::new()
                }
            }
        );
        // An output kind from a newer plugin is readable and skippable.
        let out: Output =
            serde_json::from_value(json!({"kind":"telemetry","at":5,"what":"x"})).unwrap();
        assert_eq!(out, Output::Unknown);
    }

    #[test]
    fn password_never_in_debug_and_redacted_json() {
        let input = cmd(
            1,
            Command::Connect {
                site: "site1".into(),
                cs_proxy: "csp1:7000".into(),
                app_name: "AIL_site1".into(),
                username: "jdoe".into(),
                password: Password::new("s3cret"),
                on_demand_loading: true,
            },
        );
        let debug = format!("{input:?} {input:#?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("<redacted>"));
        // The real wire form carries the secret (it must reach the backend) ...
        assert!(serde_json::to_string(&input).unwrap().contains("s3cret"));
        // ... the recorder form does not.
        let redacted = input.to_redacted_json();
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert!(
            redacted.contains(r#""password":"<redacted>""#),
            "{redacted}"
        );
        let Input::Command { command, .. } = &input;
        assert_eq!(command.type_name(), "connect");
    }
    /// Writes `v` as JSON with every object's keys in reverse order (tags last).
    fn reversed_json(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Object(map) => {
                let items: Vec<String> = map
                    .iter()
                    .rev()
                    .map(|(k, v)| {
                        format!("{}:{}", serde_json::to_string(k).unwrap(), reversed_json(v))
                    })
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            other => other.to_string(),
        }
    }

    fn sample_outputs() -> Vec<Output> {
        let event = |event| Output::Event {
            session: "agent-1".into(),
            epoch: 7,
            event,
        };
        vec![
            event(Event::ServiceStatus {
                service: Service::Configuration,
                status: ServiceState::Off,
            }),
            event(Event::AgentLogout {
                dn: "5001".into(),
                reason: Some("graceful_shutdown_logout".into()),
                extensions: BTreeMap::from([("a".into(), "b\"q\"".into())]),
            }),
            event(Event::DnBackInService { dn: "5001".into() }),
            event(Event::DnOutOfService { dn: "5001".into() }),
            event(Event::Disconnected),
            Output::Result {
                session: "agent-\u{e9}".into(),
                id: u64::MAX,
                result: Ok(Reply::PersonSites {
                    preferred_app: "A".into(),
                    secondary_app: "B".into(),
                }),
            },
            Output::Result {
                session: "s".into(),
                id: 0,
                result: Err(CommandError::new("no")),
            },
        ]
    }

    #[test]
    fn fast_path_and_fallback_agree() {
        for output in sample_outputs() {
            let text = serde_json::to_string(&output).unwrap();
            assert!(text.starts_with(r#"{"kind":"#), "tag first: {text}");
            let fast: Output = serde_json::from_str(&text).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let reversed = reversed_json(&value);
            let slow: Output =
                serde_json::from_str(&reversed).unwrap_or_else(|e| panic!("{reversed}: {e}"));
            assert_eq!(fast, output);
            assert_eq!(slow, output, "{reversed}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_kinds_skippable() {
        let out: Output = serde_json::from_str(
            r#"{"kind":"event","x":[1,{"y":2}],"session":"s","epoch":1,
                "event":{"type":"dn_back_in_service","dn":"5001","extra":null}}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            Output::Event {
                session: "s".into(),
                epoch: 1,
                event: Event::DnBackInService { dn: "5001".into() }
            }
        );
        let out: Output =
            serde_json::from_str(r#"{"kind":"telemetry","at":{"t":5},"what":"x"}"#).unwrap();
        assert_eq!(out, Output::Unknown);
        assert!(
            serde_json::to_string(&Output::Unknown).is_err(),
            "never sent"
        );
    }

    #[test]
    fn bad_outputs_are_errors() {
        for (text, expect) in [
            (
                r#"{"kind":"event","session":"s","epoch":1}"#,
                "missing field `event`",
            ),
            (r#"{"session":"s","epoch":1}"#, "missing field `kind`"),
            (r#"{}"#, "missing field `kind`"),
            (
                r#"{"kind":"event","session":"s","session":"t","epoch":1,"event":{"type":"disconnected"}}"#,
                "duplicate field `session`",
            ),
            (
                r#"{"kind":"event","session":"s","epoch":1,"event":{"type":"bogus"}}"#,
                "unknown variant `bogus`",
            ),
            (
                r#"{"kind":"event","session":"s","epoch":-1,"event":{"type":"disconnected"}}"#,
                "invalid value",
            ),
            (
                r#"{"kind":"event","session":"s","epoch":1,"event":{"type":"service_status","service":"telephony","status":"maybe"}}"#,
                "unknown variant `maybe`",
            ),
            (r#"{"kind":7}"#, "invalid type"),
            (r#"[1,2]"#, "invalid type"),
            (
                r#"{"kind":"result","session":"s","id":1,"result":{"type":"nope"}}"#,
                "unknown variant `nope`",
            ),
        ] {
            let err = serde_json::from_str::<Output>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}

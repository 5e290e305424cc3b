//! The compact (binary) encoding of [`Input`] and [`Output`], which a plugin
//! and the host may agree on instead of JSON (SPEC §4: the `COMPACT`
//! capability bit; JSON stays supported by both).
//!
//! It is [postcard](https://docs.rs/postcard)'s encoding of the mirror types
//! below: externally tagged (a variant is its index), fields in order,
//! integers as varints, strings length-prefixed and borrowed from the buffer
//! when read. A fleet's messages are mostly a session id and a few small
//! integers, so a message is a handful of bytes written and read without
//! looking at keys or escapes.
//!
//! Rules:
//! - Variants and fields are only ever appended (a new ABI minor), never
//!   reordered: the order is the wire format.
//! - An output whose first byte is `{` is JSON, even on a compact instance:
//!   a plugin may hand over what it holds as JSON already, or a kind the
//!   compact encoding does not have ([`is_json`]). No compact message starts
//!   with that byte (its first byte is a variant index below 123).
//! - Every message is at most [`MAX_BYTES`]; the reader refuses longer
//!   input, trailing bytes and anything that is not a whole message.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Command, CommandError, CommandResult, ConfigObject, Event, Input, Listener, Output, Password,
    RecordedCommand, Reply, Service, ServiceState, MAX_APPLICATION_OPTIONS,
};

/// The largest compact message read or written (1 MiB; real ones are tens of bytes).
pub const MAX_BYTES: usize = 1 << 20;

/// A message that could not be written or read in the compact encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// Longer than [`MAX_BYTES`].
    #[error("a compact message of {0} bytes exceeds the limit of {MAX_BYTES} bytes")]
    TooLarge(usize),
    /// Not a whole message of the expected type.
    #[error("not a compact {what}: {message}")]
    Malformed {
        /// `input` or `output`.
        what: &'static str,
        /// What the decoder found wrong.
        message: String,
    },
    /// Bytes left after a whole message.
    #[error("{0} bytes after the end of a compact message")]
    Trailing(usize),
    /// A value with no compact form ([`Output::Unknown`], which is never sent).
    #[error("{0} has no compact form")]
    Unencodable(&'static str),
}

/// Whether an output in a compact exchange is JSON (its first byte is `{`).
pub fn is_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

/// Appends `input`'s compact form to `out`.
pub fn encode_input(input: &Input, out: &mut Vec<u8>) -> Result<(), CompactError> {
    let wire = match input {
        Input::Command {
            session,
            id,
            command,
        } => WireInput::Command {
            session,
            id: *id,
            command: WireCommand::of(command),
        },
    };
    write(&wire, out)
}

/// Reads one [`Input`] from exactly `bytes`.
pub fn decode_input(bytes: &[u8]) -> Result<Input, CompactError> {
    let wire: WireInput<'_> = read(bytes, "input")?;
    Ok(match wire {
        WireInput::Command {
            session,
            id,
            command,
        } => Input::Command {
            session: session.to_owned(),
            id,
            command: command.into_owned(),
        },
    })
}

/// An [`Output::Result`] or [`Output::Event`] with every part borrowed: a
/// backend that keeps its sessions' ids (a fleet's mock) writes it without
/// building an [`Output`] and a copy of the id ([`encode_output_ref`]).
#[derive(Debug, Clone, Copy)]
pub enum OutputRef<'a> {
    /// [`Output::Result`].
    Result {
        /// The session id.
        session: &'a str,
        /// The command's id.
        id: u64,
        /// Its result.
        result: &'a CommandResult,
    },
    /// [`Output::Event`].
    Event {
        /// The session id.
        session: &'a str,
        /// The connection epoch.
        epoch: u64,
        /// The event.
        event: &'a Event,
    },
}

/// Appends `output`'s compact form to `out`: the bytes [`encode_output`]
/// writes for the same [`Output`].
pub fn encode_output_ref(output: OutputRef<'_>, out: &mut Vec<u8>) -> Result<(), CompactError> {
    write(&WireOutput::of_ref(output), out)
}

impl<'a> WireOutput<'a> {
    /// The wire form of a borrowed result or event.
    fn of_ref(output: OutputRef<'a>) -> Self {
        match output {
            OutputRef::Result {
                session,
                id,
                result,
            } => WireOutput::Result {
                session,
                id,
                result: WireResult::of(result),
            },
            OutputRef::Event {
                session,
                epoch,
                event,
            } => WireOutput::Event {
                session,
                epoch,
                event: WireEvent::of(event),
            },
        }
    }
}

/// Appends `output`'s compact form to `out` ([`Output::Unknown`] has none).
pub fn encode_output(output: &Output, out: &mut Vec<u8>) -> Result<(), CompactError> {
    // Results and events go through the borrowed form: one encoding of each.
    let wire = match output {
        Output::Result {
            session,
            id,
            result,
        } => WireOutput::of_ref(OutputRef::Result {
            session,
            id: *id,
            result,
        }),
        Output::Event {
            session,
            epoch,
            event,
        } => WireOutput::of_ref(OutputRef::Event {
            session,
            epoch: *epoch,
            event,
        }),
        Output::Divergence {
            session,
            id,
            sent,
            recorded,
        } => WireOutput::Divergence {
            session,
            id: *id,
            sent: WireCommand::of(sent),
            recorded: recorded.as_ref().map(|r| WireRecorded {
                t: r.t,
                line: r.line,
                command: WireCommand::of(&r.command),
            }),
        },
        Output::Unknown => return Err(CompactError::Unencodable("an unknown output")),
    };
    write(&wire, out)
}

/// Reads one [`Output`] from exactly `bytes`.
pub fn decode_output(bytes: &[u8]) -> Result<Output, CompactError> {
    let wire: WireOutput<'_> = read(bytes, "output")?;
    Ok(match wire {
        WireOutput::Result {
            session,
            id,
            result,
        } => Output::Result {
            session: session.to_owned(),
            id,
            result: result.into_owned()?,
        },
        WireOutput::Event {
            session,
            epoch,
            event,
        } => Output::Event {
            session: session.to_owned(),
            epoch,
            event: event.into_owned(),
        },
        WireOutput::Divergence {
            session,
            id,
            sent,
            recorded,
        } => Output::Divergence {
            session: session.to_owned(),
            id,
            sent: sent.into_owned(),
            recorded: recorded.map(|r| RecordedCommand {
                t: r.t,
                line: r.line,
                command: r.command.into_owned(),
            }),
        },
    })
}

fn write<T: Serialize>(wire: &T, out: &mut Vec<u8>) -> Result<(), CompactError> {
    let start = out.len();
    let taken = std::mem::take(out);
    *out = postcard::to_extend(wire, taken).map_err(|e| CompactError::Malformed {
        what: "message",
        message: e.to_string(),
    })?;
    let len = out.len() - start;
    if len > MAX_BYTES {
        out.truncate(start);
        return Err(CompactError::TooLarge(len));
    }
    Ok(())
}

fn read<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, CompactError> {
    if bytes.len() > MAX_BYTES {
        return Err(CompactError::TooLarge(bytes.len()));
    }
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| CompactError::Malformed {
        what,
        message: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(CompactError::Trailing(rest.len()));
    }
    Ok(value)
}

// The mirror types: the wire order. Append only.

#[derive(Serialize, Deserialize)]
enum WireInput<'a> {
    Command {
        session: &'a str,
        id: u64,
        #[serde(borrow)]
        command: WireCommand<'a>,
    },
}

#[derive(Serialize, Deserialize)]
enum WireOutput<'a> {
    Result {
        session: &'a str,
        id: u64,
        #[serde(borrow)]
        result: WireResult<'a>,
    },
    Event {
        session: &'a str,
        epoch: u64,
        #[serde(borrow)]
        event: WireEvent<'a>,
    },
    Divergence {
        session: &'a str,
        id: u64,
        #[serde(borrow)]
        sent: WireCommand<'a>,
        #[serde(borrow)]
        recorded: Option<WireRecorded<'a>>,
    },
}

#[derive(Serialize, Deserialize)]
struct WireRecorded<'a> {
    t: u64,
    line: u64,
    #[serde(borrow)]
    command: WireCommand<'a>,
}

#[derive(Serialize, Deserialize)]
enum WireCommand<'a> {
    Connect {
        site: &'a str,
        cs_proxy: &'a str,
        app_name: &'a str,
        username: &'a str,
        password: &'a str,
        on_demand_loading: bool,
    },
    ReadPersonSites {
        username: &'a str,
    },
    ReadApplication {
        app_name: &'a str,
    },
    Subscribe {
        epoch: u64,
        #[serde(borrow)]
        listeners: Cow<'a, [Listener]>,
    },
    KillFactory,
    RelaunchEndpoint,
    Probe {
        site: &'a str,
        cs_proxy: &'a str,
    },
    Login {
        epoch: u64,
        dn: &'a str,
        #[serde(borrow)]
        queue: Option<&'a str>,
        #[serde(borrow)]
        workmode: Option<&'a str>,
        #[serde(borrow)]
        reasons: Cow<'a, BTreeMap<String, String>>,
    },
    Shutdown,
}

impl<'a> WireCommand<'a> {
    fn of(c: &'a Command) -> Self {
        match c {
            Command::Connect {
                site,
                cs_proxy,
                app_name,
                username,
                password,
                on_demand_loading,
            } => WireCommand::Connect {
                site,
                cs_proxy,
                app_name,
                username,
                password: password.expose(),
                on_demand_loading: *on_demand_loading,
            },
            Command::ReadPersonSites { username } => WireCommand::ReadPersonSites { username },
            Command::ReadApplication { app_name } => WireCommand::ReadApplication { app_name },
            Command::Subscribe { epoch, listeners } => WireCommand::Subscribe {
                epoch: *epoch,
                listeners: Cow::Borrowed(listeners),
            },
            Command::KillFactory => WireCommand::KillFactory,
            Command::RelaunchEndpoint => WireCommand::RelaunchEndpoint,
            Command::Probe { site, cs_proxy } => WireCommand::Probe { site, cs_proxy },
            Command::Login {
                epoch,
                dn,
                queue,
                workmode,
                reasons,
            } => WireCommand::Login {
                epoch: *epoch,
                dn,
                queue: queue.as_deref(),
                workmode: workmode.as_deref(),
                reasons: Cow::Borrowed(reasons),
            },
            Command::Shutdown => WireCommand::Shutdown,
        }
    }

    fn into_owned(self) -> Command {
        match self {
            WireCommand::Connect {
                site,
                cs_proxy,
                app_name,
                username,
                password,
                on_demand_loading,
            } => Command::Connect {
                site: site.to_owned(),
                cs_proxy: cs_proxy.to_owned(),
                app_name: app_name.to_owned(),
                username: username.to_owned(),
                password: Password::new(password),
                on_demand_loading,
            },
            WireCommand::ReadPersonSites { username } => Command::ReadPersonSites {
                username: username.to_owned(),
            },
            WireCommand::ReadApplication { app_name } => Command::ReadApplication {
                app_name: app_name.to_owned(),
            },
            WireCommand::Subscribe { epoch, listeners } => Command::Subscribe {
                epoch,
                listeners: listeners.into_owned(),
            },
            WireCommand::KillFactory => Command::KillFactory,
            WireCommand::RelaunchEndpoint => Command::RelaunchEndpoint,
            WireCommand::Probe { site, cs_proxy } => Command::Probe {
                site: site.to_owned(),
                cs_proxy: cs_proxy.to_owned(),
            },
            WireCommand::Login {
                epoch,
                dn,
                queue,
                workmode,
                reasons,
            } => Command::Login {
                epoch,
                dn: dn.to_owned(),
                queue: queue.map(str::to_owned),
                workmode: workmode.map(str::to_owned),
                reasons: reasons.into_owned(),
            },
            WireCommand::Shutdown => Command::Shutdown,
        }
    }
}

#[derive(Serialize, Deserialize)]
enum WireResult<'a> {
    Connected {
        epoch: u64,
    },
    PersonSites {
        preferred_app: &'a str,
        secondary_app: &'a str,
    },
    Application {
        app_name: &'a str,
        cs_proxy: &'a str,
        site_timeout: Option<Duration>,
        site_sip_register_timeout: Option<Duration>,
        #[serde(borrow)]
        options: Cow<'a, BTreeMap<String, String>>,
    },
    Probed {
        healthy: bool,
        detail: &'a str,
    },
    Done,
    Error {
        message: &'a str,
    },
}

impl<'a> WireResult<'a> {
    fn of(r: &'a CommandResult) -> Self {
        match r {
            Ok(Reply::Connected { epoch }) => WireResult::Connected { epoch: *epoch },
            Ok(Reply::PersonSites {
                preferred_app,
                secondary_app,
            }) => WireResult::PersonSites {
                preferred_app,
                secondary_app,
            },
            Ok(Reply::Application {
                app_name,
                cs_proxy,
                site_timeout,
                site_sip_register_timeout,
                options,
            }) => WireResult::Application {
                app_name,
                cs_proxy,
                site_timeout: *site_timeout,
                site_sip_register_timeout: *site_sip_register_timeout,
                options: Cow::Borrowed(options),
            },
            Ok(Reply::Probed { healthy, detail }) => WireResult::Probed {
                healthy: *healthy,
                detail,
            },
            Ok(Reply::Done) => WireResult::Done,
            Err(e) => WireResult::Error {
                message: &e.message,
            },
        }
    }

    /// The result; an application with more than [`MAX_APPLICATION_OPTIONS`]
    /// options is refused, as in JSON.
    fn into_owned(self) -> Result<CommandResult, CompactError> {
        Ok(match self {
            WireResult::Connected { epoch } => Ok(Reply::Connected { epoch }),
            WireResult::PersonSites {
                preferred_app,
                secondary_app,
            } => Ok(Reply::PersonSites {
                preferred_app: preferred_app.to_owned(),
                secondary_app: secondary_app.to_owned(),
            }),
            WireResult::Application {
                app_name,
                cs_proxy,
                site_timeout,
                site_sip_register_timeout,
                options,
            } => {
                if options.len() > MAX_APPLICATION_OPTIONS {
                    return Err(CompactError::Malformed {
                        what: "output",
                        message: format!(
                            "application {app_name:?}: {} options, more than {MAX_APPLICATION_OPTIONS}",
                            options.len()
                        ),
                    });
                }
                Ok(Reply::Application {
                    app_name: app_name.to_owned(),
                    cs_proxy: cs_proxy.to_owned(),
                    site_timeout,
                    site_sip_register_timeout,
                    options: options.into_owned(),
                })
            }
            WireResult::Probed { healthy, detail } => Ok(Reply::Probed {
                healthy,
                detail: detail.to_owned(),
            }),
            WireResult::Done => Ok(Reply::Done),
            WireResult::Error { message } => Err(CommandError::new(message)),
        })
    }
}

#[derive(Serialize, Deserialize)]
enum WireEvent<'a> {
    ServiceStatus {
        service: Service,
        status: ServiceState,
    },
    AgentLogout {
        dn: &'a str,
        #[serde(borrow)]
        reason: Option<&'a str>,
        #[serde(borrow)]
        extensions: Cow<'a, BTreeMap<String, String>>,
    },
    DnBackInService {
        dn: &'a str,
    },
    DnOutOfService {
        dn: &'a str,
    },
    Disconnected,
    ConfigChanged {
        object: ConfigObject,
        name: &'a str,
        section: &'a str,
        option: &'a str,
        #[serde(borrow)]
        value: Option<&'a str>,
    },
}

impl<'a> WireEvent<'a> {
    fn of(e: &'a Event) -> Self {
        match e {
            Event::ServiceStatus { service, status } => WireEvent::ServiceStatus {
                service: *service,
                status: *status,
            },
            Event::AgentLogout {
                dn,
                reason,
                extensions,
            } => WireEvent::AgentLogout {
                dn,
                reason: reason.as_deref(),
                extensions: Cow::Borrowed(extensions),
            },
            Event::DnBackInService { dn } => WireEvent::DnBackInService { dn },
            Event::DnOutOfService { dn } => WireEvent::DnOutOfService { dn },
            Event::Disconnected => WireEvent::Disconnected,
            Event::ConfigChanged {
                object,
                name,
                section,
                option,
                value,
            } => WireEvent::ConfigChanged {
                object: *object,
                name,
                section,
                option,
                value: value.as_deref(),
            },
        }
    }

    fn into_owned(self) -> Event {
        match self {
            WireEvent::ServiceStatus { service, status } => {
                Event::ServiceStatus { service, status }
            }
            WireEvent::AgentLogout {
                dn,
                reason,
                extensions,
            } => Event::AgentLogout {
                dn: dn.to_owned(),
                reason: reason.map(str::to_owned),
                extensions: extensions.into_owned(),
            },
            WireEvent::DnBackInService { dn } => Event::DnBackInService { dn: dn.to_owned() },
            WireEvent::DnOutOfService { dn } => Event::DnOutOfService { dn: dn.to_owned() },
            WireEvent::Disconnected => Event::Disconnected,
            WireEvent::ConfigChanged {
                object,
                name,
                section,
                option,
                value,
            } => Event::ConfigChanged {
                object,
                name: name.to_owned(),
                section: section.to_owned(),
                option: option.to_owned(),
                value: value.map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<Input> {
        let cmd = |id, command| Input::Command {
            session: "agent-1".into(),
            id,
            command,
        };
        vec![
            cmd(
                1,
                Command::Connect {
                    site: "site1".into(),
                    cs_proxy: "csp1:7000".into(),
                    app_name: "AIL_site1".into(),
                    username: "ann".into(),
                    password: Password::new("s3cret \"é\""),
                    on_demand_loading: true,
                },
            ),
            cmd(
                2,
                Command::ReadPersonSites {
                    username: "ann".into(),
                },
            ),
            cmd(
                3,
                Command::ReadApplication {
                    app_name: "AIL_site2".into(),
                },
            ),
            cmd(
                4,
                Command::Subscribe {
                    epoch: 7,
                    listeners: Listener::ALL.to_vec(),
                },
            ),
            cmd(5, Command::KillFactory),
            cmd(6, Command::RelaunchEndpoint),
            cmd(
                7,
                Command::Probe {
                    site: "site2".into(),
                    cs_proxy: "csp2:7000".into(),
                },
            ),
            cmd(
                u64::MAX,
                Command::Login {
                    epoch: 9,
                    dn: "7001".into(),
                    queue: Some("q1".into()),
                    workmode: None,
                    reasons: [("a".to_owned(), "b".to_owned())].into(),
                },
            ),
            cmd(9, Command::Shutdown),
        ]
    }

    fn outputs() -> Vec<Output> {
        let result = |id, result| Output::Result {
            session: "agent-100000".into(),
            id,
            result,
        };
        let event = |event| Output::Event {
            session: "agent-2".into(),
            epoch: 3,
            event,
        };
        vec![
            result(1, Ok(Reply::Connected { epoch: 12 })),
            result(
                2,
                Ok(Reply::PersonSites {
                    preferred_app: "AIL_site1".into(),
                    secondary_app: "AIL_site2".into(),
                }),
            ),
            result(
                3,
                Ok(Reply::Application {
                    app_name: "AIL_site1".into(),
                    cs_proxy: "csp1:7000".into(),
                    site_timeout: Some(Duration::from_millis(100)),
                    site_sip_register_timeout: None,
                    options: [("dr/evacuate".to_owned(), "true".to_owned())].into(),
                }),
            ),
            result(
                4,
                Ok(Reply::Probed {
                    healthy: false,
                    detail: "site2: telephony off".into(),
                }),
            ),
            result(5, Ok(Reply::Done)),
            result(6, Err(CommandError::new("login refused at site1"))),
            event(Event::ServiceStatus {
                service: Service::Statistic,
                status: ServiceState::Off,
            }),
            event(Event::AgentLogout {
                dn: "7001".into(),
                reason: Some("dr-force_logout".into()),
                extensions: [("k".to_owned(), "v".to_owned())].into(),
            }),
            event(Event::DnBackInService { dn: "7001".into() }),
            event(Event::DnOutOfService { dn: "7001".into() }),
            event(Event::Disconnected),
            event(Event::ConfigChanged {
                object: ConfigObject::Application,
                name: "AIL_site1".into(),
                section: "dr".into(),
                option: "evacuate".into(),
                value: None,
            }),
            Output::Divergence {
                session: "agent-1".into(),
                id: 4,
                sent: Command::KillFactory,
                recorded: Some(RecordedCommand {
                    t: 5,
                    line: 6,
                    command: Command::Shutdown,
                }),
            },
        ]
    }

    #[test]
    fn every_input_and_output_round_trips_and_is_smaller_than_its_json() {
        for input in inputs() {
            let mut bytes = Vec::new();
            encode_input(&input, &mut bytes).unwrap();
            assert!(!is_json(&bytes));
            assert_eq!(decode_input(&bytes).unwrap(), input);
            assert!(bytes.len() < serde_json::to_vec(&input).unwrap().len());
        }
        for output in outputs() {
            let mut bytes = Vec::new();
            encode_output(&output, &mut bytes).unwrap();
            assert!(!is_json(&bytes), "{output:?}");
            assert_eq!(decode_output(&bytes).unwrap(), output);
            assert!(bytes.len() < serde_json::to_vec(&output).unwrap().len());
        }
    }

    #[test]
    fn encoding_appends_to_what_the_buffer_holds() {
        let out = &outputs()[0];
        let mut bytes = b"xy".to_vec();
        encode_output(out, &mut bytes).unwrap();
        assert_eq!(&bytes[..2], b"xy");
        assert_eq!(decode_output(&bytes[2..]).unwrap(), *out);
    }

    #[test]
    fn garbage_truncated_trailing_and_oversized_input_is_refused() {
        let mut bytes = Vec::new();
        encode_output(&outputs()[2], &mut bytes).unwrap();
        // Every strict prefix is not a whole message.
        for end in 0..bytes.len() {
            assert!(decode_output(&bytes[..end]).is_err(), "prefix of {end}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode_output(&trailing), Err(CompactError::Trailing(1)));
        // An unknown variant, a string longer than the buffer, invalid UTF-8.
        assert!(decode_output(&[9]).is_err());
        assert!(decode_output(&[0, 200, 1, b'a']).is_err());
        assert!(decode_output(&[1, 1, 0xff, 3, 2, 1, 0xff]).is_err());
        assert!(decode_input(&[0, 1, b'a', 1, 99]).is_err());
        let huge = vec![0u8; MAX_BYTES + 1];
        assert_eq!(
            decode_output(&huge),
            Err(CompactError::TooLarge(MAX_BYTES + 1))
        );
        assert_eq!(
            decode_input(&huge),
            Err(CompactError::TooLarge(MAX_BYTES + 1))
        );
        // A list claiming a huge length fails on its missing elements, not on memory.
        assert!(decode_input(&[0, 1, b'a', 1, 3, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn an_application_with_too_many_options_is_refused_as_in_json() {
        let app = |n: usize| Output::Result {
            session: "agent-1".into(),
            id: 3,
            result: Ok(Reply::Application {
                app_name: "AIL_site1".into(),
                cs_proxy: "csp1:7000".into(),
                site_timeout: None,
                site_sip_register_timeout: None,
                options: (0..n)
                    .map(|i| (format!("dr/o{i}"), "v".to_owned()))
                    .collect(),
            }),
        };
        let mut bytes = Vec::new();
        encode_output(&app(MAX_APPLICATION_OPTIONS), &mut bytes).unwrap();
        assert_eq!(decode_output(&bytes).unwrap(), app(MAX_APPLICATION_OPTIONS));
        bytes.clear();
        encode_output(&app(MAX_APPLICATION_OPTIONS + 1), &mut bytes).unwrap();
        let err = decode_output(&bytes).unwrap_err().to_string();
        assert!(err.contains("more than 256"), "{err}");
    }

    #[test]
    fn an_oversized_message_is_not_written() {
        let out = Output::Result {
            session: "a".into(),
            id: 1,
            result: Err(CommandError::new("x".repeat(MAX_BYTES))),
        };
        let mut bytes = b"keep".to_vec();
        assert!(matches!(
            encode_output(&out, &mut bytes),
            Err(CompactError::TooLarge(_))
        ));
        assert_eq!(bytes, b"keep");
        assert!(encode_output(&Output::Unknown, &mut bytes).is_err());
    }

    #[test]
    fn json_is_told_apart_by_its_first_byte() {
        assert!(is_json(br#"{"kind":"event"}"#));
        assert!(!is_json(b""));
        assert!(!is_json(&[2, 1]));
    }
}

//! Fast deserialization of the hot messages ([`Output`], [`Event`]).
//!
//! serde's derive for internally tagged enums buffers every object into an
//! intermediate tree before it looks at the tag, twice for an event nested in
//! an output. Our own serializer always writes the tag first, so these
//! visitors read the tag as the first key and then the variant's fields
//! straight from the input. Any other key order (hand-written JSON, another
//! language's encoder) falls back to buffering into a `serde_json::Value`
//! and the derived reader: same result, only slower.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::{
    command_result, Command, CommandResult, ConfigObject, Event, Input, Output, RecordedCommand,
    Service, ServiceState,
};

/// The derived reader for [`Output`], used when `kind` is not the first key.
#[derive(Deserialize)]
#[serde(remote = "Output", tag = "kind", rename_all = "snake_case")]
enum OutputDef {
    Result {
        session: String,
        id: u64,
        #[serde(with = "command_result")]
        result: CommandResult,
    },
    Event {
        session: String,
        epoch: u64,
        event: Event,
    },
    Divergence {
        session: String,
        id: u64,
        sent: Command,
        recorded: Option<RecordedCommand>,
    },
    #[serde(other)]
    Unknown,
}

/// The derived reader for [`Event`], used when `type` is not the first key.
#[derive(Deserialize)]
#[serde(remote = "Event", tag = "type", rename_all = "snake_case")]
enum EventDef {
    ServiceStatus {
        service: Service,
        status: ServiceState,
    },
    AgentLogout {
        dn: String,
        reason: Option<String>,
        #[serde(default)]
        extensions: BTreeMap<String, String>,
    },
    DnBackInService {
        dn: String,
    },
    DnOutOfService {
        dn: String,
    },
    Disconnected,
    ConfigChanged {
        object: ConfigObject,
        name: String,
        section: String,
        option: String,
        #[serde(default)]
        value: Option<String>,
    },
}

/// The first key of an object: the expected tag (`None`) or another key (kept for the fallback).
struct FirstKey(&'static str);

impl<'de> de::DeserializeSeed<'de> for FirstKey {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKey {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((v != self.0).then(|| v.to_owned()))
    }
}

/// Read the rest of an object whose first key was `first` into a JSON value.
fn buffer_rest<'de, A: MapAccess<'de>>(
    first: String,
    mut map: A,
) -> Result<serde_json::Value, A::Error> {
    let mut object = serde_json::Map::new();
    object.insert(first, map.next_value()?);
    while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
        object.insert(key, value);
    }
    Ok(serde_json::Value::Object(object))
}

/// Read a tag value as a `&str`-matched variant index.
struct Tag {
    variants: &'static [&'static str],
    /// Whether an unknown tag is allowed (reads as `variants.len()`).
    open: bool,
}

impl<'de> de::DeserializeSeed<'de> for Tag {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Tag {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant tag")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        match self.variants.iter().position(|name| *name == v) {
            Some(i) => Ok(i),
            None if self.open => Ok(self.variants.len()),
            None => Err(E::unknown_variant(v, self.variants)),
        }
    }
}

/// Generates a field-name reader: `Field::X` for each listed name, `Other` for the rest.
macro_rules! fields {
    ($name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        #[allow(clippy::enum_variant_names)]
        enum $name { $($variant,)* Other }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a field name")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok(match v { $($text => $name::$variant,)* _ => $name::Other })
                    }
                }
                d.deserialize_identifier(V)
            }
        }
    };
}

fields!(OutputField {
    Session = "session",
    Id = "id",
    Epoch = "epoch",
    Event = "event",
    Result = "result",
    Sent = "sent",
    Recorded = "recorded"
});

fields!(EventField {
    Service = "service",
    Status = "status",
    Dn = "dn",
    Reason = "reason",
    Extensions = "extensions"
});

/// Store a field once, refusing duplicates like the derived readers.
fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

fn need<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

/// [`CommandResult`] as a field value.
struct ResultField(CommandResult);

impl<'de> Deserialize<'de> for ResultField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        command_result::deserialize(d).map(ResultField)
    }
}

const OUTPUT_KINDS: &[&str] = &["result", "event", "divergence"];

impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OutputVisitor)
    }
}

struct OutputVisitor;

impl<'de> Visitor<'de> for OutputVisitor {
    type Value = Output;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a drctl output object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Output, A::Error> {
        match map.next_key_seed(FirstKey("kind"))? {
            None => return Err(de::Error::missing_field("kind")),
            Some(Some(first)) => {
                let value = buffer_rest(first, map)?;
                return OutputDef::deserialize(value).map_err(de::Error::custom);
            }
            Some(None) => {}
        }
        let kind = map.next_value_seed(Tag {
            variants: OUTPUT_KINDS,
            open: true,
        })?;
        let (mut session, mut id, mut epoch, mut event, mut result) =
            (None, None, None, None, None);
        let (mut sent, mut recorded) = (None, None);
        while let Some(field) = map.next_key::<OutputField>()? {
            match (kind, field) {
                (0..=2, OutputField::Session) => {
                    set(&mut session, map.next_value::<String>()?, "session")?
                }
                (0 | 2, OutputField::Id) => set(&mut id, map.next_value::<u64>()?, "id")?,
                (2, OutputField::Sent) => set(&mut sent, map.next_value::<Command>()?, "sent")?,
                (2, OutputField::Recorded) => set(
                    &mut recorded,
                    map.next_value::<Option<RecordedCommand>>()?,
                    "recorded",
                )?,
                (0, OutputField::Result) => {
                    set(&mut result, map.next_value::<ResultField>()?.0, "result")?
                }
                (1, OutputField::Epoch) => set(&mut epoch, map.next_value::<u64>()?, "epoch")?,
                (1, OutputField::Event) => set(&mut event, map.next_value::<Event>()?, "event")?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match kind {
            0 => Output::Result {
                session: need(session, "session")?,
                id: need(id, "id")?,
                result: need(result, "result")?,
            },
            1 => Output::Event {
                session: need(session, "session")?,
                epoch: need(epoch, "epoch")?,
                event: need(event, "event")?,
            },
            2 => Output::Divergence {
                session: need(session, "session")?,
                id: need(id, "id")?,
                sent: need(sent, "sent")?,
                recorded: recorded.flatten(),
            },
            _ => Output::Unknown,
        })
    }
}

const EVENT_TYPES: &[&str] = &[
    "service_status",
    "agent_logout",
    "dn_back_in_service",
    "dn_out_of_service",
    "disconnected",
    "config_changed",
];

/// Index of `config_changed` in [`EVENT_TYPES`]: rare, read by the derived reader.
const CONFIG_CHANGED: usize = 5;

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a drctl event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        match map.next_key_seed(FirstKey("type"))? {
            None => return Err(de::Error::missing_field("type")),
            Some(Some(first)) => {
                let value = buffer_rest(first, map)?;
                return EventDef::deserialize(value).map_err(de::Error::custom);
            }
            Some(None) => {}
        }
        let kind = map.next_value_seed(Tag {
            variants: EVENT_TYPES,
            open: false,
        })?;
        if kind == CONFIG_CHANGED {
            let mut object = serde_json::Map::new();
            object.insert("type".into(), EVENT_TYPES[kind].into());
            while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                object.insert(key, value);
            }
            return EventDef::deserialize(serde_json::Value::Object(object))
                .map_err(de::Error::custom);
        }
        let (mut service, mut status, mut dn, mut reason, mut extensions) =
            (None, None, None, None, None);
        while let Some(field) = map.next_key::<EventField>()? {
            match (kind, field) {
                (0, EventField::Service) => {
                    set(&mut service, map.next_value::<Service>()?, "service")?
                }
                (0, EventField::Status) => {
                    set(&mut status, map.next_value::<ServiceState>()?, "status")?
                }
                (1..=3, EventField::Dn) => set(&mut dn, map.next_value::<String>()?, "dn")?,
                (1, EventField::Reason) => {
                    set(&mut reason, map.next_value::<Option<String>>()?, "reason")?
                }
                (1, EventField::Extensions) => set(
                    &mut extensions,
                    map.next_value::<BTreeMap<String, String>>()?,
                    "extensions",
                )?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match kind {
            0 => Event::ServiceStatus {
                service: need(service, "service")?,
                status: need(status, "status")?,
            },
            1 => Event::AgentLogout {
                dn: need(dn, "dn")?,
                reason: reason.flatten(),
                extensions: extensions.unwrap_or_default(),
            },
            2 => Event::DnBackInService {
                dn: need(dn, "dn")?,
            },
            3 => Event::DnOutOfService {
                dn: need(dn, "dn")?,
            },
            _ => Event::Disconnected,
        })
    }
}

/// The derived reader for [`Input`], used when `kind` is not the first key.
#[derive(Deserialize)]
#[serde(remote = "Input", tag = "kind", rename_all = "snake_case")]
enum InputDef {
    Command {
        session: String,
        id: u64,
        command: Command,
    },
}

fields!(InputField {
    Session = "session",
    Id = "id",
    Command = "command"
});

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = Input;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a drctl input object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Input, A::Error> {
        match map.next_key_seed(FirstKey("kind"))? {
            None => return Err(de::Error::missing_field("kind")),
            Some(Some(first)) => {
                let value = buffer_rest(first, map)?;
                return InputDef::deserialize(value).map_err(de::Error::custom);
            }
            Some(None) => {}
        }
        map.next_value_seed(Tag {
            variants: &["command"],
            open: false,
        })?;
        let (mut session, mut id, mut command) = (None, None, None);
        while let Some(field) = map.next_key::<InputField>()? {
            match field {
                InputField::Session => set(&mut session, map.next_value::<String>()?, "session")?,
                InputField::Id => set(&mut id, map.next_value::<u64>()?, "id")?,
                InputField::Command => set(&mut command, map.next_value::<Command>()?, "command")?,
                InputField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Input::Command {
            session: need(session, "session")?,
            id: need(id, "id")?,
            command: need(command, "command")?,
        })
    }
}

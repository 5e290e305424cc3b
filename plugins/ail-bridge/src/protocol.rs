//! The plugin <-> sidecar protocol: newline-delimited JSON over the JVM's
//! stdin and stdout.
//!
//! ```text
//! plugin  -> sidecar  {"kind":"hello","protocol":1,"build":"0.1.0-…","options":{…}}
//! sidecar -> plugin   {"kind":"hello","protocol":1,"build":"0.1.0-…","java":"17.0.15","missing":[]}
//! plugin  -> sidecar  {"kind":"command","session":"agent-1","id":3,"epoch":2,"command":{"type":"connect",…}}
//! sidecar -> plugin   {"kind":"result","session":"agent-1","id":3,"result":{"type":"connected","epoch":2}}
//! sidecar -> plugin   {"kind":"event","session":"agent-1","epoch":2,"event":{"type":"service_status",…}}
//! ```
//!
//! After the hellos, commands are SPEC §5 commands (the plugin picks the
//! epoch of each `connect`) and the sidecar writes SPEC §5 outputs. Its
//! stderr carries log lines `LEVEL message`. End of its stdin means stop.

use crate::config::{BridgeConfig, OnDemandVia};
use drctl_plugin_api::messages::{Command, Output};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The protocol version both sides must speak.
pub const PROTOCOL: u32 = 1;

/// The build id of this plugin and of the sidecar jar it embeds.
pub const BUILD_ID: &str = env!("AIL_BRIDGE_BUILD_ID");

/// The plugin's hello: versions and the settings the sidecar needs once.
#[derive(Debug, Serialize)]
pub struct Hello<'a> {
    kind: &'static str,
    protocol: u32,
    build: &'a str,
    options: SidecarOptions<'a>,
}

/// Settings for the whole life of one sidecar.
#[derive(Debug, Serialize)]
struct SidecarOptions<'a> {
    retry_interval_s: u64,
    person_annex_section: &'a str,
    preferred_app_option: &'a str,
    secondary_app_option: &'a str,
    dr_options_section: &'a str,
    dn: Option<&'a str>,
    /// `None`: the OFF constant alone (the sidecar knows its effective name).
    off_statuses: Option<&'a [String]>,
    reason_code_keys: &'a [String],
    reason_code_aliases: &'a BTreeMap<String, String>,
    on_demand_via: OnDemandVia,
    on_demand_option: &'a str,
    site_timeout_option: &'a str,
    site_sip_register_timeout_option: &'a str,
    /// A TOML names file, flattened.
    #[serde(skip_serializing_if = "Option::is_none")]
    names: Option<&'a BTreeMap<String, String>>,
    /// A properties names file's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    names_properties: Option<&'a str>,
    /// Where the names came from, for messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    names_file: Option<String>,
}

impl<'a> Hello<'a> {
    /// The hello for a sidecar run with `cfg`.
    pub fn new(cfg: &'a BridgeConfig) -> Self {
        Hello {
            kind: "hello",
            protocol: PROTOCOL,
            build: BUILD_ID,
            options: SidecarOptions {
                retry_interval_s: cfg.retry_interval.as_secs(),
                person_annex_section: &cfg.genesys.person_annex_section,
                preferred_app_option: &cfg.genesys.preferred_app_option,
                secondary_app_option: &cfg.genesys.secondary_app_option,
                dr_options_section: &cfg.genesys.dr_options_section,
                dn: cfg.dn.as_deref(),
                off_statuses: cfg.off_statuses.as_deref(),
                reason_code_keys: &cfg.reason_code_keys,
                reason_code_aliases: &cfg.reason_code_aliases,
                on_demand_via: cfg.on_demand_via,
                on_demand_option: &cfg.on_demand_option,
                site_timeout_option: &cfg.site_timeout_option,
                site_sip_register_timeout_option: &cfg.site_sip_register_timeout_option,
                names: cfg.names_file.as_ref().and_then(|n| n.table()),
                names_properties: cfg.names_file.as_ref().and_then(|n| n.properties()),
                names_file: cfg
                    .names_file
                    .as_ref()
                    .map(|n| n.path.display().to_string()),
            },
        }
    }
}

/// The sidecar's hello.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SidecarHello {
    /// Its protocol version.
    pub protocol: u32,
    /// Its build id.
    pub build: String,
    /// The Java version it runs on.
    #[serde(default)]
    pub java: String,
    /// AIL names it could not find on the classpath.
    #[serde(default)]
    pub missing: Vec<String>,
    /// What is wrong with the settings or the names file it was given.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Which killFactory AIL has: `instance` (preferred) or `static`.
    #[serde(default)]
    pub kill_factory: Option<String>,
}

/// A command for the sidecar: a SPEC §5 command plus, for `connect`, the new epoch.
#[derive(Debug, Serialize)]
pub struct ToSidecar<'a> {
    kind: &'static str,
    session: &'a str,
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    command: &'a Command,
}

impl<'a> ToSidecar<'a> {
    /// Command `id` of `session`; `epoch` only for a connect.
    pub fn new(session: &'a str, id: u64, epoch: Option<u64>, command: &'a Command) -> Self {
        ToSidecar {
            kind: "command",
            session,
            id,
            epoch,
            command,
        }
    }
}

/// One line the sidecar wrote on stdout.
#[derive(Debug)]
pub enum Line {
    /// Its handshake.
    Hello(SidecarHello),
    /// A result or an event (boxed: it is most of the enum's size).
    Output(Box<Output>),
    /// Anything else (reported, never acted on).
    Bad(String),
}

impl Line {
    /// Reads one stdout line.
    pub fn parse(line: &str) -> Line {
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return Line::Bad(format!("{e}: {}", clip(line))),
        };
        let parsed = if value.get("kind").and_then(|k| k.as_str()) == Some("hello") {
            serde_json::from_value(value).map(Line::Hello)
        } else {
            serde_json::from_value(value).map(|o| Line::Output(Box::new(o)))
        };
        parsed.unwrap_or_else(|e| Line::Bad(format!("{e}: {}", clip(line))))
    }
}

/// At most 200 characters of a line, for messages.
pub fn clip(line: &str) -> String {
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drctl_plugin_api::messages::{Event, Password, Reply};

    #[test]
    fn connect_carries_epoch_and_password_others_no_epoch() {
        let connect = Command::Connect {
            site: "site1".into(),
            cs_proxy: "127.0.0.1:7000".into(),
            app_name: "AIL_site1".into(),
            username: "jdoe".into(),
            password: Password::new("s3cret"),
            on_demand_loading: true,
        };
        let line = serde_json::to_string(&ToSidecar::new("agent-1", 4, Some(2), &connect)).unwrap();
        assert!(line.starts_with(r#"{"kind":"command","session":"agent-1","id":4,"epoch":2,"#));
        assert!(line.contains(r#""password":"s3cret""#), "{line}");
        let line =
            serde_json::to_string(&ToSidecar::new("agent-1", 5, None, &Command::KillFactory))
                .unwrap();
        assert_eq!(
            line,
            r#"{"kind":"command","session":"agent-1","id":5,"command":{"type":"kill_factory"}}"#
        );
    }

    #[test]
    fn sidecar_lines() {
        match Line::parse(
            r#"{"kind":"hello","protocol":1,"build":"b","java":"17","missing":["X"]}"#,
        ) {
            Line::Hello(h) => assert_eq!(h.missing, vec!["X"]),
            other => panic!("{other:?}"),
        }
        match Line::parse(
            r#"{"kind":"result","session":"a","id":1,"result":{"type":"connected","epoch":3}}"#,
        ) {
            Line::Output(o) => match *o {
                Output::Result { result, .. } => {
                    assert_eq!(result, Ok(Reply::Connected { epoch: 3 }))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        match Line::parse(
            r#"{"kind":"event","session":"a","epoch":3,"event":{"type":"agent_logout","dn":"7001","reason":null,"extensions":{}}}"#,
        ) {
            Line::Output(o) => assert!(
                matches!(
                    &*o,
                    Output::Event {
                        event: Event::AgentLogout { reason: None, .. },
                        ..
                    }
                ),
                "{o:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Line::parse("Picked up JAVA_TOOL_OPTIONS"),
            Line::Bad(_)
        ));
        assert!(matches!(Line::parse(r#"{"kind":"hello"}"#), Line::Bad(_)));
    }

    #[test]
    fn clip_keeps_short_lines_and_cuts_long_ones() {
        assert_eq!(clip("abc"), "abc");
        assert_eq!(clip(&"x".repeat(300)).chars().count(), 201);
    }
}

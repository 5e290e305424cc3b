//! `[backend.ail-bridge]`, as the host hands it over (plus the `[genesys]`
//! names and the agent's DN, which the host adds).

use crate::names::{self, NamesFile};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The plugin's settings. Durations are strings such as `"500ms"` or `"30s"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BridgeConfig {
    /// The `java` to run; default `$JAVA_HOME/bin/java`, else `java` on `PATH`.
    #[serde(default)]
    pub java: Option<PathBuf>,
    /// The AIL jars (entries may be `dir/*`), after the sidecar's own jar.
    #[serde(default, deserialize_with = "one_or_many")]
    pub classpath: Vec<String>,
    /// Extra JVM options, before the main class (e.g. `-Xmx256m`, `-Dkey=value`).
    #[serde(default)]
    pub jvm_args: Vec<String>,
    /// AIL's own reconnect interval, given to AilLoader (whole seconds; the seed's "retry interval").
    #[serde(default = "secs::<10>", with = "humantime_serde")]
    pub retry_interval: Duration,
    /// First delay before restarting a dead sidecar; doubles per failure.
    #[serde(default = "secs::<1>", with = "humantime_serde")]
    pub restart_delay: Duration,
    /// Cap of the restart delay.
    #[serde(default = "secs::<60>", with = "humantime_serde")]
    pub restart_max_delay: Duration,
    /// How long a starting JVM may take to answer the handshake.
    #[serde(default = "secs::<30>", with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long a stopping JVM may take to exit before it is killed.
    #[serde(default = "secs::<3>", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Command (program and arguments) that relaunches the embedded SIP endpoint (D4).
    #[serde(default)]
    pub relaunch_endpoint: Vec<String>,
    /// E2's probe command (program and arguments), run after the probed CS
    /// Proxy accepted a TCP connection; exit 0 = healthy. Environment: as
    /// the JVM's, plus `DRCTL_PROBE_SITE` and `DRCTL_PROBE_CS_PROXY`.
    #[serde(default)]
    pub probe_command: Vec<String>,
    /// Bound of the probe's connect, and of its command.
    #[serde(default = "secs::<3>", with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// Extra environment variables for the JVM (its environment is otherwise cleared).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Where the sidecar jar is written; default the user's cache dir.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The agent's DN (from `agent.dn`, added by the host).
    #[serde(default, deserialize_with = "opt_lenient_string")]
    pub dn: Option<String>,
    /// The Genesys-side names (from `[genesys]`, added by the host).
    #[serde(default)]
    pub genesys: GenesysNames,
    /// A names file (TOML, or Java properties) remapping the AIL class,
    /// method and constant names the adapter uses (see [`crate::names`]).
    #[serde(default)]
    pub names: Option<PathBuf>,
    /// AIL statuses that count as OFF (SPEC D1: only OFF starts the site
    /// timer, others only if configured); default: the OFF constant alone.
    #[serde(default)]
    pub off_statuses: Option<Vec<String>>,
    /// Keys of a logout's reason code, each looked up in the event's reasons
    /// then its extensions, in order.
    #[serde(default = "default_reason_code_keys")]
    pub reason_code_keys: Vec<String>,
    /// Reason codes as AIL reports them -> as drctl classifies them
    /// (`dr-force_logout`, `graceful_shutdown_logout`, supervisor reasons).
    #[serde(default)]
    pub reason_code_aliases: BTreeMap<String, String>,
    /// Where the sidecar puts `loading/on-demand` (W1).
    #[serde(default)]
    pub on_demand_via: OnDemandVia,
    /// The on-demand loading option's name (the seed's `loading/on-demand`).
    #[serde(default = "default_on_demand_option")]
    pub on_demand_option: String,
    /// The DR option holding the site timeout (the seed's `site-timeout`).
    #[serde(default = "default_site_timeout_option")]
    pub site_timeout_option: String,
    /// The DR option holding the SIP register timeout (the seed's `site-sip-register-timeout`).
    #[serde(default = "default_site_sip_register_timeout_option")]
    pub site_sip_register_timeout_option: String,
    /// The names file as read when the config was (never from the host's JSON).
    #[serde(skip)]
    pub names_file: Option<NamesFile>,
}

/// Where the sidecar puts `loading/on-demand`: the seed says to set the
/// option, not where; the guide's AilLoader takes options in its constructor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDemandVia {
    /// In the `Properties` given to the AilLoader constructor (ASSUMED default).
    #[default]
    LoaderProperties,
    /// As a JVM system property, set before each AilLoader is constructed.
    SystemProperty,
    /// Not set by drctl: the AIL Application's own option in Configuration Server.
    None,
}

/// `[genesys]`: where the Person and Application objects keep the DR settings (S2, S3).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct GenesysNames {
    /// Person annex section naming the two AIL Applications.
    pub person_annex_section: String,
    /// Option naming the preferred (site 1) application.
    pub preferred_app_option: String,
    /// Option naming the secondary (site 2) application.
    pub secondary_app_option: String,
    /// Application options section holding the DR options.
    pub dr_options_section: String,
}

impl Default for GenesysNames {
    fn default() -> Self {
        GenesysNames {
            person_annex_section: "dr".to_owned(),
            preferred_app_option: "site1-application".to_owned(),
            secondary_app_option: "site2-application".to_owned(),
            dr_options_section: "dr".to_owned(),
        }
    }
}

fn default_reason_code_keys() -> Vec<String> {
    vec!["ReasonCode".to_owned()]
}

fn default_on_demand_option() -> String {
    "loading/on-demand".to_owned()
}

fn default_site_timeout_option() -> String {
    "site-timeout".to_owned()
}

fn default_site_sip_register_timeout_option() -> String {
    "site-sip-register-timeout".to_owned()
}

/// The most entries of a list or table of names (a handful is typical).
const MAX_ENTRIES: usize = 64;

/// The longest name, key or code accepted.
const MAX_NAME: usize = 256;

/// A name is 1 to [`MAX_NAME`] characters, without control characters.
fn check_name(key: &str, name: &str) -> Result<(), crate::BridgeError> {
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(crate::BridgeError::Config(format!(
            "{key}: {name:?} must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(())
}

/// A list of names: 1 to [`MAX_ENTRIES`] of them.
fn check_names(key: &str, names: &[String]) -> Result<(), crate::BridgeError> {
    if names.is_empty() || names.len() > MAX_ENTRIES {
        return Err(crate::BridgeError::Config(format!(
            "{key} must list 1 to {MAX_ENTRIES} names"
        )));
    }
    names.iter().try_for_each(|n| check_name(key, n))
}

/// `N` seconds: a field's default (`#[serde(default = "secs::<N>")]`).
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

/// A string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// A DN written as a string or a number.
fn opt_lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Lenient>::deserialize(d)?.map(|v| match v {
        Lenient::Text(s) => s,
        Lenient::Number(n) => n.to_string(),
    }))
}

impl BridgeConfig {
    /// Reads the host's JSON.
    pub fn from_json(value: serde_json::Value) -> Result<BridgeConfig, crate::BridgeError> {
        let value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        let mut cfg: BridgeConfig =
            serde_json::from_value(value).map_err(|e| crate::BridgeError::Config(e.to_string()))?;
        if cfg.restart_delay.is_zero() || cfg.restart_max_delay < cfg.restart_delay {
            return Err(crate::BridgeError::Config(
                "restart-delay must be > 0 and restart-max-delay >= restart-delay".into(),
            ));
        }
        if cfg.retry_interval.as_secs() == 0 {
            return Err(crate::BridgeError::Config(
                "retry-interval must be at least 1s (AIL takes whole seconds)".into(),
            ));
        }
        if cfg.probe_timeout.is_zero() {
            return Err(crate::BridgeError::Config(
                "probe-timeout must be > 0".into(),
            ));
        }
        if let Some(off) = &cfg.off_statuses {
            check_names("off-statuses", off)?;
        }
        check_names("reason-code-keys", &cfg.reason_code_keys)?;
        if cfg.reason_code_aliases.len() > MAX_ENTRIES {
            return Err(crate::BridgeError::Config(format!(
                "reason-code-aliases has more than {MAX_ENTRIES} entries"
            )));
        }
        for (from, to) in &cfg.reason_code_aliases {
            check_name("reason-code-aliases", from)?;
            check_name("reason-code-aliases", to)?;
        }
        check_name("on-demand-option", &cfg.on_demand_option)?;
        check_name("site-timeout-option", &cfg.site_timeout_option)?;
        check_name(
            "site-sip-register-timeout-option",
            &cfg.site_sip_register_timeout_option,
        )?;
        if let Some(path) = &cfg.names {
            // drctl may run from anywhere (a service's working directory is /).
            if !path.is_absolute() {
                return Err(crate::BridgeError::Config(format!(
                    "names = {path:?} must be an absolute path"
                )));
            }
            cfg.names_file = Some(names::load(path)?);
        }
        Ok(cfg)
    }

    /// The `java` to run.
    pub fn java(&self) -> PathBuf {
        if let Some(java) = &self.java {
            return java.clone();
        }
        if let Some(home) = std::env::var_os("JAVA_HOME") {
            let java = PathBuf::from(home).join("bin").join("java");
            if java.is_file() {
                return java;
            }
        }
        PathBuf::from("java")
    }

    /// The restart delay after `failures` consecutive failures (1 = the first).
    pub fn restart_backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.restart_delay
            .saturating_mul(1 << doublings)
            .min(self.restart_max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_host_additions() {
        let cfg = BridgeConfig::from_json(json!({
            "classpath": "/opt/ail/lib/*",
            "dn": 7001,
            "genesys": {"person-annex-section": "drx", "preferred-app-option": "a",
                        "secondary-app-option": "b", "dr-options-section": "c"}
        }))
        .unwrap();
        assert_eq!(cfg.classpath, vec!["/opt/ail/lib/*"]);
        assert_eq!(cfg.dn.as_deref(), Some("7001"));
        assert_eq!(cfg.genesys.person_annex_section, "drx");
        assert_eq!(cfg.retry_interval, Duration::from_secs(10));
        assert_eq!(cfg.shutdown_grace, Duration::from_secs(3));
        assert!(BridgeConfig::from_json(serde_json::Value::Null).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        let e = BridgeConfig::from_json(json!({"pasword": "x"})).unwrap_err();
        assert!(e.to_string().contains("pasword"), "{e}");
        let e = BridgeConfig::from_json(json!({"restart-delay": "soon"})).unwrap_err();
        assert!(e.to_string().starts_with("backend.ail-bridge: "), "{e}");
        let e = BridgeConfig::from_json(json!({"retry-interval": "500ms"})).unwrap_err();
        assert!(e.to_string().contains("retry-interval"), "{e}");
    }

    #[test]
    fn fidelity_keys_default_to_the_seed_and_are_checked() {
        let cfg = BridgeConfig::from_json(json!({})).unwrap();
        assert_eq!(cfg.off_statuses, None);
        assert_eq!(cfg.reason_code_keys, vec!["ReasonCode"]);
        assert_eq!(cfg.on_demand_via, OnDemandVia::LoaderProperties);
        assert_eq!(cfg.on_demand_option, "loading/on-demand");
        assert_eq!(cfg.site_timeout_option, "site-timeout");
        assert_eq!(
            cfg.site_sip_register_timeout_option,
            "site-sip-register-timeout"
        );
        let cfg = BridgeConfig::from_json(json!({
            "off-statuses": ["OFF", "ABSENT"],
            "on-demand-via": "system-property",
            "reason-code-aliases": {"DR_FORCE": "dr-force_logout"},
        }))
        .unwrap();
        assert_eq!(cfg.off_statuses, Some(vec!["OFF".into(), "ABSENT".into()]));
        assert_eq!(cfg.on_demand_via, OnDemandVia::SystemProperty);
        for (bad, key) in [
            (json!({"off-statuses": []}), "off-statuses"),
            (json!({"reason-code-keys": [""]}), "reason-code-keys"),
            (json!({"on-demand-via": "jndi"}), "jndi"),
            (json!({"on-demand-option": "a\nb"}), "on-demand-option"),
            (json!({"names": "relative.toml"}), "absolute"),
            (
                json!({"names": "/nonexistent/names.toml"}),
                "/nonexistent/names.toml",
            ),
        ] {
            let e = BridgeConfig::from_json(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn restart_backoff_doubles_up_to_the_cap() {
        let cfg =
            BridgeConfig::from_json(json!({"restart-delay": "1s", "restart-max-delay": "5s"}))
                .unwrap();
        let secs: Vec<u64> = (1..=5).map(|n| cfg.restart_backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 5]);
    }
}

//! `[backend.ail-bridge]`, as the host hands it over (plus the `[genesys]`
//! names and the agent's DN, which the host adds).

use serde::{Deserialize, Deserializer};
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
    #[serde(default = "default_retry_interval", with = "humantime_serde")]
    pub retry_interval: Duration,
    /// First delay before restarting a dead sidecar; doubles per failure.
    #[serde(default = "default_restart_delay", with = "humantime_serde")]
    pub restart_delay: Duration,
    /// Cap of the restart delay.
    #[serde(default = "default_restart_max_delay", with = "humantime_serde")]
    pub restart_max_delay: Duration,
    /// How long a starting JVM may take to answer the handshake.
    #[serde(default = "default_startup_timeout", with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long a stopping JVM may take to exit before it is killed.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Command (program and arguments) that relaunches the embedded SIP endpoint (D4).
    #[serde(default)]
    pub relaunch_endpoint: Vec<String>,
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

fn default_retry_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_restart_delay() -> Duration {
    Duration::from_secs(1)
}

fn default_restart_max_delay() -> Duration {
    Duration::from_secs(60)
}

fn default_startup_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(3)
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
        let cfg: BridgeConfig =
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
    fn restart_backoff_doubles_up_to_the_cap() {
        let cfg =
            BridgeConfig::from_json(json!({"restart-delay": "1s", "restart-max-delay": "5s"}))
                .unwrap();
        let secs: Vec<u64> = (1..=5).map(|n| cfg.restart_backoff(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 5]);
    }
}

//! The configuration schema: one struct per `[section]`, kebab-case keys, defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use drctl_policy::BackoffConfig;
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::secret::{redact, Secret, REDACTED};
use crate::serde_util::{duration, opt_duration, opt_lenient_string};

/// The whole drctl configuration, as extracted from all layers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// `[agent]`: who logs in and how.
    pub agent: AgentConfig,
    /// `[[agents]]`: fleet mode, many agents in one watcher (each like
    /// `[agent]`; a missing password source falls back to `[agent]`'s).
    pub agents: Vec<AgentConfig>,
    /// `[[sites]]`: exactly two sites.
    pub sites: Vec<SiteConfig>,
    /// `[startup]`: S1 and S5.
    pub startup: StartupConfig,
    /// `[policy]`: detection timers and drctl's additions (D1, D4, E1-E4).
    pub policy: PolicyConfig,
    /// `[backend]`: which plugin and its own settings.
    pub backend: BackendConfig,
    /// `[genesys]`: Genesys-side names the public docs do not pin down.
    pub genesys: GenesysConfig,
    /// `[control]`: the control socket of `drctl watch`.
    pub control: ControlConfig,
    /// `[alarms]`: where alarms and switchovers are sent.
    pub alarms: AlarmsConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[history]`: the host's audit log of decisions (`drctl history`).
    pub history: HistoryConfig,
    /// `[switch]`: what a switchover must pass first (`[[switch.gates]]`).
    pub switch: SwitchConfig,
    /// Where the values came from (set by [`Config::load`]).
    #[serde(skip)]
    pub(crate) sources: Sources,
}

/// `[agent]`: the agent's identity and the source of the password.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The agent's login name (required for real runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Name of the environment variable holding the password (preferred).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password; must not be readable by group or others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The password itself, in clear (discouraged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Name of a systemd credential holding the password, read from
    /// `$CREDENTIALS_DIRECTORY/<name>` (`LoadCredential=<name>:FILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_credential: Option<String>,
    /// The agent's DN.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_lenient_string"
    )]
    pub dn: Option<String>,
    /// The desktop has an embedded SIP endpoint to relaunch after `dr-force_logout` (D4).
    pub embedded_endpoint: bool,
    /// Hot (hotel) seating is used; forbids `startup.cache-preferred` (S5).
    pub hot_seating: bool,
    /// Log the agent in on its DN after each connect and subscribe (W5); needs `dn`.
    pub login: bool,
    /// W5: the ACD queue the login names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_queue: Option<String>,
    /// W5: the work mode after login (as the AIL login takes it), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_workmode: Option<String>,
    /// W5: reasons (key = value) the login carries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub login_reasons: BTreeMap<String, String>,
}

/// One `[[sites]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SiteConfig {
    /// The operator's name for the site (`site1`).
    pub name: String,
    /// Configuration Server Proxy `host:port`.
    pub cs_proxy: String,
    /// The site's AIL Application object name.
    pub app_name: String,
}

impl SiteConfig {
    /// Splits `cs-proxy` into host and port, if it is a valid `host:port`.
    pub fn cs_proxy_host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.cs_proxy.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().ok()?;
        (!host.is_empty() && port != 0).then_some((host, port))
    }
}

/// `[startup]`: where to connect first and how to retry (S1, S5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct StartupConfig {
    /// The site tried first; absent means the first `[[sites]]` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_site: Option<String>,
    /// Cache the preferred site and try it first next time (S5).
    pub cache_preferred: bool,
    /// Where the preferred-site cache lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_file: Option<PathBuf>,
    /// `drctl startup` gives up after this long; `0s` retries forever.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Backoff between connect rounds (S1, W4).
    #[serde(with = "BackoffForm")]
    pub backoff: BackoffConfig,
}

impl Default for StartupConfig {
    fn default() -> Self {
        StartupConfig {
            first_site: None,
            cache_preferred: false,
            cache_file: None,
            timeout: Duration::from_secs(300),
            backoff: BackoffConfig::default(),
        }
    }
}

/// `startup.backoff`: the engine's own [`BackoffConfig`], read and written
/// in the file's form (kebab-case keys, humantime durations, engine defaults
/// for keys left out). A serde remote definition: the compiler checks it
/// field for field against the engine's type, so there is one definition.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "BackoffConfig",
    rename_all = "kebab-case",
    deny_unknown_fields,
    default = "BackoffConfig::default"
)]
pub(crate) struct BackoffForm {
    /// Delay before the first retry round (> 0).
    #[serde(with = "duration")]
    initial: Duration,
    /// Growth factor per round (>= 1).
    factor: f64,
    /// Cap of the delay (>= initial).
    #[serde(with = "duration")]
    max: Duration,
    /// Relative jitter in `[0, 1)`: the delay is scaled by `1 ± jitter`.
    jitter: f64,
}

/// `policy.failback` (E2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailbackMode {
    /// Stay on the secondary until an operator switches back.
    #[default]
    Manual,
    /// Return to the preferred site once healthy for `policy.failback-after`.
    Auto,
}

/// `[policy]`: detection overrides and drctl's additions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Overrides the AIL Application's `site-timeout` (D1); absent uses the app's, `0s` disables.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub site_timeout: Option<Duration>,
    /// Overrides the AIL Application's `site-sip-register-timeout` (D4); same semantics.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub site_sip_register_timeout: Option<Duration>,
    /// Logout reasons meaning "a supervisor logged the agent out" (D4).
    pub supervisor_logout_reasons: Vec<String>,
    /// Suppress automatic switchovers this long after one (E1); `0s` is off.
    #[serde(with = "duration")]
    pub hold_down: Duration,
    /// Failback mode (E2).
    pub failback: FailbackMode,
    /// With `failback = "auto"`: how long the preferred site must have answered
    /// healthy (probes without a break) before the failback.
    #[serde(with = "duration")]
    pub failback_after: Duration,
    /// With `failback = "auto"`: how often the preferred site is probed while
    /// the agent is on the other one (> 0).
    #[serde(with = "duration")]
    pub failback_probe_interval: Duration,
    /// Upper bound of the random delay before an automatic switchover (E4); `0s` is off.
    #[serde(with = "duration")]
    pub switchover_jitter: Duration,
    /// Follow Configuration Server directives live (E5): the Person's
    /// preferred Application, an Application's `evacuate` option.
    pub directives: bool,
    /// Seed of the engine's RNG.
    pub seed: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            site_timeout: None,
            site_sip_register_timeout: None,
            supervisor_logout_reasons: vec!["supervisor_forced_logout".to_owned()],
            hold_down: Duration::ZERO,
            failback: FailbackMode::Manual,
            failback_after: Duration::from_secs(600),
            failback_probe_interval: Duration::from_secs(10),
            switchover_jitter: Duration::ZERO,
            directives: false,
            seed: 0,
        }
    }
}

/// `[backend]`: the plugin to load and its settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct BackendConfig {
    /// The backend plugin's name (`mock`, `replay`, `ail-bridge`).
    pub name: String,
    /// Extra directories searched for plugins.
    pub plugin_dirs: Vec<PathBuf>,
    /// A command the backend has not answered after this long counts as a
    /// backend fault: the instance is replaced (SPEC §9).
    #[serde(with = "duration")]
    pub command_timeout: Duration,
    /// `[backend.<plugin>]` tables, free-form, passed to that plugin as JSON.
    #[serde(flatten)]
    pub tables: BTreeMap<String, toml::Value>,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            name: "mock".to_owned(),
            plugin_dirs: Vec::new(),
            command_timeout: Duration::from_secs(30),
            tables: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for BackendConfig {
    /// Secret-looking keys of the plugin tables print as `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("name", &self.name)
            .field("plugin_dirs", &self.plugin_dirs)
            .field("command_timeout", &self.command_timeout)
            .field("tables", &self.redacted_tables())
            .finish()
    }
}

impl BackendConfig {
    /// The plugin tables with secret-looking values replaced by `<redacted>`.
    pub fn redacted_tables(&self) -> BTreeMap<String, toml::Value> {
        let mut tables = self.tables.clone();
        tables.values_mut().for_each(redact);
        tables
    }

    /// The `[backend.<name>]` table as JSON (an empty object if absent).
    pub fn table_json(&self, name: &str) -> serde_json::Value {
        match self.tables.get(name) {
            Some(value) => serde_json::to_value(value)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
            None => serde_json::Value::Object(Default::default()),
        }
    }

    /// The table of the selected backend (`[backend.<backend.name>]`) as JSON.
    pub fn selected_json(&self) -> serde_json::Value {
        self.table_json(&self.name)
    }
}

/// `[genesys]`: Genesys-side names that the public docs do not pin down (S2, S3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GenesysConfig {
    /// Section of the Person object's annex naming the agent's two AIL Applications.
    pub person_annex_section: String,
    /// Option (in that section) naming the preferred (site 1) AIL Application.
    pub preferred_app_option: String,
    /// Option (in that section) naming the secondary (site 2) AIL Application.
    pub secondary_app_option: String,
    /// Section of the AIL Application's options holding the DR options.
    pub dr_options_section: String,
    /// Option (in the DR section of an AIL Application) that evacuates its
    /// site while `true` (E5, with `policy.directives`).
    pub evacuate_option: String,
}

impl Default for GenesysConfig {
    fn default() -> Self {
        GenesysConfig {
            person_annex_section: "dr".to_owned(),
            preferred_app_option: "site1-application".to_owned(),
            secondary_app_option: "site2-application".to_owned(),
            dr_options_section: "dr".to_owned(),
            evacuate_option: "evacuate".to_owned(),
        }
    }
}

/// `[control]`: how `drctl status|pause|resume|switch` reach a running `drctl watch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ControlConfig {
    /// The Unix socket; absent: `$XDG_RUNTIME_DIR/drctl/<agent>.sock`, else
    /// `/run/drctl/<agent>.sock` for root, `/tmp/drctl-<uid>/<agent>.sock` for
    /// others (the directory is made 0700, the socket 0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

/// `[history]`: every decision of every watcher and drill on the host,
/// appended to one JSON Lines file (`drctl history` reads it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Whether decisions are appended at all.
    pub enabled: bool,
    /// The log; absent: `history.jsonl` in the state directory
    /// (`$STATE_DIRECTORY`, else `~/.local/state/drctl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The log is rotated (`.1`, `.2`, …) before it grows past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files are kept.
    pub keep: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            file: None,
            max_bytes: 16 * 1024 * 1024,
            keep: 4,
        }
    }
}

/// `[switch]`: checks before a switchover.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SwitchConfig {
    /// `[[switch.gates]]`: each runs before every switchover of the kinds it
    /// applies to; one veto refuses the switchover.
    pub gates: Vec<GateConfig>,
}

/// One `[[switch.gates]]` entry: an exec command (no shell) or an HTTP GET,
/// whose non-zero exit, non-2xx answer or timeout vetoes the switchover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GateConfig {
    /// The gate's name (what a refusal and `--skip-gate` name).
    pub name: String,
    /// The program and its arguments (no shell); exclusive with `http`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// exec: variables added to the command's otherwise cleared environment
    /// (values shown redacted).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_sink_env"
    )]
    pub env: BTreeMap<String, String>,
    /// An `http://` or `https://` URL to GET; exclusive with `exec`; shown redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<SinkUrl>,
    /// How long the gate may take; longer is a veto.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// The switchover reasons it applies to: `operator`, `failback`,
    /// `telephony-timeout`, `sip-register-timeout`, `graceful-shutdown`.
    pub applies_to: Vec<drctl_protocol::Reason>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            name: String::new(),
            exec: Vec::new(),
            env: BTreeMap::new(),
            http: None,
            timeout: Duration::from_secs(10),
            applies_to: vec![
                drctl_protocol::Reason::Operator,
                drctl_protocol::Reason::Failback,
            ],
        }
    }
}

/// `[alarms]`: upstream monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// `[[alarms.sinks]]`: each gets every alarm raised/cleared and every
    /// switchover started/completed/failed.
    pub sinks: Vec<SinkConfig>,
}

/// The kind of an alarm sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// HTTP POST of a JSON body to `url`.
    #[default]
    Webhook,
    /// Run `command` with the alarm in `DRCTL_*` environment variables.
    Exec,
    /// Alarms to Prometheus Alertmanager's v2 API (`POST <url>/api/v2/alerts`),
    /// re-sent every `resend-interval` while up.
    Alertmanager,
}

/// One `[[alarms.sinks]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SinkConfig {
    /// `webhook`, `exec` or `alertmanager`.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// webhook: the URL (`http://` or `https://`); alertmanager: the
    /// Alertmanager's base URL; shown redacted everywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<SinkUrl>,
    /// exec: the program and its arguments (no shell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// exec: variables added to the command's otherwise cleared environment
    /// (values are shown redacted).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "serialize_sink_env"
    )]
    pub env: BTreeMap<String, String>,
    /// How long one attempt may take.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// webhook: attempts after the first failed one.
    pub retries: u32,
    /// webhook: delay before the first retry, doubled for each next one.
    #[serde(with = "duration")]
    pub retry_backoff: Duration,
    /// alertmanager: how often the alarms still up are sent again (so an
    /// Alertmanager that restarted learns them), as Prometheus' resend delay.
    #[serde(with = "duration")]
    pub resend_interval: Duration,
    /// alertmanager: labels added to every alert (`team = "contact-centre"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// alertmanager: the `severity` label per alarm name, over drctl's defaults.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, String>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kind: SinkKind::Webhook,
            url: None,
            command: Vec::new(),
            env: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            retries: 3,
            retry_backoff: Duration::from_secs(1),
            resend_interval: Duration::from_secs(60),
            labels: BTreeMap::new(),
            severity: BTreeMap::new(),
        }
    }
}

/// A webhook sink's URL: it may carry credentials (`user:pass@`, `?token=`),
/// so `Debug`, `Display` and `Serialize` show it [redacted](redact_url); only
/// [`SinkUrl::expose`] gives the whole URL, for the request itself.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SinkUrl(String);

impl SinkUrl {
    /// The whole URL, credentials included: for sending, never for showing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SinkUrl {
    fn from(url: &str) -> Self {
        SinkUrl(url.to_owned())
    }
}

impl From<String> for SinkUrl {
    fn from(url: String) -> Self {
        SinkUrl(url)
    }
}

impl fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl Serialize for SinkUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&redact_url(&self.0))
    }
}

impl<'de> Deserialize<'de> for SinkUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SinkUrl)
    }
}

/// `url` with what may be a credential replaced by [`REDACTED`]: the userinfo
/// (`user:pass@`), every query value (tokens travel under many names: `token`,
/// `key`, `sig`, `code`…) and the fragment. Scheme, host, port and path stay,
/// so the sink can still be told apart in logs.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let fragment = url.contains('#');
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    // The last '@' ends the userinfo (a password may contain '@' unescaped).
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{REDACTED}@{host}"),
        None => authority.to_owned(),
    };
    let mut out = match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                // A bare `?abcdef` may itself be the token.
                None => REDACTED.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if fragment {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// A sink's `env` as shown: the keys, never the values (this table is where
/// a sink's own credentials go, under any name).
fn serialize_sink_env<S: serde::Serializer>(
    env: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&str, &str> = env.keys().map(|k| (k.as_str(), REDACTED)).collect();
    shown.serialize(serializer)
}

/// `[metrics]`: a read-only Prometheus endpoint (`GET /metrics`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to listen on; absent: no endpoint (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Connections served at once; more are closed at once (1 to 10 000).
    pub max_connections: u32,
    /// How long a client may take to send a request's headers (also the
    /// longest an idle connection is kept).
    #[serde(with = "duration")]
    pub header_timeout: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Where a loaded config came from: the figment (for metadata) and the files read.
#[derive(Clone, Default)]
pub(crate) struct Sources {
    /// The figment the config was extracted from.
    pub(crate) figment: Option<Figment>,
    /// Config files that existed and were read, lowest layer first.
    pub(crate) files: Vec<PathBuf>,
    /// Every config file layer looked at, whether it existed or not.
    pub(crate) searched: Vec<PathBuf>,
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Sources {
    /// Provenance never makes two configs different.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Config {
    /// The config files that were read, lowest layer first.
    pub fn files(&self) -> &[PathBuf] {
        &self.sources.files
    }

    /// The site tried first (S1): `startup.first-site`, else the first `[[sites]]` entry.
    pub fn first_site(&self) -> Option<&SiteConfig> {
        match &self.startup.first_site {
            Some(name) => self.site(name),
            None => self.sites.first(),
        }
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_url_shows_no_credentials() {
        for (url, shown) in [
            (
                "https://hooks.example.com/drctl",
                "https://hooks.example.com/drctl",
            ),
            (
                "http://ops:s3cr@t@10.0.0.1:8080/hook?token=abc&team=cc#sig",
                "http://<redacted>@10.0.0.1:8080/hook?token=<redacted>&team=<redacted>#<redacted>",
            ),
            ("https://h/x?abcdef", "https://h/x?<redacted>"),
            (
                "https://user@h?key=1",
                "https://<redacted>@h?key=<redacted>",
            ),
        ] {
            let u = SinkUrl::from(url);
            assert_eq!(redact_url(url), shown);
            assert_eq!(u.to_string(), shown);
            assert_eq!(format!("{u:?}"), format!("{shown:?}"));
            assert_eq!(serde_json::to_string(&u).ok(), Some(format!("{shown:?}")));
            assert_eq!(u.expose(), url);
        }
    }
}

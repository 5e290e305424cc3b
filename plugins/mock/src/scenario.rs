//! The scenario file (SPEC §6): a simulated two-site deployment and a
//! timeline of what happens to it. Ops write these by hand for drills, so
//! every error names the file, the line and the key.
//!
//! Fleet keys (issue 7), all optional:
//!
//! - `deployment.agents = N`: how many agents the scenario is written for
//!   (a whole number ≥ 1, default 1). The mock serves whatever sessions
//!   come; `drctl simulate` reads it when `--agents` is not given.
//! - `deployment.cs-proxy-capacity = R`: logins per second each site's CS
//!   Proxy serves (a positive number, default unlimited), and
//!   `deployment.cs-proxy-queue = Q`: how many logins may wait per site
//!   (a whole number ≥ 1, default `ceil(10 × R)`; only with a capacity).
//!   The model is in [`crate::sim`].
//! - `agents` on an agent event (`logout`, `dn-back-in-service`,
//!   `dn-out-of-service`, `disconnect`, and their `stale` form): which
//!   sessions it reaches, see [`Targets`]. Site events (`site` + `set`)
//!   always reach every session connected at the site.
//!
//! Configuration Server and login keys of a `[sites.<name>]` table (issue
//! 15), all optional:
//!
//! - `cs-proxy = "host:port"`: the CS Proxy the site's AIL Application names
//!   (S3), when ops have moved it away from the host's `[[sites]]` entry. A
//!   connect or probe naming another address for that site finds nothing
//!   there. Absent: whatever the host names.
//! - `application-readable = false`: reading the site's AIL Application fails.
//! - `login-fails = true` (also in `set`): the agent's login (W5) is refused there.
//!
//! Configuration Server changes (E5, issue 18): an event
//! `config = { object = "application", name = "AIL_site1", section = "dr",
//! option = "evacuate", value = "true" }` (`object` is `person` or
//! `application`; no `value` = the option was deleted) is an agent event:
//! a `config_changed` to every subscribed session (or those `agents` names).

use drctl_plugin_api::duration;
use drctl_plugin_api::messages::MAX_APPLICATION_OPTIONS;
/// A service's status in a scenario: `on` or `off`, as on the wire.
pub use drctl_plugin_api::ServiceState;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The deployment-wide settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Deployment {
    /// The site the agent's Person object names as site 1.
    pub preferred_site: Spanned<String>,
    /// Where the desktop tries first (S1); the host's config decides when absent.
    pub first_site: Option<Spanned<String>>,
    /// CS Proxy connect + AIL load time.
    #[serde(
        default = "default_connect_latency",
        deserialize_with = "connect_latency"
    )]
    pub connect_latency: Duration,
    /// DN back in service after a (re)login when SIP is up.
    #[serde(
        default = "default_register_delay",
        deserialize_with = "register_delay"
    )]
    pub register_delay: Duration,
    /// `site-timeout` in the AIL Applications; absent = not configured.
    #[serde(default, deserialize_with = "site_timeout")]
    pub site_timeout: Option<Duration>,
    /// `site-sip-register-timeout` in the AIL Applications.
    #[serde(default, deserialize_with = "site_sip_register_timeout")]
    pub site_sip_register_timeout: Option<Duration>,
    /// Where `--until-end` stops.
    #[serde(default, deserialize_with = "end")]
    pub end: Option<Duration>,
    /// How many agents the scenario is written for (`drctl simulate`'s default fleet).
    #[serde(default = "one_agent", deserialize_with = "agent_count")]
    pub agents: u32,
    /// Logins per second each site's CS Proxy serves; absent = unlimited.
    #[serde(default, deserialize_with = "login_rate")]
    pub cs_proxy_capacity: Option<f64>,
    /// How many logins may wait per site; use [`Deployment::capacity`] for the default.
    #[serde(default, deserialize_with = "queue_len")]
    pub cs_proxy_queue: Option<Spanned<u32>>,
}

/// A site's CS Proxy login capacity, resolved from the deployment keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    /// Logins served per second.
    pub per_second: f64,
    /// Logins that may wait at once; the next one is refused.
    pub queue: u32,
}

impl Deployment {
    /// The CS Proxy capacity, `None` when unlimited; the queue defaults to `ceil(10 × R)`.
    pub fn capacity(&self) -> Option<Capacity> {
        let per_second = self.cs_proxy_capacity?;
        let queue = match &self.cs_proxy_queue {
            Some(q) => *q.get_ref(),
            // `as` saturates, so a huge rate gives the largest queue, not a wrap.
            None => (tolerant_ceil(10.0 * per_second) as u32).max(1),
        };
        Some(Capacity { per_second, queue })
    }
}

/// A duration key: humantime text, at most [`duration::MAX`] (time is u64
/// nanoseconds on the ABI: a longer one would saturate it).
fn bounded<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)
        .map_err(|e| de::Error::custom(format!("{key}: {e}: expected a duration like \"30s\"")))?;
    duration::parse(&text).map_err(|e| de::Error::custom(format!("{key}: {e}")))
}

/// One deserializer per duration key, so that its error names the key.
macro_rules! duration_keys {
    ($($name:ident = $key:literal),* $(,)?) => {$(
        fn $name<'de, D: Deserializer<'de>, T: From<Duration>>(d: D) -> Result<T, D::Error> {
            bounded(d, $key).map(T::from)
        }
    )*};
}

duration_keys!(
    connect_latency = "deployment.connect-latency",
    register_delay = "deployment.register-delay",
    site_timeout = "deployment.site-timeout",
    site_sip_register_timeout = "deployment.site-sip-register-timeout",
    end = "deployment.end",
    at = "events.at",
);

fn one_agent() -> u32 {
    1
}

/// A whole number in `1..=u32::MAX` for `key`, or why not.
fn count(v: &toml::Value, key: &str, expected: &str) -> Result<u32, String> {
    let got = match v {
        toml::Value::Integer(n) => match u32::try_from(*n) {
            Ok(n) if n >= 1 => return Ok(n),
            _ => n.to_string(),
        },
        toml::Value::Float(f) => f.to_string(),
        other => format!("a {}", other.type_str()),
    };
    Err(format!("{key}: expected {expected}, got {got}"))
}

/// `deployment.agents`: a whole number ≥ 1.
fn agent_count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = toml::Value::deserialize(d)?;
    count(&v, "deployment.agents", "a whole number of agents ≥ 1").map_err(de::Error::custom)
}

/// `deployment.cs-proxy-queue`: a whole number ≥ 1, with its place for later checks.
fn queue_len<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<u32>>, D::Error> {
    let v = Spanned::<toml::Value>::deserialize(d)?;
    let n = count(
        v.get_ref(),
        "deployment.cs-proxy-queue",
        "how many logins may wait per site, a whole number ≥ 1",
    )
    .map_err(de::Error::custom)?;
    Ok(Some(Spanned::new(v.span(), n)))
}

/// `deployment.cs-proxy-capacity`: a positive, finite number of logins per second.
fn login_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let rate = match toml::Value::deserialize(d)? {
        // Login rates are far below 2^53: the conversion is exact.
        toml::Value::Integer(n) if n > 0 => return Ok(Some(n as f64)),
        toml::Value::Float(f) if f.is_finite() && f > 0.0 => return Ok(Some(f)),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => format!("a {}", other.type_str()),
    };
    Err(de::Error::custom(format!(
        "deployment.cs-proxy-capacity: expected logins per second per site, \
         a number > 0 such as 200, got {rate}"
    )))
}

/// `ceil(x)`, except that an `x` within 1e-9 (relative) of a whole number is
/// that number: binary floats make `0.07 × 100` come out as 7.000000000000001,
/// and ops who write 0.07 of 100 agents mean 7, not 8.
pub fn tolerant_ceil(x: f64) -> f64 {
    let nearest = x.round();
    if (x - nearest).abs() <= 1e-9 * nearest.abs().max(1.0) {
        nearest
    } else {
        x.ceil()
    }
}

/// Which agent sessions an agent event reaches (the event's `agents` key).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Targets {
    /// `"all"` (the default): every session.
    #[default]
    All,
    /// One session by id, e.g. `"agent-17"`; no effect while the mock does not know it.
    One(String),
    /// `0 < f ≤ 1`: the first `ceil(f × n)` of the `n` sessions known when the
    /// event plays, in the order of their first command.
    Fraction(f64),
}

impl Targets {
    /// How many of `n` known sessions a fraction reaches: `ceil(f × n)` (see [`tolerant_ceil`]).
    pub fn fraction_of(f: f64, n: usize) -> usize {
        // `as` saturates; the `min` keeps a rounding artefact from exceeding `n`.
        (tolerant_ceil(f * n as f64) as usize).min(n)
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Targets, D::Error> {
        const WHAT: &str =
            "\"all\", a session id such as \"agent-17\", or a fraction 0 < f ≤ 1 such as 0.25";
        let got = match toml::Value::deserialize(d)? {
            toml::Value::String(s) if s == "all" => return Ok(Targets::All),
            toml::Value::String(s) if !s.is_empty() => return Ok(Targets::One(s)),
            toml::Value::Float(f) if f > 0.0 && f <= 1.0 => return Ok(Targets::Fraction(f)),
            // An integer is ambiguous (agent number? everyone?): ask for the form meant.
            toml::Value::Integer(n) => {
                format!("the integer {n} (write \"agent-{n}\" for one agent, 1.0 for all of them)")
            }
            toml::Value::String(_) => "\"\"".to_owned(),
            toml::Value::Float(f) => f.to_string(),
            other => format!("a {}", other.type_str()),
        };
        Err(de::Error::custom(format!(
            "events.agents: expected {WHAT}, got {got}"
        )))
    }
}

fn default_connect_latency() -> Duration {
    Duration::from_millis(200)
}

fn default_register_delay() -> Duration {
    Duration::from_secs(2)
}

/// A site's state; every field defaults to up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SiteState {
    /// SIP Server pair.
    #[serde(default = "on")]
    pub telephony: ServiceState,
    /// Configuration Server pair.
    #[serde(default = "on")]
    pub configuration: ServiceState,
    /// Stat Server pair.
    #[serde(default = "on")]
    pub statistic: ServiceState,
    /// CS Proxy accepts connections.
    #[serde(default = "yes")]
    pub reachable: bool,
    /// The agent's login (W5) is refused here.
    #[serde(default)]
    pub login_fails: bool,
}

fn yes() -> bool {
    true
}

fn on() -> ServiceState {
    ServiceState::On
}

impl SiteState {
    /// This state with `patch`'s fields set.
    pub fn apply(&mut self, patch: &SitePatch) {
        if let Some(v) = patch.telephony {
            self.telephony = v;
        }
        if let Some(v) = patch.configuration {
            self.configuration = v;
        }
        if let Some(v) = patch.statistic {
            self.statistic = v;
        }
        if let Some(v) = patch.reachable {
            self.reachable = v;
        }
        if let Some(v) = patch.login_fails {
            self.login_fails = v;
        }
    }
}

impl Default for SiteState {
    fn default() -> Self {
        SiteState {
            telephony: ServiceState::On,
            configuration: ServiceState::On,
            statistic: ServiceState::On,
            reachable: true,
            login_fails: false,
        }
    }
}

/// A site's AIL Application as Configuration Server holds it (S3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteApplication {
    /// The CS Proxy it names; `None`: the one the host's `[[sites]]` names.
    pub cs_proxy: Option<String>,
    /// Whether reading it succeeds.
    pub readable: bool,
    /// Its options, `section/option` → value, as read at S3 (E5's
    /// `dr/evacuate`); `config` events on it change them.
    pub options: BTreeMap<String, String>,
}

impl Default for SiteApplication {
    fn default() -> Self {
        SiteApplication {
            cs_proxy: None,
            readable: true,
            options: BTreeMap::new(),
        }
    }
}

/// A `[sites.<name>]` table as written: the site's state and its Application.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSite {
    #[serde(default = "on")]
    telephony: ServiceState,
    #[serde(default = "on")]
    configuration: ServiceState,
    #[serde(default = "on")]
    statistic: ServiceState,
    #[serde(default = "yes")]
    reachable: bool,
    #[serde(default)]
    login_fails: bool,
    cs_proxy: Option<Spanned<String>>,
    #[serde(default = "yes")]
    application_readable: bool,
    application_options: Option<Spanned<BTreeMap<String, String>>>,
}

/// A change to some of a site's fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SitePatch {
    /// New telephony status.
    pub telephony: Option<ServiceState>,
    /// New configuration status.
    pub configuration: Option<ServiceState>,
    /// New statistic status.
    pub statistic: Option<ServiceState>,
    /// New reachability.
    pub reachable: Option<bool>,
    /// Whether the agent's login is refused from now on.
    pub login_fails: Option<bool>,
}

/// One `[[events]]` entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEvent {
    #[serde(deserialize_with = "at")]
    at: Duration,
    site: Option<Spanned<String>>,
    set: Option<SitePatch>,
    logout: Option<String>,
    #[serde(default)]
    dn_back_in_service: bool,
    #[serde(default)]
    dn_out_of_service: bool,
    #[serde(default)]
    disconnect: bool,
    /// E5: a Configuration Server object's option changed.
    config: Option<ConfigChange>,
    /// D5 drills: deliver the event on the previous connection's epoch.
    #[serde(default)]
    stale: bool,
    /// Which sessions an agent event reaches.
    agents: Option<Spanned<Targets>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawScenario {
    deployment: Deployment,
    #[serde(default)]
    sites: BTreeMap<Spanned<String>, RawSite>,
    #[serde(default)]
    events: Vec<Spanned<RawEvent>>,
}

/// What happens at a point of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening {
    /// Some of a site's fields change.
    Set {
        /// The site.
        site: String,
        /// The change.
        patch: SitePatch,
    },
    /// EventAgentLogout on the agent's DN at the connected site.
    Logout {
        /// The reason code, `None` for a manual logout.
        reason: Option<String>,
    },
    /// EventDNBackInService at the connected site.
    DnBackInService,
    /// EventDNOutOfService at the connected site.
    DnOutOfService,
    /// The backend loses its AIL session.
    Disconnect,
    /// E5: a Configuration Server object's option changed.
    ConfigChanged(ConfigChange),
}

/// E5: one option of a Configuration Server object, as a scenario changes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigChange {
    /// `person` or `application`.
    pub object: drctl_plugin_api::messages::ConfigObject,
    /// The object's name (user name, Application name).
    pub name: String,
    /// Its section.
    pub section: String,
    /// The option.
    pub option: String,
    /// The new value; absent = deleted.
    #[serde(default)]
    pub value: Option<String>,
}

/// A happening at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedHappening {
    /// When, from the session start.
    pub at: Duration,
    /// What.
    pub what: Happening,
    /// Delivered on the previous connection's epoch (a late event, D5).
    pub stale: bool,
    /// The sessions an agent event reaches; [`Targets::All`] for a site event
    /// (which reaches the sessions at its site).
    pub agents: Targets,
}

/// A parsed, validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// Deployment settings.
    pub deployment: Deployment,
    /// Both sites' initial states, by name, in name order.
    pub sites: BTreeMap<String, SiteState>,
    /// Both sites' AIL Applications, by name, in name order.
    pub applications: BTreeMap<String, SiteApplication>,
    /// The timeline, sorted by time (stable for equal times).
    pub timeline: Vec<TimedHappening>,
    /// What is legal but likely a mistake, located: an event after
    /// `deployment.end` (a run to the end never plays it).
    pub warnings: Vec<String>,
}

/// A scenario that cannot be used, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_SCENARIO_BYTES`].
    #[error(
        "{path}: {size} bytes is larger than a scenario may be \
         ({MAX_SCENARIO_BYTES} bytes, 64 MiB)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (at least).
        size: u64,
    },
    /// Bad syntax, an unknown key, a bad value or a reference to nothing.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// The largest scenario file read, 64 MiB: parsing holds the whole file and
/// its TOML tree (tens of bytes for each byte of it), so memory stays bounded.
/// The replay benchmark's 250 000-flap scenario is 35 MB.
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;

/// Reads a scenario file's text, refusing one larger than [`MAX_SCENARIO_BYTES`]
/// before reading it.
pub fn read_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let io = |source| ScenarioError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |size| ScenarioError::TooLarge {
        path: path.to_owned(),
        size,
    };
    if size > MAX_SCENARIO_BYTES {
        return Err(too_large(size));
    }
    let mut text = String::new();
    // Bounded even if the file grows (or is not a regular file).
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

impl Scenario {
    /// Reads and validates a scenario file; `sites` are the site names the host knows.
    pub fn load(path: &Path, sites: &[String]) -> Result<Scenario, ScenarioError> {
        let text = read_text(path)?;
        Scenario::parse(&text, path, sites)
    }

    /// Parses scenario text; `path` only labels errors.
    pub fn parse(text: &str, path: &Path, sites: &[String]) -> Result<Scenario, ScenarioError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_owned();
            at(e.span().unwrap_or(0..0), message)
        })?;
        let known = |name: &Spanned<String>, key: &str| {
            if sites.iter().any(|s| s == name.get_ref()) {
                Ok(name.get_ref().clone())
            } else {
                Err(at(
                    name.span(),
                    format!(
                        "{key}: unknown site {:?}: expected one of {}",
                        name.get_ref(),
                        sites.join(", ")
                    ),
                ))
            }
        };
        known(&raw.deployment.preferred_site, "deployment.preferred-site")?;
        if let Some(first) = &raw.deployment.first_site {
            known(first, "deployment.first-site")?;
        }
        if let Some(q) = &raw.deployment.cs_proxy_queue {
            if raw.deployment.cs_proxy_capacity.is_none() {
                return Err(at(
                    q.span(),
                    "deployment.cs-proxy-queue: only meaningful with \
                     deployment.cs-proxy-capacity (logins per second per site)"
                        .into(),
                ));
            }
        }
        let mut states: BTreeMap<String, SiteState> = sites
            .iter()
            .map(|s| (s.clone(), SiteState::default()))
            .collect();
        let mut applications: BTreeMap<String, SiteApplication> = sites
            .iter()
            .map(|s| (s.clone(), SiteApplication::default()))
            .collect();
        for (name, raw_site) in &raw.sites {
            let name = known(name, &format!("sites.{}", name.get_ref()))?;
            let cs_proxy = match &raw_site.cs_proxy {
                Some(p) if !valid_host_port(p.get_ref()) => {
                    return Err(at(
                        p.span(),
                        format!(
                            "sites.{name}.cs-proxy: invalid value {:?}: expected host:port",
                            p.get_ref()
                        ),
                    ))
                }
                p => p.as_ref().map(|p| p.get_ref().clone()),
            };
            let empty = Spanned::new(0..0, BTreeMap::new());
            let options = raw_site.application_options.as_ref().unwrap_or(&empty);
            let bad_key = options.get_ref().keys().find(|k| {
                !matches!(k.split_once('/'), Some((section, option)) if !section.is_empty() && !option.is_empty())
            });
            if let Some(key) = bad_key {
                return Err(at(
                    options.span(),
                    format!(
                        "sites.{name}.application-options: key {key:?}: expected \"section/option\" \
                         (e.g. \"dr/evacuate\")"
                    ),
                ));
            }
            if options.get_ref().len() > MAX_APPLICATION_OPTIONS {
                return Err(at(
                    options.span(),
                    format!(
                        "sites.{name}.application-options: {} options, more than {MAX_APPLICATION_OPTIONS}",
                        options.get_ref().len()
                    ),
                ));
            }
            applications.insert(
                name.clone(),
                SiteApplication {
                    cs_proxy,
                    readable: raw_site.application_readable,
                    options: options.get_ref().clone(),
                },
            );
            states.insert(
                name,
                SiteState {
                    telephony: raw_site.telephony,
                    configuration: raw_site.configuration,
                    statistic: raw_site.statistic,
                    reachable: raw_site.reachable,
                    login_fails: raw_site.login_fails,
                },
            );
        }
        let mut timeline = Vec::with_capacity(raw.events.len());
        let mut warnings = Vec::new();
        for event in &raw.events {
            let span = event.span();
            let e = event.get_ref();
            if let Some(end) = raw.deployment.end.filter(|end| e.at > *end) {
                let (line, column) = line_col(text, span.start);
                warnings.push(format!(
                    "{}:{line}:{column}: events.at: {} is after deployment.end ({}): \
                     a run to the end (--until-end, simulate) never plays this event",
                    path.display(),
                    humantime::format_duration(e.at),
                    humantime::format_duration(end)
                ));
            }
            let mut whats = Vec::new();
            match (&e.site, &e.set) {
                (Some(site), Some(patch)) => whats.push(Happening::Set {
                    site: known(site, "events.site")?,
                    patch: *patch,
                }),
                (None, None) => {}
                (Some(_), None) => {
                    return Err(at(span, "events: `site` needs `set = { ... }`".into()))
                }
                (None, Some(_)) => {
                    return Err(at(span, "events: `set` needs `site = \"...\"`".into()))
                }
            }
            if let Some(reason) = &e.logout {
                whats.push(Happening::Logout {
                    reason: (!reason.is_empty()).then(|| reason.clone()),
                });
            }
            if e.dn_back_in_service {
                whats.push(Happening::DnBackInService);
            }
            if e.dn_out_of_service {
                whats.push(Happening::DnOutOfService);
            }
            if e.disconnect {
                whats.push(Happening::Disconnect);
            }
            if let Some(change) = &e.config {
                whats.push(Happening::ConfigChanged(change.clone()));
            }
            if whats.is_empty() {
                return Err(at(
                    span,
                    "events: expected one of `site` + `set`, `logout`, `dn-back-in-service`, \
                     `dn-out-of-service`, `disconnect`, `config`"
                        .into(),
                ));
            }
            let for_agents = whats.iter().any(|w| !matches!(w, Happening::Set { .. }));
            let agents = match &e.agents {
                Some(t) if !for_agents => {
                    return Err(at(
                        t.span(),
                        "events.agents: only agent events (`logout`, `dn-back-in-service`, \
                         `dn-out-of-service`, `disconnect`, `config`) take `agents`; a site event \
                         reaches every agent connected at its site"
                            .into(),
                    ))
                }
                Some(t) => t.get_ref().clone(),
                None => Targets::All,
            };
            timeline.extend(whats.into_iter().map(|what| TimedHappening {
                agents: match what {
                    Happening::Set { .. } => Targets::All,
                    _ => agents.clone(),
                },
                at: e.at,
                what,
                stale: e.stale,
            }));
        }
        timeline.sort_by_key(|h| h.at);
        Ok(Scenario {
            path: path.to_owned(),
            deployment: raw.deployment,
            sites: states,
            applications,
            timeline,
            warnings,
        })
    }
}

/// Whether `text` is `host:port` with a non-empty host and a port in 1..65535.
fn valid_host_port(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0))
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> Vec<String> {
        vec!["site1".into(), "site2".into()]
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("s.toml"), &sites())
    }

    #[test]
    fn parses_the_spec_example() {
        let s = parse(
            r#"
[deployment]
preferred-site = "site1"
first-site = "site1"
connect-latency = "200ms"
register-delay = "2s"
site-timeout = "30s"
site-sip-register-timeout = "60s"
end = "5m"

[sites.site1]
telephony = "on"
reachable = true

[sites.site2]

[[events]]
at = "10s"
site = "site1"
set = { telephony = "off" }

[[events]]
at = "12s"
logout = "dr-force_logout"

[[events]]
at = "20s"
dn-back-in-service = true
"#,
        )
        .unwrap();
        assert_eq!(s.deployment.end, Some(Duration::from_secs(300)));
        assert_eq!(s.timeline.len(), 3);
        assert_eq!(
            s.timeline[1].what,
            Happening::Logout {
                reason: Some("dr-force_logout".into())
            }
        );
        assert_eq!(s.sites["site2"], SiteState::default());
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_duration_names_line_and_value() {
        let e = error("[deployment]\npreferred-site = \"site1\"\nsite-timeout = \"3x\"\n");
        assert!(e.starts_with("s.toml:3:"), "{e}");
        assert!(e.contains("3x") || e.contains("unknown time unit"), "{e}");
    }

    #[test]
    fn durations_past_the_maximum_are_refused_by_key() {
        let base = "[deployment]\npreferred-site = \"site1\"\n";
        for (extra, key) in [
            ("end = \"585y\"", "deployment.end"),
            ("site-timeout = \"101y\"", "deployment.site-timeout"),
            ("connect-latency = \"600y\"", "deployment.connect-latency"),
            ("[[events]]\nat = \"585y\"\nlogout = \"\"", "events.at"),
        ] {
            let e = error(&format!("{base}{extra}\n"));
            assert!(
                e.contains(key) && e.contains("longest duration drctl takes, 100y"),
                "{extra}: {e}"
            );
        }
        let s = parse(&format!(
            "{base}end = \"100y\"\nsite-timeout = \"1500ms\"\n"
        ))
        .unwrap();
        assert_eq!(s.deployment.end, Some(duration::MAX));
        assert_eq!(s.deployment.site_timeout, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn unknown_site_names_line_key_and_choices() {
        let e = error(
            "[deployment]\npreferred-site = \"site1\"\n\n[[events]]\nat = \"1s\"\nsite = \"site9\"\nset = { telephony = \"off\" }\n",
        );
        assert!(e.starts_with("s.toml:6:"), "{e}");
        assert!(e.contains("events.site"), "{e}");
        assert!(e.contains("site1, site2"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = error("[deployment]\npreferred-site = \"site1\"\nsite-timout = \"3s\"\n");
        assert!(e.starts_with("s.toml:3:"), "{e}");
        assert!(e.contains("site-timout"), "{e}");
    }

    #[test]
    fn fleet_keys_parse_with_their_defaults() {
        let base = "[deployment]\npreferred-site = \"site1\"\n";
        let s = parse(base).unwrap();
        assert_eq!(s.deployment.agents, 1);
        assert_eq!(s.deployment.capacity(), None);
        let s = parse(&format!("{base}agents = 10000\ncs-proxy-capacity = 200\n")).unwrap();
        assert_eq!(s.deployment.agents, 10_000);
        assert_eq!(
            s.deployment.capacity(),
            Some(Capacity {
                per_second: 200.0,
                queue: 2000
            })
        );
        // ceil(10 × 0.25) = ceil(2.5) = 3; ceil(10 × 0.21) = ceil(2.1) = 3.
        let q = |r: &str| {
            parse(&format!("{base}cs-proxy-capacity = {r}\n"))
                .unwrap()
                .deployment
                .capacity()
                .unwrap()
                .queue
        };
        assert_eq!(q("0.25"), 3);
        assert_eq!(q("0.21"), 3);
        assert_eq!(q("0.3"), 3);
        assert_eq!(q("0.01"), 1);
        let s = parse(&format!(
            "{base}cs-proxy-capacity = 2.5\ncs-proxy-queue = 7\n"
        ))
        .unwrap();
        assert_eq!(
            s.deployment.capacity(),
            Some(Capacity {
                per_second: 2.5,
                queue: 7
            })
        );
    }

    #[test]
    fn bad_fleet_keys_name_line_and_key() {
        let base = "[deployment]\npreferred-site = \"site1\"\n";
        for (extra, key) in [
            ("agents = 0", "deployment.agents"),
            ("agents = -3", "deployment.agents"),
            ("cs-proxy-capacity = 0", "deployment.cs-proxy-capacity"),
            ("cs-proxy-capacity = -1.5", "deployment.cs-proxy-capacity"),
            ("agents = 2.5", "deployment.agents"),
            ("agents = \"many\"", "deployment.agents"),
            (
                "cs-proxy-capacity = \"fast\"",
                "deployment.cs-proxy-capacity",
            ),
            ("cs-proxy-queue = 5", "deployment.cs-proxy-queue"),
            (
                "cs-proxy-capacity = 5\ncs-proxy-queue = -1",
                "deployment.cs-proxy-queue",
            ),
            (
                "cs-proxy-capacity = 5\ncs-proxy-queue = 2.5",
                "deployment.cs-proxy-queue",
            ),
            (
                "cs-proxy-capacity = 5\ncs-proxy-queue = 0",
                "deployment.cs-proxy-queue",
            ),
        ] {
            let e = error(&format!("{base}{extra}\n"));
            let line = 2 + extra.lines().count();
            assert!(e.starts_with(&format!("s.toml:{line}:")), "{extra}: {e}");
            assert!(e.contains(key), "{extra}: {e}");
        }
    }

    #[test]
    fn event_targets_parse_in_every_form() {
        let text = "[deployment]\npreferred-site = \"site1\"\n\
                    [[events]]\nat = \"1s\"\nlogout = \"\"\n\
                    [[events]]\nat = \"2s\"\nlogout = \"\"\nagents = \"all\"\n\
                    [[events]]\nat = \"3s\"\ndisconnect = true\nagents = \"agent-17\"\n\
                    [[events]]\nat = \"4s\"\ndn-out-of-service = true\nagents = 0.25\n\
                    [[events]]\nat = \"5s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n";
        let s = parse(text).unwrap();
        let agents: Vec<Targets> = s.timeline.iter().map(|h| h.agents.clone()).collect();
        assert_eq!(
            agents,
            [
                Targets::All,
                Targets::All,
                Targets::One("agent-17".into()),
                Targets::Fraction(0.25),
                Targets::All,
            ]
        );
    }

    #[test]
    fn bad_event_targets_name_line_and_key() {
        let base = "[deployment]\npreferred-site = \"site1\"\n[[events]]\nat = \"1s\"\n";
        for (extra, want) in [
            ("logout = \"\"\nagents = 0.0", "0 < f ≤ 1"),
            ("logout = \"\"\nagents = 1.5", "0 < f ≤ 1"),
            ("logout = \"\"\nagents = 3", "\"agent-3\""),
            ("logout = \"\"\nagents = \"\"", "session id"),
            ("logout = \"\"\nagents = true", "got a boolean"),
            (
                "site = \"site1\"\nset = { telephony = \"off\" }\nagents = \"all\"",
                "only agent events",
            ),
        ] {
            // The error points at the `agents` line, the last one.
            let e = error(&format!("{base}{extra}\n"));
            let line = 4 + extra.lines().count();
            assert!(e.starts_with(&format!("s.toml:{line}:")), "{extra}: {e}");
            assert!(
                e.contains("events.agents") && e.contains(want),
                "{extra}: {e}"
            );
        }
    }

    #[test]
    fn fraction_rounding_is_ceil_with_float_noise_ignored() {
        assert_eq!(Targets::fraction_of(0.25, 10), 3);
        assert_eq!(Targets::fraction_of(0.21, 10), 3);
        assert_eq!(Targets::fraction_of(0.2, 10), 2);
        // Float noise: 0.07 × 100 = 7.000000000000001 and 0.0051 × 10 000 =
        // 51.00000000000001, which a plain ceil turns into 8 and 52.
        assert_eq!(Targets::fraction_of(0.07, 100), 7);
        assert_eq!(Targets::fraction_of(0.0051, 10_000), 51);
        assert_eq!(Targets::fraction_of(0.57, 100), 57);
        assert_eq!(Targets::fraction_of(0.01, 10), 1);
        assert_eq!(Targets::fraction_of(1.0, 10), 10);
        assert_eq!(Targets::fraction_of(0.5, 0), 0);
        assert_eq!(Targets::fraction_of(0.1, 10_000), 1000);
    }

    #[test]
    fn an_event_after_the_end_is_a_warning_naming_its_line() {
        let text = "[deployment]\npreferred-site = \"site1\"\nend = \"3m\"\n\n\
                    [[events]]\nat = \"10s\"\ndisconnect = true\n\n\
                    [[events]]\nat = \"200s\"\ndisconnect = true\n";
        let s = parse(text).unwrap();
        assert_eq!(
            s.warnings,
            [
                "s.toml:9:1: events.at: 3m 20s is after deployment.end (3m): \
              a run to the end (--until-end, simulate) never plays this event"
            ]
        );
        assert_eq!(s.timeline.len(), 2, "still played by a longer run");
    }

    #[test]
    fn event_without_a_happening_is_an_error() {
        let e = error("[deployment]\npreferred-site = \"site1\"\n[[events]]\nat = \"1s\"\n");
        assert!(e.contains("expected one of"), "{e}");
    }
}

//! The engine's configuration: plain values, already validated by the caller's
//! config layer (`drctl-config`) and checked again by [`EngineConfig::validate`].

use std::collections::BTreeMap;
use std::time::Duration;

pub use drctl_protocol::SiteName;

/// One site as the local configuration knows it (S1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteConfig {
    /// The operator's name for the site.
    pub name: SiteName,
    /// Configuration Server Proxy `host:port`.
    pub cs_proxy: String,
    /// The site's AIL Application object name.
    pub app_name: String,
}

/// Exponential backoff with jitter between connect rounds (S1, W4). The one
/// definition: `drctl-config` reads `startup.backoff` straight into it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry round.
    pub initial: Duration,
    /// Growth factor per round.
    pub factor: f64,
    /// Cap of the delay before jitter is applied.
    pub max: Duration,
    /// Relative jitter: the delay is scaled by a factor drawn from `[1 - jitter, 1 + jitter)`.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

/// The default `policy.failback-probe-interval` (E2): often enough that a
/// failback waits at most this long past `failback-after`, rarely enough to
/// cost a CS Proxy nothing.
pub const DEFAULT_FAILBACK_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether and when to return to the preferred site on its own (E2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Failback {
    /// Stay on the secondary until an operator switches back (the seed's behaviour).
    #[default]
    Manual,
    /// Return to the preferred site once probes of it have answered healthy
    /// for `after` without a break.
    Auto {
        /// How long the preferred site must have answered healthy first.
        after: Duration,
    },
}

/// The longest `failback-after` gets after failbacks that landed on a dead
/// site: `8 ×` the configured one (E2).
pub const FAILBACK_MAX_MULTIPLIER: u32 = 8;

/// W5: logging the agent in on its DN after each (re)connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginConfig {
    /// The agent's DN.
    pub dn: String,
    /// The ACD queue the login names, if any.
    pub queue: Option<String>,
    /// The work mode after login, if any.
    pub workmode: Option<String>,
    /// Reasons (key-value pairs) the login carries.
    pub reasons: BTreeMap<String, String>,
}

/// E5: where Configuration Server keeps what drctl follows live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveNames {
    /// The Person annex section naming the agent's Applications (S2's).
    pub person_section: String,
    /// The option naming the preferred Application (S2's `site1-application`).
    pub preferred_option: String,
    /// The Application options section holding the directive (S3's `dr`).
    pub application_section: String,
    /// The option that evacuates an Application's site while `true`.
    pub evacuate_option: String,
}

impl Default for DirectiveNames {
    fn default() -> Self {
        DirectiveNames {
            person_section: "dr".into(),
            preferred_option: "site1-application".into(),
            application_section: "dr".into(),
            evacuate_option: "evacuate".into(),
        }
    }
}

/// Everything the engine needs to know before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// The agent's login name (not a secret; the password never enters the engine).
    pub username: String,
    /// The two sites, in configuration order.
    pub sites: [SiteConfig; 2],
    /// The site tried first when no cached preferred site applies (S1).
    pub first_site: SiteName,
    /// The cached preferred site, if caching is enabled and a cache exists (S5).
    pub cached_preferred: Option<SiteName>,
    /// Give up startup after this long (`drctl startup`); `None` retries forever.
    pub startup_timeout: Option<Duration>,
    /// Backoff between connect rounds.
    pub backoff: BackoffConfig,
    /// Overrides the AIL Application's `site-timeout` when set (D1).
    pub site_timeout: Option<Duration>,
    /// Overrides the AIL Application's `site-sip-register-timeout` when set (D4).
    pub site_sip_register_timeout: Option<Duration>,
    /// Logout reasons that mean "a supervisor logged the agent out" (D4).
    pub supervisor_logout_reasons: Vec<String>,
    /// The desktop has an embedded SIP endpoint to relaunch after `dr-force_logout` (D4).
    pub embedded_endpoint: bool,
    /// Suppress automatic switchovers this long after one completes (E1); zero is off.
    pub hold_down: Duration,
    /// Failback mode (E2).
    pub failback: Failback,
    /// How often the preferred site is probed while on the other one with
    /// `failback = auto` (E2); must be > 0.
    pub failback_probe_interval: Duration,
    /// Log the agent in on its DN after connecting and subscribing (W5); `None` is off.
    pub login: Option<LoginConfig>,
    /// Upper bound of the random delay before an automatic switchover (E4); zero is off.
    pub switchover_jitter: Duration,
    /// Follow Configuration Server directives (E5); `None` is off.
    pub directives: Option<DirectiveNames>,
    /// Seed of the engine's RNG (backoff jitter, E4), so runs are reproducible.
    pub seed: u64,
    /// Switchover reasons that wait for the host's gate verdict before they
    /// start ([`crate::Action::CheckGates`]); empty: none (the default).
    pub gated: Vec<drctl_protocol::Reason>,
}

impl EngineConfig {
    /// A configuration with the seed's defaults for two sites named `site1` and `site2`.
    pub fn two_sites(username: &str) -> Self {
        let site = |n: u8| SiteConfig {
            name: format!("site{n}").into(),
            cs_proxy: format!("csproxy{n}:7000"),
            app_name: format!("AIL_site{n}"),
        };
        EngineConfig {
            username: username.to_owned(),
            sites: [site(1), site(2)],
            first_site: "site1".into(),
            cached_preferred: None,
            startup_timeout: None,
            backoff: BackoffConfig::default(),
            site_timeout: None,
            site_sip_register_timeout: None,
            supervisor_logout_reasons: vec!["supervisor_forced_logout".to_owned()],
            embedded_endpoint: false,
            hold_down: Duration::ZERO,
            failback: Failback::Manual,
            failback_probe_interval: DEFAULT_FAILBACK_PROBE_INTERVAL,
            login: None,
            switchover_jitter: Duration::ZERO,
            directives: None,
            seed: 0,
            gated: Vec::new(),
        }
    }

    /// Checks what the engine relies on; the config layer reports friendlier errors first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let [a, b] = &self.sites;
        if a.name == b.name {
            return Err(ConfigError::DuplicateSite(a.name.to_string()));
        }
        for name in std::iter::once(&self.first_site).chain(self.cached_preferred.iter()) {
            if self.site_index(name).is_none() {
                return Err(ConfigError::UnknownSite(name.to_string()));
            }
        }
        let bo = &self.backoff;
        if bo.initial.is_zero() || bo.max < bo.initial || bo.factor.is_nan() || bo.factor < 1.0 {
            return Err(ConfigError::Backoff(
                "initial > 0, factor >= 1 and max >= initial",
            ));
        }
        if !(0.0..1.0).contains(&bo.jitter) {
            return Err(ConfigError::Backoff("0 <= jitter < 1"));
        }
        // A zero interval would probe in a tight loop.
        if matches!(self.failback, Failback::Auto { .. }) && self.failback_probe_interval.is_zero()
        {
            return Err(ConfigError::Failback("failback-probe-interval > 0"));
        }
        Ok(())
    }

    /// Index of the site called `name`.
    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| &*s.name == name)
    }
}

/// Why an [`EngineConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Both sites have the same name.
    DuplicateSite(String),
    /// A site name that is not one of the two sites.
    UnknownSite(String),
    /// Backoff parameters out of range; the text says what is expected.
    Backoff(&'static str),
    /// Failback parameters out of range; the text says what is expected.
    Failback(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::DuplicateSite(n) => write!(f, "both sites are named {n:?}"),
            ConfigError::UnknownSite(n) => write!(f, "unknown site {n:?}"),
            ConfigError::Backoff(what) => write!(f, "backoff: expected {what}"),
            ConfigError::Failback(what) => write!(f, "failback: expected {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}

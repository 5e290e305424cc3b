//! drctl's typed configuration (SPEC §7).
//!
//! The effective configuration is built by [`figment()`] from these layers,
//! lowest first (a higher layer overrides the keys it sets):
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. `/etc/drctl/drctl.toml`;
//! 3. the user's file: `$XDG_CONFIG_HOME/drctl/drctl.toml`, else `~/.config/drctl/drctl.toml`;
//! 4. `./drctl.toml`, or the `--config FILE` given instead (which must exist);
//! 5. `DRCTL_*` environment variables, `__` separating the levels and `_` standing
//!    for `-` (`DRCTL_POLICY__SITE_TIMEOUT=10s` sets `policy.site-timeout`);
//!    variables without `__` (such as `DRCTL_AGENT_PASSWORD`) are not config keys;
//! 6. `--set KEY=VALUE` pairs from the command line, in order.
//!
//! [`Config::load`] extracts and validates; every error names its origin (file
//! and line, environment variable or `--set`), the key and what was expected.
//! [`Config::redacted_toml`] and [`Config::origins`] back `drctl config show`.

mod error;
mod load;
mod model;
mod origin;
mod secret;
mod serde_util;
mod show;
mod validate;

pub use error::{ConfigError, Origin};
pub use load::{figment, user_config_file, LoadOptions, SYSTEM_CONFIG_FILE};
pub use model::{
    redact_url, AgentConfig, AlarmsConfig, BackendConfig, BackoffConfig, Config, ControlConfig,
    FailbackMode, GateConfig, GenesysConfig, HistoryConfig, MetricsConfig, PolicyConfig,
    SinkConfig, SinkKind, SinkUrl, SiteConfig, StartupConfig, SwitchConfig,
};
pub use secret::{Secret, REDACTED};
pub use show::{broken_listing, layer_listing, OriginLine};

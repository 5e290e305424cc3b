//! Checks after extraction: each error names origin, key and what was expected.

use std::time::Duration;

use drctl_protocol::Alarm;

use crate::error::{ConfigError, Origin};
use crate::model::{Config, FailbackMode, SinkConfig, SinkKind};
use crate::origin::{display_key, Origins};
use crate::secret::{read_credential, read_password_file, Secret};

/// The password keys, in the order they are preferred.
const PASSWORD_KEYS: [&str; 4] = [
    "password-env",
    "password-file",
    "password-credential",
    "password",
];

/// What a missing password source says.
const MISSING_PASSWORD: &str = "missing password source: expected one of agent.password-env \
     (recommended), agent.password-file, agent.password-credential (a systemd credential) \
     or agent.password";

/// The range of an alertmanager sink's `resend-interval`.
const MIN_RESEND: Duration = Duration::from_secs(1);
const MAX_RESEND: Duration = Duration::from_secs(3600);

/// The labels an alertmanager sink sets on every alert itself.
const DRCTL_LABELS: [&str; 4] = ["alertname", "agent", "site", "severity"];

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`) that is not reserved (`__`).
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The longest a gate may take (`switch.gates[].timeout`): a switchover waits for it.
const MAX_GATE_TIMEOUT: Duration = Duration::from_secs(600);

/// The smallest `history.max-bytes`: a few decisions' worth.
const MIN_HISTORY_BYTES: u64 = 64 * 1024;

impl Config {
    /// Checks what extraction cannot: two distinct sites, site references, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_sites()?;
        self.validate_startup()?;
        self.validate_agent_sources()?;
        self.validate_policy()?;
        self.validate_backend()?;
        self.validate_monitoring()?;
        self.validate_fleet()?;
        self.validate_gates()?;
        if self.history.max_bytes < MIN_HISTORY_BYTES {
            return Err(self.invalid(
                &["history", "max-bytes"],
                format!(
                    "invalid value {}: expected at least {MIN_HISTORY_BYTES} bytes",
                    self.history.max_bytes
                ),
            ));
        }
        for (key, value) in [
            ("person-annex-section", &self.genesys.person_annex_section),
            ("preferred-app-option", &self.genesys.preferred_app_option),
            ("secondary-app-option", &self.genesys.secondary_app_option),
            ("dr-options-section", &self.genesys.dr_options_section),
            ("evacuate-option", &self.genesys.evacuate_option),
        ] {
            if value.trim().is_empty() {
                return Err(self.invalid(&["genesys", key], "empty: expected a name"));
            }
        }
        Ok(())
    }

    /// Checks what a real run needs on top of [`Config::validate`]: the agent's
    /// username and one password source.
    pub fn validate_agent(&self) -> Result<(), ConfigError> {
        if self
            .agent
            .username
            .as_deref()
            .is_none_or(|u| u.trim().is_empty())
        {
            return Err(self.invalid(
                &["agent", "username"],
                "missing: expected the agent's login name",
            ));
        }
        if self.password_key().is_none() {
            return Err(self.invalid(&["agent", "password-env"], MISSING_PASSWORD));
        }
        Ok(())
    }

    /// Reads the agent's password from its configured source, now.
    pub fn resolve_password(&self) -> Result<Secret, ConfigError> {
        let agent = &self.agent;
        if let Some(var) = &agent.password_env {
            let fail = |message: String| self.password_error("password-env", message);
            return match std::env::var(var) {
                Ok(v) if v.is_empty() => Err(fail(format!("environment variable {var} is empty"))),
                Ok(v) => Ok(Secret::new(v)),
                Err(std::env::VarError::NotPresent) => {
                    Err(fail(format!("environment variable {var} is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(fail(format!("environment variable {var} is not UTF-8")))
                }
            };
        }
        if let Some(path) = &agent.password_file {
            return read_password_file(path)
                .map_err(|message| self.password_error("password-file", message));
        }
        if let Some(name) = &agent.password_credential {
            return read_credential(name)
                .map_err(|message| self.password_error("password-credential", message));
        }
        if let Some(secret) = &agent.password {
            return Ok(secret.clone());
        }
        Err(self.password_error("password-env", MISSING_PASSWORD.to_owned()))
    }

    /// Warnings worth showing on `config check` that do not make the config unusable.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.agent.password.is_some() {
            let origin = self.origin(&["agent", "password"]);
            out.push(format!(
                "{origin}: agent.password: a plain-text password is discouraged; \
                 use agent.password-env, agent.password-file or agent.password-credential"
            ));
        }
        if self.agent.password.is_none() && self.has_password_source() {
            if let Err(e) = self.resolve_password() {
                out.push(format!("{e} (needed at run time)"));
            }
        }
        out
    }

    /// Whether any password source is configured.
    pub fn has_password_source(&self) -> bool {
        self.password_key().is_some()
    }

    /// The password key in use (`password-env`, `password-file`,
    /// `password-credential` or `password`).
    fn password_key(&self) -> Option<&'static str> {
        let set = self.password_keys_set();
        PASSWORD_KEYS
            .iter()
            .zip(set)
            .find(|(_, is_set)| *is_set)
            .map(|(k, _)| *k)
    }

    fn validate_sites(&self) -> Result<(), ConfigError> {
        if self.sites.len() != 2 {
            let mut message = format!(
                "expected exactly two [[sites]] tables, found {}",
                self.sites.len()
            );
            let src = &self.sources;
            if src.files.is_empty() && !src.searched.is_empty() {
                let searched: Vec<String> = src
                    .searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                message += &format!(
                    " (no config file found; looked for {})",
                    searched.join(", ")
                );
            }
            return Err(self.invalid(&["sites"], message));
        }
        for (i, site) in self.sites.iter().enumerate() {
            let idx = i.to_string();
            if site.name.trim().is_empty() {
                return Err(self.invalid(&["sites", &idx, "name"], "empty: expected a site name"));
            }
            if site.cs_proxy_host_port().is_none() {
                return Err(self.invalid(
                    &["sites", &idx, "cs-proxy"],
                    format!(
                        "invalid value {:?}: expected host:port with a port in 1..65535",
                        site.cs_proxy
                    ),
                ));
            }
            if site.app_name.trim().is_empty() {
                return Err(self.invalid(
                    &["sites", &idx, "app-name"],
                    "empty: expected the AIL Application object's name",
                ));
            }
        }
        if self.sites[0].name == self.sites[1].name {
            return Err(self.invalid(
                &["sites", "1", "name"],
                format!(
                    "duplicate site name {:?}: expected two distinct names",
                    self.sites[1].name
                ),
            ));
        }
        Ok(())
    }

    fn validate_startup(&self) -> Result<(), ConfigError> {
        let st = &self.startup;
        if let Some(first) = &st.first_site {
            if self.site(first).is_none() {
                return Err(self.invalid(
                    &["startup", "first-site"],
                    format!(
                        "invalid value {first:?}: expected one of: {}",
                        self.site_names()
                    ),
                ));
            }
        }
        if st.cache_preferred && self.agent.hot_seating {
            return Err(self.invalid(
                &["startup", "cache-preferred"],
                "must be false when agent.hot-seating = true (S5: no preferred-site cache with hot seating)",
            ));
        }
        let bo = &st.backoff;
        let key = |k| ["startup", "backoff", k];
        if bo.initial.is_zero() {
            return Err(self.invalid(
                &key("initial"),
                "invalid value \"0s\": expected a duration > 0",
            ));
        }
        if !bo.factor.is_finite() || bo.factor < 1.0 {
            return Err(self.invalid(
                &key("factor"),
                format!("invalid value {}: expected a number >= 1", bo.factor),
            ));
        }
        if bo.max < bo.initial {
            return Err(self.invalid(
                &key("max"),
                format!(
                    "invalid value {:?}: expected a duration >= startup.backoff.initial ({})",
                    show(bo.max),
                    show(bo.initial)
                ),
            ));
        }
        if !(0.0..1.0).contains(&bo.jitter) {
            return Err(self.invalid(
                &key("jitter"),
                format!("invalid value {}: expected a number in [0, 1)", bo.jitter),
            ));
        }
        Ok(())
    }

    /// Which of [`PASSWORD_KEYS`] are set.
    fn password_keys_set(&self) -> [bool; 4] {
        let a = &self.agent;
        [
            a.password_env.is_some(),
            a.password_file.is_some(),
            a.password_credential.is_some(),
            a.password.is_some(),
        ]
    }

    fn validate_agent_sources(&self) -> Result<(), ConfigError> {
        let a = &self.agent;
        let set = self.password_keys_set();
        if set.iter().filter(|s| **s).count() > 1 {
            let second = PASSWORD_KEYS
                .iter()
                .zip(set)
                .filter(|(_, s)| *s)
                .nth(1)
                .map_or("password", |(k, _)| *k);
            return Err(self.invalid(
                &["agent", second],
                "conflicting password sources: expected only one of agent.password-env, \
                 agent.password-file, agent.password-credential, agent.password",
            ));
        }
        if let Some(var) = &a.password_env {
            let valid = !var.is_empty()
                && !var.starts_with(|c: char| c.is_ascii_digit())
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(self.invalid(
                    &["agent", "password-env"],
                    format!("invalid value {var:?}: expected an environment variable name"),
                ));
            }
        }
        if let Some(path) = &a.password_file {
            if path.as_os_str().is_empty() {
                return Err(self.invalid(&["agent", "password-file"], "empty: expected a path"));
            }
        }
        if let Some(name) = &a.password_credential {
            // A file name inside $CREDENTIALS_DIRECTORY, as systemd allows one.
            let valid = !name.is_empty()
                && name != "."
                && name != ".."
                && name.len() <= 255
                && !name.contains(['/', '\0']);
            if !valid {
                return Err(self.invalid(
                    &["agent", "password-credential"],
                    format!(
                        "invalid value {name:?}: expected a credential name \
                         (LoadCredential=NAME:FILE), e.g. \"password\""
                    ),
                ));
            }
        }
        if a.dn.as_deref().is_some_and(|d| d.trim().is_empty()) {
            return Err(self.invalid(&["agent", "dn"], "empty: expected the agent's DN"));
        }
        if a.login && a.dn.is_none() {
            return Err(self.invalid(
                &["agent", "login"],
                "true without agent.dn: the login (W5) needs the agent's DN",
            ));
        }
        Ok(())
    }

    fn validate_policy(&self) -> Result<(), ConfigError> {
        let p = &self.policy;
        if p.failback == FailbackMode::Auto && p.failback_after.is_zero() {
            return Err(self.invalid(
                &["policy", "failback-after"],
                "invalid value \"0s\": expected a duration > 0 when policy.failback = \"auto\"",
            ));
        }
        if p.failback == FailbackMode::Auto && p.failback_probe_interval.is_zero() {
            return Err(self.invalid(
                &["policy", "failback-probe-interval"],
                "invalid value \"0s\": expected a duration > 0 when policy.failback = \"auto\"",
            ));
        }
        if let Some(i) = p
            .supervisor_logout_reasons
            .iter()
            .position(|r| r.trim().is_empty())
        {
            return Err(self.invalid(
                &["policy", "supervisor-logout-reasons", &i.to_string()],
                "empty: expected a logout reason",
            ));
        }
        Ok(())
    }

    fn validate_backend(&self) -> Result<(), ConfigError> {
        if self.backend.command_timeout.is_zero() {
            return Err(self.invalid(
                &["backend", "command-timeout"],
                "must be more than 0s: expected a duration like \"30s\"",
            ));
        }
        if self.backend.name.trim().is_empty() {
            return Err(self.invalid(
                &["backend", "name"],
                "empty: expected a backend name such as \"mock\"",
            ));
        }
        for (name, value) in &self.backend.tables {
            if !value.is_table() {
                return Err(self.invalid(
                    &["backend", name],
                    "unknown key: expected one of: name, plugin-dirs, command-timeout, or a [backend.<plugin>] table",
                ));
            }
        }
        Ok(())
    }

    /// `[[agents]]`: each named, no name twice.
    fn validate_fleet(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            let name = a.username.as_deref().unwrap_or("").trim();
            let invalid = |message: String| ConfigError::Invalid {
                origin: self.origin(&["agents"]),
                key: format!("agents[{i}].username"),
                message,
            };
            if name.is_empty() {
                return Err(invalid(
                    "missing: every [[agents]] entry needs a username".to_owned(),
                ));
            }
            if !seen.insert(name.to_owned()) {
                return Err(invalid(format!(
                    "{name:?} appears twice: expected one entry per agent"
                )));
            }
            if a.login && a.dn.as_deref().is_none_or(|d| d.trim().is_empty()) {
                return Err(ConfigError::Invalid {
                    origin: self.origin(&["agents"]),
                    key: format!("agents[{i}].login"),
                    message: "true without a dn: the login (W5) needs the agent's DN".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// `[[switch.gates]]`: each named once, an exec command XOR an http URL,
    /// a bounded timeout, the switchover reasons it applies to.
    fn validate_gates(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, g) in self.switch.gates.iter().enumerate() {
            let invalid = |k: &str, message: String| ConfigError::Invalid {
                origin: self.origin(&["switch", "gates"]),
                key: format!("switch.gates[{i}].{k}"),
                message,
            };
            let name = g.name.trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(invalid(
                    "name",
                    "missing: every gate needs a name (what a refusal and --skip-gate name)"
                        .to_owned(),
                ));
            }
            if !seen.insert(name.to_owned()) {
                return Err(invalid(
                    "name",
                    format!("{name:?} appears twice: expected one gate per name"),
                ));
            }
            match (g.exec.first(), g.http.as_ref().map(|u| u.expose())) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "http",
                        "a gate is either exec or http, not both".to_owned(),
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        "exec",
                        "missing: a gate needs exec = [\"/path/to/check\", ...] or http = \"https://...\""
                            .to_owned(),
                    ))
                }
                (Some(p), None) if p.trim().is_empty() => {
                    return Err(invalid("exec", "empty program name".to_owned()))
                }
                (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    return Err(invalid("http", "expected an http:// or https:// URL".to_owned()))
                }
                _ => {}
            }
            if !g.env.is_empty() && g.exec.is_empty() {
                return Err(invalid("env", "only for exec gates".to_owned()));
            }
            for (k, v) in &g.env {
                if k.is_empty() || k.contains(['=', '\0']) || k.starts_with("DRCTL_") {
                    return Err(invalid(
                        &format!("env.{k}"),
                        "expected a variable name without '=' or NUL, not DRCTL_*".to_owned(),
                    ));
                }
                if v.contains('\0') {
                    return Err(invalid(
                        &format!("env.{k}"),
                        "a value cannot contain NUL".to_owned(),
                    ));
                }
            }
            if g.timeout.is_zero() || g.timeout > MAX_GATE_TIMEOUT {
                return Err(invalid(
                    "timeout",
                    format!(
                        "{} is out of range: expected more than 0s, at most 10m",
                        show(g.timeout)
                    ),
                ));
            }
            if g.applies_to.is_empty() {
                return Err(invalid(
                    "applies-to",
                    "empty: a gate that applies to no switchover never runs; remove it".to_owned(),
                ));
            }
            if g.applies_to
                .contains(&drctl_protocol::Reason::StartupRelocate)
            {
                return Err(invalid(
                    "applies-to",
                    "startup-relocate is never gated: expected operator, failback, telephony-timeout, sip-register-timeout or graceful-shutdown".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// An alertmanager sink (`alarms.sinks[i]`): its URL, resend interval,
    /// and labels Alertmanager accepts.
    fn validate_alertmanager(&self, i: usize, sink: &SinkConfig) -> Result<(), ConfigError> {
        let invalid = |k: &str, message: String| ConfigError::Invalid {
            origin: self.origin(&["alarms", "sinks"]),
            key: format!("alarms.sinks[{i}].{k}"),
            message,
        };
        match sink.url.as_ref().map(|u| u.expose()) {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
            Some(_) => {
                return Err(invalid(
                    "url",
                    "expected the Alertmanager's http:// or https:// URL, e.g. \"http://alertmanager:9093\"".to_owned(),
                ))
            }
            None => {
                return Err(invalid(
                    "url",
                    "missing: an alertmanager sink needs the Alertmanager's url, e.g. \"http://alertmanager:9093\"".to_owned(),
                ))
            }
        }
        if !(MIN_RESEND..=MAX_RESEND).contains(&sink.resend_interval) {
            return Err(invalid(
                "resend-interval",
                format!(
                    "{} is out of range: expected 1s to 1h",
                    humantime::format_duration(sink.resend_interval)
                ),
            ));
        }
        for (name, value) in &sink.labels {
            if !is_label_name(name) {
                return Err(invalid(
                    &format!("labels.{name}"),
                    "expected a Prometheus label name: letters, digits and '_', not starting with a digit or \"__\"".to_owned(),
                ));
            }
            if DRCTL_LABELS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("labels.{name}"),
                    format!("drctl sets {name} itself: choose another label"),
                ));
            }
            if value.trim().is_empty() {
                return Err(invalid(
                    &format!("labels.{name}"),
                    "empty: Alertmanager drops a label without a value".to_owned(),
                ));
            }
        }
        for (alarm, severity) in &sink.severity {
            if !Alarm::ALL.iter().any(|a| a.as_str() == alarm) {
                let names: Vec<&str> = Alarm::ALL.iter().map(|a| a.as_str()).collect();
                return Err(invalid(
                    &format!("severity.{alarm}"),
                    format!("unknown alarm: expected one of {}", names.join(", ")),
                ));
            }
            if severity.trim().is_empty() {
                return Err(invalid(
                    &format!("severity.{alarm}"),
                    "empty: expected a severity such as \"critical\" or \"warning\"".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// `[[alarms.sinks]]` and `[metrics]`.
    fn validate_monitoring(&self) -> Result<(), ConfigError> {
        for (i, sink) in self.alarms.sinks.iter().enumerate() {
            let key = |k: &str| format!("alarms.sinks[{i}].{k}");
            let invalid = |k: &str, message: &str| ConfigError::Invalid {
                origin: self.origin(&["alarms", "sinks"]),
                key: key(k),
                message: message.to_owned(),
            };
            match sink.kind {
                SinkKind::Webhook => match sink.url.as_ref().map(|u| u.expose()) {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                    Some(_) => return Err(invalid("url", "expected an http:// or https:// URL")),
                    None => return Err(invalid("url", "missing: a webhook sink needs a url")),
                },
                SinkKind::Alertmanager => self.validate_alertmanager(i, sink)?,
                SinkKind::Exec => {
                    if sink.command.first().is_none_or(|c| c.trim().is_empty()) {
                        return Err(invalid(
                            "command",
                            "missing: an exec sink needs a command, e.g. [\"/usr/local/bin/page\", \"--team\", \"ops\"]",
                        ));
                    }
                }
            }
            if sink.kind != SinkKind::Alertmanager {
                for (k, set) in [
                    ("labels", !sink.labels.is_empty()),
                    ("severity", !sink.severity.is_empty()),
                ] {
                    if set {
                        return Err(invalid(k, "only for type = \"alertmanager\" sinks"));
                    }
                }
            }
            if sink.timeout.is_zero() {
                return Err(invalid("timeout", "must be more than 0s"));
            }
            for (k, v) in &sink.env {
                let bad_key = k.is_empty() || k.contains(['=', '\0']);
                if bad_key || k.starts_with("DRCTL_") {
                    return Err(ConfigError::Invalid {
                        origin: self.origin(&["alarms", "sinks"]),
                        key: key(&format!("env.{k}")),
                        message: if bad_key {
                            "expected a variable name without '=' or NUL".to_owned()
                        } else {
                            "DRCTL_* names are drctl's event variables: choose another name"
                                .to_owned()
                        },
                    });
                }
                if v.contains('\0') {
                    return Err(invalid(&format!("env.{k}"), "a value cannot contain NUL"));
                }
            }
        }
        if let Some(listen) = &self.metrics.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(self.invalid(
                    &["metrics", "listen"],
                    format!(
                        "{listen:?} is not an address: expected ip:port like \"127.0.0.1:9464\""
                    ),
                ));
            }
        }
        if !(1..=10_000).contains(&self.metrics.max_connections) {
            return Err(self.invalid(
                &["metrics", "max-connections"],
                format!(
                    "{} is out of range: expected 1 to 10000",
                    self.metrics.max_connections
                ),
            ));
        }
        if self.metrics.header_timeout.is_zero() {
            return Err(self.invalid(
                &["metrics", "header-timeout"],
                "must be more than 0s".to_owned(),
            ));
        }
        Ok(())
    }

    /// The site names, for "expected one of" messages.
    fn site_names(&self) -> String {
        let names: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    /// Where the key `segs` came from (or its nearest configured neighbour).
    pub(crate) fn origin(&self, segs: &[&str]) -> Origin {
        let segs: Vec<String> = segs.iter().map(|s| (*s).to_owned()).collect();
        Origins::new(self.sources.figment.as_ref(), &self.sources.files).near(&segs)
    }

    /// An [`ConfigError::Invalid`] about `segs`.
    fn invalid(&self, segs: &[&str], message: impl Into<String>) -> ConfigError {
        let owned: Vec<String> = segs.iter().map(|s| (*s).to_owned()).collect();
        ConfigError::Invalid {
            origin: self.origin(segs),
            key: display_key(&owned),
            message: message.into(),
        }
    }

    /// A [`ConfigError::Password`] about `agent.<key>`.
    fn password_error(&self, key: &str, message: String) -> ConfigError {
        ConfigError::Password {
            origin: self.origin(&["agent", key]),
            key: format!("agent.{key}"),
            message,
        }
    }
}

/// A duration as config files write it.
fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

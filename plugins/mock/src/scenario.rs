//! The scenario file (SPEC §6): a simulated two-site deployment and a
//! timeline of what happens to it. Ops write these by hand for drills, so
//! every error names the file, the line and the key.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A service's status in a scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    /// Up.
    #[default]
    On,
    /// Down.
    Off,
}

/// The deployment-wide settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Deployment {
    /// The site the agent's Person object names as site 1.
    pub preferred_site: Spanned<String>,
    /// Where the desktop tries first (S1); the host's config decides when absent.
    pub first_site: Option<Spanned<String>>,
    /// CS Proxy connect + AIL load time.
    #[serde(default = "default_connect_latency", with = "humantime_serde")]
    pub connect_latency: Duration,
    /// DN back in service after a (re)login when SIP is up.
    #[serde(default = "default_register_delay", with = "humantime_serde")]
    pub register_delay: Duration,
    /// `site-timeout` in the AIL Applications; absent = not configured.
    #[serde(default, with = "humantime_serde")]
    pub site_timeout: Option<Duration>,
    /// `site-sip-register-timeout` in the AIL Applications.
    #[serde(default, with = "humantime_serde")]
    pub site_sip_register_timeout: Option<Duration>,
    /// Where `--until-end` stops.
    #[serde(default, with = "humantime_serde")]
    pub end: Option<Duration>,
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
    #[serde(default)]
    pub telephony: OnOff,
    /// Configuration Server pair.
    #[serde(default)]
    pub configuration: OnOff,
    /// Stat Server pair.
    #[serde(default)]
    pub statistic: OnOff,
    /// CS Proxy accepts connections.
    #[serde(default = "yes")]
    pub reachable: bool,
}

fn yes() -> bool {
    true
}

impl Default for SiteState {
    fn default() -> Self {
        SiteState {
            telephony: OnOff::On,
            configuration: OnOff::On,
            statistic: OnOff::On,
            reachable: true,
        }
    }
}

/// A change to some of a site's fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SitePatch {
    /// New telephony status.
    pub telephony: Option<OnOff>,
    /// New configuration status.
    pub configuration: Option<OnOff>,
    /// New statistic status.
    pub statistic: Option<OnOff>,
    /// New reachability.
    pub reachable: Option<bool>,
}

/// One `[[events]]` entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEvent {
    #[serde(with = "humantime_serde")]
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
    /// D5 drills: deliver the event on the previous connection's epoch.
    #[serde(default)]
    stale: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawScenario {
    deployment: Deployment,
    #[serde(default)]
    sites: BTreeMap<Spanned<String>, SiteState>,
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
}

/// A happening at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedHappening {
    /// When, from the session start.
    pub at: Duration,
    /// What.
    pub what: Happening,
    /// Delivered on the previous connection's epoch (a late event, D5).
    pub stale: bool,
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
    /// The timeline, sorted by time (stable for equal times).
    pub timeline: Vec<TimedHappening>,
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

impl Scenario {
    /// Reads and validates a scenario file; `sites` are the site names the host knows.
    pub fn load(path: &Path, sites: &[String]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
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
        let mut states: BTreeMap<String, SiteState> = sites
            .iter()
            .map(|s| (s.clone(), SiteState::default()))
            .collect();
        for (name, state) in &raw.sites {
            let name = known(name, &format!("sites.{}", name.get_ref()))?;
            states.insert(name, *state);
        }
        let mut timeline = Vec::with_capacity(raw.events.len());
        for event in &raw.events {
            let span = event.span();
            let e = event.get_ref();
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
            if whats.is_empty() {
                return Err(at(
                    span,
                    "events: expected one of `site` + `set`, `logout`, `dn-back-in-service`, \
                     `dn-out-of-service`, `disconnect`"
                        .into(),
                ));
            }
            timeline.extend(whats.into_iter().map(|what| TimedHappening {
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
            timeline,
        })
    }
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
    fn event_without_a_happening_is_an_error() {
        let e = error("[deployment]\npreferred-site = \"site1\"\n[[events]]\nat = \"1s\"\n");
        assert!(e.contains("expected one of"), "{e}");
    }
}

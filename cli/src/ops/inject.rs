//! `drctl replay --inject` / `--inject-file`: what-if events added to a
//! recorded incident, in the mock scenario's `[[events]]` syntax (SPEC §6),
//! parsed by the mock's own scenario parser so the two never disagree.
//!
//! A site event (`site=site2 telephony=off`) reaches the engine only while the
//! agent is connected to that site, as a real backend reports only its own
//! site's services; agent events (logout, DN, disconnect) always do.

use anyhow::anyhow;
use drctl_plugin_mock::scenario::{Happening, Scenario};
use drctl_policy::{BackendEvent, Service, Timestamp};
use std::path::{Path, PathBuf};

/// One injected backend event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// When.
    pub at: Timestamp,
    /// The site it happens at (site events only).
    pub site: Option<String>,
    /// What the backend reports.
    pub event: BackendEvent,
}

/// The injections of every `--inject` and `--inject-file`, in time order;
/// `sites` are the recording's sites, `dn` the agent's DN.
pub fn parse(
    one_liners: &[String],
    files: &[PathBuf],
    sites: &[String],
    dn: &str,
) -> anyhow::Result<Vec<Injection>> {
    let mut out = Vec::new();
    for line in one_liners {
        let fragment = one_liner_to_toml(line).map_err(|e| anyhow!("--inject {line:?}: {e}"))?;
        out.extend(fragment_events(
            &fragment,
            Path::new("--inject"),
            sites,
            dn,
        )?);
    }
    for file in files {
        let text = drctl_plugin_mock::scenario::read_text(file)?;
        out.extend(fragment_events(&text, file, sites, dn)?);
    }
    out.sort_by_key(|i| i.at);
    Ok(out)
}

/// `at=45s site=site2 telephony=off` as one `[[events]]` table.
fn one_liner_to_toml(line: &str) -> Result<String, String> {
    let mut set = Vec::new();
    let mut plain = Vec::new();
    for pair in line.split_whitespace() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected KEY=VALUE"))?;
        let quoted = toml::Value::String(v.to_owned()).to_string();
        match k {
            "telephony" | "configuration" | "statistic" => set.push(format!("{k} = {quoted}")),
            "reachable" => set.push(format!("{k} = {v}")),
            "at" | "site" | "logout" => plain.push(format!("{k} = {quoted}")),
            "dn-back-in-service" | "dn-out-of-service" | "disconnect" => {
                plain.push(format!("{k} = {v}"))
            }
            _ => {
                return Err(format!(
                    "unknown key {k:?}: expected at, site, telephony, configuration, statistic, \
                     logout, dn-back-in-service, dn-out-of-service or disconnect"
                ))
            }
        }
    }
    if !set.is_empty() {
        plain.push(format!("set = {{ {} }}", set.join(", ")));
    }
    Ok(format!("[[events]]\n{}\n", plain.join("\n")))
}

/// The events of a `[[events]]` fragment, through the mock's parser (its
/// errors name the fragment's file and line).
fn fragment_events(
    fragment: &str,
    path: &Path,
    sites: &[String],
    dn: &str,
) -> anyhow::Result<Vec<Injection>> {
    // A deployment after the events keeps the fragment's line numbers.
    let preferred = sites.first().map(String::as_str).unwrap_or("site1");
    let text = format!("{fragment}\n[deployment]\npreferred-site = \"{preferred}\"\n");
    let scenario = Scenario::parse(&text, path, sites)?;
    let mut out = Vec::new();
    for h in scenario.timeline {
        let at = Timestamp::ZERO + h.at;
        let agent = |event| Injection {
            at,
            site: None,
            event,
        };
        match h.what {
            Happening::Set { site, patch } => {
                if patch.reachable.is_some() {
                    return Err(anyhow!(
                        "{}: `reachable` cannot be injected into a replay (connects are answered \
                         from the recording); inject the services instead",
                        path.display()
                    ));
                }
                for (service, status) in [
                    (Service::Telephony, patch.telephony),
                    (Service::Configuration, patch.configuration),
                    (Service::Statistic, patch.statistic),
                ] {
                    if let Some(status) = status {
                        out.push(Injection {
                            at,
                            site: Some(site.clone()),
                            event: BackendEvent::ServiceStatus { service, status },
                        });
                    }
                }
            }
            Happening::Logout { reason } => out.push(agent(BackendEvent::AgentLogout {
                dn: dn.to_owned(),
                reason,
                extensions: Default::default(),
            })),
            Happening::DnBackInService => {
                out.push(agent(BackendEvent::DnBackInService { dn: dn.to_owned() }))
            }
            Happening::DnOutOfService => {
                out.push(agent(BackendEvent::DnOutOfService { dn: dn.to_owned() }))
            }
            Happening::Disconnect => out.push(agent(BackendEvent::Disconnected)),
            // E5 what-ifs: "had ops evacuated site1 at 45 s".
            Happening::ConfigChanged(c) => out.push(agent(BackendEvent::ConfigChanged {
                object: c.object,
                name: c.name,
                section: c.section,
                option: c.option,
                value: c.value,
            })),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drctl_policy::ServiceState;

    fn sites() -> Vec<String> {
        vec!["site1".into(), "site2".into()]
    }

    #[test]
    fn one_liners_and_fragments_parse_to_the_same_events() {
        let line = parse(
            &["at=45s site=site2 telephony=off".into()],
            &[],
            &sites(),
            "7001",
        )
        .unwrap();
        assert_eq!(
            line,
            [Injection {
                at: Timestamp::ZERO + std::time::Duration::from_secs(45),
                site: Some("site2".into()),
                event: BackendEvent::ServiceStatus {
                    service: Service::Telephony,
                    status: ServiceState::Off,
                },
            }]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("what-if.toml");
        std::fs::write(
            &f,
            "[[events]]\nat = \"45s\"\nsite = \"site2\"\nset = { telephony = \"off\" }\n",
        )
        .unwrap();
        assert_eq!(parse(&[], &[f], &sites(), "7001").unwrap(), line);
    }

    #[test]
    fn bad_injections_say_what_is_expected_and_where() {
        let err = |s: &str| {
            parse(&[s.into()], &[], &sites(), "7001")
                .unwrap_err()
                .to_string()
        };
        assert!(err("at=45s power=off").contains("unknown key \"power\""));
        assert!(err("at=45s site=site9 telephony=off").contains("unknown site \"site9\""));
        assert!(err("site=site2 telephony=off").contains("at"));
        assert!(err("at=4 5s").contains("expected KEY=VALUE"));
        assert!(err("at=1s site=site1 reachable=false").contains("cannot be injected"));
    }
}

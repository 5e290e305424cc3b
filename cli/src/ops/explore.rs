//! `drctl explore`: seeded random fault schedules on the mock (virtual
//! clock), each run checked against properties; a violation is shrunk to a
//! minimal failing schedule and written as a scenario file, as FoundationDB's
//! simulator finds and shrinks a failing seed. Deterministic from the seed.
//!
//! A schedule is a list of [`Fault`]s added to the base scenario's events.
//! Faults never overlap (one ends before the next starts), so one site is
//! always healthy and a failure is the policy's, not an outage of both sites.

use crate::args::{ClockKind, GlobalArgs};
use crate::exit::CliError;
use crate::host::observe::{Observer, Shared};
use crate::host::session::Session;
use crate::host::{Clock, Host};
use crate::ops::agents::{identical_agents, SessionKind};
use crate::ops::backend::{load_backend, setup, start_backend, BackendKind};
use anyhow::anyhow;
use drctl_policy::{Decision, Engine, ListenerStatus, Reason, Timestamp};
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A site's telephony service OFF, then ON (D1).
    Telephony,
    /// A site's Configuration Servers OFF, then ON (D2).
    Configuration,
    /// A site's Stat Servers OFF, then ON (D3).
    Statistic,
    /// A site's CS Proxy refuses connections, then accepts them again.
    Reachable,
    /// EventAgentLogout on the agent's DN with a random reason (D4).
    Logout,
    /// The backend loses its AIL session.
    Disconnect,
}

impl FaultKind {
    /// Every kind, by its `--faults` name.
    pub const ALL: [(&'static str, FaultKind); 6] = [
        ("telephony", FaultKind::Telephony),
        ("configuration", FaultKind::Configuration),
        ("statistic", FaultKind::Statistic),
        ("reachable", FaultKind::Reachable),
        ("logout", FaultKind::Logout),
        ("disconnect", FaultKind::Disconnect),
    ];

    /// Parses `--faults telephony,logout,…`.
    pub fn parse_list(s: &str) -> Result<Vec<FaultKind>, String> {
        s.split(',')
            .map(str::trim)
            .map(|name| {
                FaultKind::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        let known: Vec<_> = FaultKind::ALL.iter().map(|(n, _)| *n).collect();
                        format!("unknown fault {name:?}: expected {}", known.join(", "))
                    })
            })
            .collect()
    }

    /// The scenario's site field this kind sets, for site faults.
    fn field(self) -> Option<&'static str> {
        match self {
            FaultKind::Telephony => Some("telephony"),
            FaultKind::Configuration => Some("configuration"),
            FaultKind::Statistic => Some("statistic"),
            FaultKind::Reachable => Some("reachable"),
            FaultKind::Logout | FaultKind::Disconnect => None,
        }
    }
}

/// The logout reasons a [`FaultKind::Logout`] picks from: manual, the two DR ones.
const LOGOUT_REASONS: [&str; 3] = ["", "dr-force_logout", "graceful_shutdown_logout"];

/// One fault of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// When it starts.
    pub at: Duration,
    /// What it does.
    pub kind: FaultKind,
    /// The site it hits (site faults).
    pub site: String,
    /// How long it lasts (site faults; a dr-force logout: until the DN is back).
    pub lasts: Duration,
    /// The logout reason (logouts).
    pub reason: &'static str,
}

impl Fault {
    /// The scenario `[[events]]` this fault is.
    fn events(&self) -> Vec<toml::Table> {
        let at = |d: Duration| toml::Value::String(humantime::format_duration(d).to_string());
        let mut out = Vec::new();
        let mut event = |t: Duration, pairs: Vec<(&str, toml::Value)>| {
            let mut e = toml::Table::new();
            e.insert("at".into(), at(t));
            for (k, v) in pairs {
                e.insert(k.into(), v);
            }
            out.push(e);
        };
        match self.kind.field() {
            Some(field) => {
                let value = |on: bool| {
                    if self.kind == FaultKind::Reachable {
                        toml::Value::Boolean(on)
                    } else {
                        toml::Value::String(if on { "on" } else { "off" }.into())
                    }
                };
                let set = |on: bool| {
                    let mut t = toml::Table::new();
                    t.insert(field.into(), value(on));
                    toml::Value::Table(t)
                };
                let site = toml::Value::String(self.site.clone());
                event(self.at, vec![("site", site.clone()), ("set", set(false))]);
                event(
                    self.at + self.lasts,
                    vec![("site", site), ("set", set(true))],
                );
            }
            None if self.kind == FaultKind::Disconnect => {
                event(self.at, vec![("disconnect", toml::Value::Boolean(true))]);
            }
            None => {
                event(
                    self.at,
                    vec![("logout", toml::Value::String(self.reason.into()))],
                );
                if self.reason == "dr-force_logout" {
                    event(
                        self.at + self.lasts,
                        vec![("dn-back-in-service", toml::Value::Boolean(true))],
                    );
                }
            }
        }
        out
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = humantime::format_duration(self.at);
        let lasts = humantime::format_duration(self.lasts);
        match self.kind {
            FaultKind::Logout => write!(f, "+{at} logout {:?}", self.reason),
            FaultKind::Disconnect => write!(f, "+{at} disconnect"),
            k => write!(
                f,
                "+{at} {} {} off for {lasts}",
                self.site,
                k.field().unwrap_or_default()
            ),
        }
    }
}

/// The schedule of `seed`: 1 to 5 faults of `kinds`, none overlapping,
/// within the first `end` (minus a minute, so the end sees the aftermath).
pub fn schedule(seed: u64, kinds: &[FaultKind], sites: &[String], end: Duration) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pick = |n: u64| rng.next_u64() % n.max(1);
    let secs = |s: u64| Duration::from_secs(s);
    let count = 1 + pick(5);
    let mut cursor = secs(5);
    let last = end.saturating_sub(secs(60));
    let mut faults = Vec::new();
    for _ in 0..count {
        let at = cursor + secs(pick(90));
        let kind = kinds[pick(kinds.len() as u64) as usize];
        let site = sites[pick(sites.len() as u64) as usize].clone();
        let lasts = secs(5 + pick(175));
        let reason = LOGOUT_REASONS[pick(LOGOUT_REASONS.len() as u64) as usize];
        let ends = match kind {
            FaultKind::Disconnect => at,
            FaultKind::Logout if reason != "dr-force_logout" => at,
            _ => at + lasts,
        };
        if ends >= last {
            break;
        }
        faults.push(Fault {
            at,
            kind,
            site,
            lasts,
            reason,
        });
        cursor = ends + secs(1);
    }
    faults
}

/// A property every run must keep (`--check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// `rto<=D`: once in service, the agent is never out of service
    /// (telephony or its DN not ON) longer than D.
    Rto(Duration),
    /// `no-flap` (`no-flap<=W`, default 5 min): no switchover back to a site
    /// the agent left less than W before (a startup relocation aside).
    NoFlap(Duration),
    /// `ends-preferred`: at the end the agent is on its preferred site.
    EndsPreferred,
}

impl Property {
    /// Parses `--check 'rto<=60s,no-flap,ends-preferred'`.
    pub fn parse_list(s: &str) -> Result<Vec<Property>, String> {
        let duration = |d: &str| {
            drctl_plugin_api::duration::parse(d.trim()).map_err(|e| format!("{d:?}: {e}"))
        };
        s.split(',')
            .map(str::trim)
            .map(|p| match p.split_once("<=") {
                Some(("rto", d)) => Ok(Property::Rto(duration(d)?)),
                Some(("no-flap", d)) => Ok(Property::NoFlap(duration(d)?)),
                None if p == "no-flap" => Ok(Property::NoFlap(Duration::from_secs(300))),
                None if p == "ends-preferred" => Ok(Property::EndsPreferred),
                _ => Err(format!(
                    "unknown property {p:?}: expected rto<=DURATION, no-flap[<=DURATION] or ends-preferred"
                )),
            })
            .collect()
    }

    /// The property's short name, for file names.
    pub fn slug(&self) -> &'static str {
        match self {
            Property::Rto(_) => "rto",
            Property::NoFlap(_) => "no-flap",
            Property::EndsPreferred => "ends-preferred",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Property::Rto(d) => write!(f, "rto<={}", humantime::format_duration(*d)),
            Property::NoFlap(d) => write!(f, "no-flap<={}", humantime::format_duration(*d)),
            Property::EndsPreferred => f.write_str("ends-preferred"),
        }
    }
}

/// What one run showed, enough to judge every [`Property`].
#[derive(Debug, Default)]
struct Observed {
    /// Out of service since (once it had been in service).
    down_since: Option<Timestamp>,
    served: bool,
    /// The longest stretch out of service: (how long, from when).
    worst: Option<(Duration, Timestamp)>,
    /// Completed switchovers: (when, from, to, reason).
    moves: Vec<(Timestamp, String, String, Reason)>,
    /// Where the agent is, and prefers to be, at the end.
    site: Option<String>,
    preferred: Option<String>,
}

impl Observed {
    fn close(&mut self, t: Timestamp) {
        if let Some(since) = self.down_since.take() {
            let d = t - since;
            if self.worst.is_none_or(|(w, _)| d > w) {
                self.worst = Some((d, since));
            }
        }
    }

    /// The first property of `props` this run breaks, and how.
    fn violation(&self, props: &[Property]) -> Option<(Property, String)> {
        props.iter().find_map(|p| {
            let why = match p {
                Property::Rto(max) => self.worst.filter(|(d, _)| d > max).map(|(d, since)| {
                    format!(
                        "out of service for {} from {since}",
                        humantime::format_duration(d)
                    )
                }),
                Property::NoFlap(window) => self.moves.windows(2).find_map(|w| {
                    let ((t0, a, b, r0), (t1, _, back, _)) = (&w[0], &w[1]);
                    (*r0 != Reason::StartupRelocate && back == a && *t1 - *t0 < *window)
                        .then(|| format!("left {a} for {b} at {t0}, back at {t1}"))
                }),
                Property::EndsPreferred => (self.site != self.preferred).then(|| {
                    format!(
                        "the agent ends on {}, prefers {}",
                        self.site.as_deref().unwrap_or("no site"),
                        self.preferred.as_deref().unwrap_or("an unknown site")
                    )
                }),
            };
            why.map(|w| (p.clone(), w))
        })
    }
}

impl Observer for Observed {
    fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
        if let Decision::SwitchoverCompleted { reason, from, to } = d {
            self.moves
                .push((t, from.to_string(), to.to_string(), *reason));
        }
    }

    fn settled(&mut self, t: Timestamp, _agent: &str, engine: &Engine) {
        let v = engine.view();
        let up = v.telephony == ListenerStatus::On && v.dn == ListenerStatus::On;
        if up {
            self.served = true;
            self.close(t);
        } else if self.served && self.down_since.is_none() {
            self.down_since = Some(t);
        }
        self.site = v.site.map(|s| s.to_string());
        self.preferred = v.preferred_site.map(|s| s.to_string());
    }
}

/// One violation found: the seed, the property, the shrunk schedule and its file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The seed whose schedule broke the property.
    pub seed: u64,
    /// The property, as given to `--check`.
    pub property: String,
    /// How the shrunk schedule breaks it.
    pub detail: String,
    /// How many faults the seed's schedule had.
    pub faults: usize,
    /// The shrunk schedule, one fault a line.
    pub shrunk: Vec<String>,
    /// The shrunk schedule as a scenario file.
    pub file: PathBuf,
}

/// What `drctl explore` asks for.
pub struct Exploration<'a> {
    /// The base scenario (its `deployment` and events).
    pub base: &'a Path,
    /// The seeds to try.
    pub seeds: std::ops::Range<u64>,
    /// The fault kinds schedules draw from.
    pub faults: &'a [FaultKind],
    /// The properties every run must keep.
    pub check: &'a [Property],
    /// Where shrunk failing scenarios are written.
    pub out: &'a Path,
}

/// Runs every seed's schedule; for each that breaks a property, shrinks it
/// and writes it as a scenario. The findings, and how many runs it took.
pub fn explore(
    global: &GlobalArgs,
    ex: &Exploration<'_>,
    progress: &dyn Fn(u64),
) -> Result<(Vec<Finding>, u64), CliError> {
    let text = drctl_plugin_mock::scenario::read_text(ex.base).map_err(CliError::bad_input)?;
    let base: toml::Table = toml::from_str(&text)
        .map_err(|e| CliError::bad_input(anyhow!("{}: {e}", ex.base.display())))?;
    let work = tempfile::tempdir().map_err(CliError::failed)?;
    let file = work.path().join("scenario.toml");
    std::fs::write(&file, &text).map_err(CliError::failed)?;
    // The base as given: refused here (with its line) if it is not a scenario.
    let s = setup(global, Some("mock"), Some(&file))?;
    let end = s.end.ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "{}: explore needs deployment.end (where each run stops)",
            ex.base.display()
        ))
    })?;
    let sites: Vec<String> = s.cfg.sites.iter().map(|x| x.name.clone()).collect();
    let plugin = load_backend(&s.cfg, &BackendKind::Mock, ClockKind::Virtual)?;
    let mut runs = 0u64;
    let mut run = |faults: &[Fault]| -> Result<Observed, CliError> {
        runs += 1;
        std::fs::write(&file, compose(&base, faults)).map_err(CliError::failed)?;
        let agents = identical_agents(&s.cfg, SessionKind::Watch, 1)?;
        let (instance, wake) = start_backend(&plugin, &s.plugin_cfg)?;
        let observed = Rc::new(RefCell::new(Observed::default()));
        let mut host = Host::fleet(agents, instance, Clock::virtual_at_zero(), wake);
        host.observe(Box::new(Shared(observed.clone())));
        let mut session = Session::new(host).map_err(CliError::failed)?;
        session.start().map_err(CliError::failed)?;
        session
            .run(Some(end), |_| false)
            .map_err(CliError::failed)?;
        session.host.close();
        drop(session);
        let mut o = Rc::try_unwrap(observed)
            .map(RefCell::into_inner)
            .unwrap_or_default();
        o.close(end);
        Ok(o)
    };
    let mut findings = Vec::new();
    for seed in ex.seeds.clone() {
        progress(seed);
        let faults = schedule(seed, ex.faults, &sites, end.since_start());
        let Some((property, _)) = run(&faults)?.violation(ex.check) else {
            continue;
        };
        let shrunk = shrink(faults.clone(), |c| {
            Ok(run(c)?.violation(std::slice::from_ref(&property)).is_some())
        })?;
        let detail = run(&shrunk)?
            .violation(std::slice::from_ref(&property))
            .map(|(_, d)| d)
            .unwrap_or_default();
        let path = ex
            .out
            .join(format!("explore-{}-seed{seed}.toml", property.slug()));
        let header = format!(
            "# drctl explore: seed {seed} breaks {property}: {detail}.\n\
             # Shrunk from {} faults to {} on {}.\n\
             # Reproduce: drctl watch --backend mock --scenario {} --clock virtual --until-end\n",
            faults.len(),
            shrunk.len(),
            ex.base.display(),
            path.display()
        );
        crate::paths::create_private_dir(ex.out)
            .map_err(|e| CliError::failed(anyhow!("{}: {e}", ex.out.display())))?;
        std::fs::write(&path, header + &compose(&base, &shrunk))
            .map_err(|e| CliError::failed(anyhow!("{}: {e}", path.display())))?;
        findings.push(Finding {
            seed,
            property: property.to_string(),
            detail,
            faults: faults.len(),
            shrunk: shrunk.iter().map(ToString::to_string).collect(),
            file: path,
        });
    }
    Ok((findings, runs))
}

/// The base scenario with `faults` added to its events, as TOML.
fn compose(base: &toml::Table, faults: &[Fault]) -> String {
    let mut doc = base.clone();
    let mut events = match doc.remove("events") {
        Some(toml::Value::Array(a)) => a,
        _ => Vec::new(),
    };
    events.extend(
        faults
            .iter()
            .flat_map(Fault::events)
            .map(toml::Value::Table),
    );
    doc.insert("events".into(), toml::Value::Array(events));
    toml::to_string(&doc).unwrap_or_default()
}

/// A smallest schedule that still `fails`: drop faults one at a time while
/// it fails, then halve each one's length while it fails (delta debugging,
/// one step at a time: deterministic, a few dozen runs).
fn shrink(
    mut faults: Vec<Fault>,
    mut fails: impl FnMut(&[Fault]) -> Result<bool, CliError>,
) -> Result<Vec<Fault>, CliError> {
    'drop: loop {
        for i in 0..faults.len() {
            let mut fewer = faults.clone();
            fewer.remove(i);
            if fails(&fewer)? {
                faults = fewer;
                continue 'drop;
            }
        }
        break;
    }
    for i in 0..faults.len() {
        for _ in 0..6 {
            let mut shorter = faults.clone();
            shorter[i].lasts /= 2;
            if shorter[i].lasts < Duration::from_secs(1) || !fails(&shorter)? {
                break;
            }
            faults = shorter;
        }
    }
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> Vec<String> {
        vec!["site1".into(), "site2".into()]
    }

    #[test]
    fn a_seed_always_gives_the_same_schedule_and_faults_never_overlap() {
        let kinds: Vec<_> = FaultKind::ALL.iter().map(|(_, k)| *k).collect();
        let end = Duration::from_secs(1200);
        for seed in 0..200 {
            let a = schedule(seed, &kinds, &sites(), end);
            assert_eq!(a, schedule(seed, &kinds, &sites(), end));
            assert!(!a.is_empty() && a.len() <= 5);
            for w in a.windows(2) {
                assert!(w[0].at + w[0].lasts < w[1].at || w[0].kind.field().is_none());
                assert!(w[0].at < w[1].at);
            }
        }
        assert_ne!(
            schedule(1, &kinds, &sites(), end),
            schedule(2, &kinds, &sites(), end)
        );
    }

    #[test]
    fn properties_parse_and_print_back() {
        let p = Property::parse_list("rto<=60s, no-flap,ends-preferred,no-flap<=2m").unwrap();
        let shown: Vec<_> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["rto<=1m", "no-flap<=5m", "ends-preferred", "no-flap<=2m"]
        );
        assert!(Property::parse_list("fast")
            .unwrap_err()
            .contains("unknown property"));
        assert!(FaultKind::parse_list("telephony,power")
            .unwrap_err()
            .contains("\"power\""));
    }

    #[test]
    fn shrinking_keeps_only_what_the_failure_needs() {
        let f = |at: u64, site: &str| Fault {
            at: Duration::from_secs(at),
            kind: FaultKind::Telephony,
            site: site.into(),
            lasts: Duration::from_secs(160),
            reason: "",
        };
        // Fails while a site1 fault lasts 40 s or more.
        let fails = |c: &[Fault]| {
            Ok(c.iter()
                .any(|x| x.site == "site1" && x.lasts >= Duration::from_secs(40)))
        };
        let shrunk = shrink(
            vec![f(10, "site2"), f(200, "site1"), f(400, "site2")],
            fails,
        )
        .unwrap();
        assert_eq!(shrunk.len(), 1);
        assert_eq!(shrunk[0].site, "site1");
        assert_eq!(shrunk[0].lasts, Duration::from_secs(40));
    }

    #[test]
    fn a_fault_is_the_scenario_events_it_says() {
        let f = Fault {
            at: Duration::from_secs(30),
            kind: FaultKind::Reachable,
            site: "site2".into(),
            lasts: Duration::from_secs(15),
            reason: "",
        };
        let text = compose(&toml::Table::new(), &[f]);
        assert!(text.contains("at = \"30s\""), "{text}");
        assert!(text.contains("at = \"45s\""), "{text}");
        assert!(text.contains("reachable = false"), "{text}");
        assert!(text.contains("reachable = true"), "{text}");
    }
}

//! Prometheus metrics (`[metrics] listen`): a read-only `GET /metrics`
//! (OpenMetrics, or the text format 0.0.4 when asked; served by
//! `crate::http`), fed by an observer of the host loop, which also keeps the
//! readiness `GET /readyz` answers.
//!
//! Every labelled series exists from the start (0 until it happens), so a
//! query or an alert on one never meets "no data": both sites, the four
//! listeners, every alarm, phase and switchover reason and outcome.

/// Registers each `(name, help) => field` of `m` in `r` (a series both
/// watchers keep by its name in [`series`]).
macro_rules! register {
    ($r:expr, $m:expr, $($series:expr => $field:ident),+ $(,)?) => {{
        $(let (name, help): series::Series = $series;
        $r.register(name, help, $m.$field.clone());)+
    }};
}

mod fleet;

pub use fleet::FleetMetrics;

use crate::host::observe::Observer;
use crate::http::Health;
use drctl_plugin_api::messages::{Event as WireEvent, Output};
use drctl_policy::{Alarm, Decision, Engine, ListenerStatus, PhaseKind, Reason, Timestamp, View};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabel {
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlarmLabel {
    alarm: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchLabel {
    reason: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

/// The metrics of one agent session, and the observer that keeps them current.
pub struct Metrics {
    common: Common,
    /// The switchover in flight, and since when in which phase at which site.
    in_flight: InFlight,
    last: Option<(Timestamp, &'static str, Option<String>)>,
    site: Family<SiteLabel, Gauge>,
    epoch: Gauge,
    listener: Family<ListenerLabel, Gauge>,
    alarm: Family<AlarmLabel, Gauge>,
    alarms_active: Gauge,
    paused: Gauge,
    phase: Family<PhaseLabel, Gauge>,
    faults: Counter,
}

/// The outcomes `drctl_switchovers_total` counts.
const OUTCOMES: [&str; 3] = ["completed", "failed", "suppressed"];

/// The listeners `drctl_listener_up` shows.
const LISTENERS: [&str; 4] = ["telephony", "configuration", "statistic", "dn"];

impl Metrics {
    /// Registers every metric, labelled with the agent, each labelled series
    /// of `sites` and of every listener, alarm, phase and reason at 0.
    pub fn new(agent: &str, sites: &[String]) -> Metrics {
        let mut r = Registry::with_prefix_and_labels(
            "drctl",
            [(Cow::Borrowed("agent"), Cow::Owned(agent.to_owned()))].into_iter(),
        );
        let mut m = Metrics {
            common: Common::new(),
            site: Family::default(),
            epoch: Gauge::default(),
            listener: Family::default(),
            alarm: Family::default(),
            alarms_active: Gauge::default(),
            paused: Gauge::default(),
            phase: Family::default(),
            faults: Counter::default(),
            in_flight: None,
            last: None,
        };
        for site in sites {
            m.site
                .get_or_create(&SiteLabel { site: site.clone() })
                .set(0);
        }
        for listener in LISTENERS {
            m.listener.get_or_create(&ListenerLabel { listener }).set(0);
        }
        for a in Alarm::ALL {
            m.alarm
                .get_or_create(&AlarmLabel { alarm: a.as_str() })
                .set(0);
        }
        for p in PhaseKind::ALL {
            m.phase
                .get_or_create(&PhaseLabel { phase: p.as_str() })
                .set(i64::from(p == PhaseKind::Idle));
        }
        register!(r, m, series::SITE => site, series::EPOCH => epoch,
            series::LISTENER_UP => listener, series::ALARM_ACTIVE => alarm,
            series::ALARMS_ACTIVE => alarms_active, series::PAUSED => paused);
        m.common.switchovers.register(
            &mut r,
            "switchover outcomes by reason: completed, failed (one per failed attempt), suppressed",
            "from switchover-started to switchover-completed",
        );
        register!(r, m, ("phase", "1 for the engine's current phase") => phase);
        register!(r, m.common, ("phase_seconds", "time spent in each phase") => phase_seconds);
        register!(r, m, series::BACKEND_FAULTS => faults);
        m.common.serve(r);
        m
    }

    /// What the endpoint serves and the `--shadow` observer counts.
    pub fn handles(&self) -> Handles {
        self.common.handles()
    }
}

/// What a metrics observer (one agent's or a fleet's) shares once the host
/// owns it: the HTTP endpoint's registry and readiness, and the counter the
/// `--shadow` observer bumps.
pub struct Handles {
    /// The registry, for the HTTP endpoint.
    pub registry: Arc<Registry>,
    /// The readiness the observer keeps, for `GET /readyz`.
    pub health: Arc<Health>,
    /// `drctl_shadow_divergences_total`.
    pub shadow_divergences: Counter,
}

/// What the one-agent and the fleet watcher keep alike: the registry and
/// readiness they serve, and the series that carry no agent label in a
/// fleet (switchovers, time in phase, shadow divergences).
struct Common {
    registry: Arc<Registry>,
    health: Arc<Health>,
    switchovers: Switchovers,
    phase_seconds: Family<PhaseLabel, Counter<f64, AtomicU64>>,
    shadow_divergences: Counter,
}

impl Common {
    fn handles(&self) -> Handles {
        Handles {
            registry: self.registry.clone(),
            health: self.health.clone(),
            shadow_divergences: self.shadow_divergences.clone(),
        }
    }

    /// Every series at 0 (each reason and outcome, each phase); the
    /// registry empty until the watcher has registered its series.
    fn new() -> Common {
        let c = Common {
            registry: Arc::default(),
            health: Arc::default(),
            switchovers: Switchovers::new(),
            phase_seconds: Family::default(),
            shadow_divergences: Counter::default(),
        };
        for p in PhaseKind::ALL {
            // Creating the series is the point; adding 0 keeps its value.
            let label = PhaseLabel { phase: p.as_str() };
            c.phase_seconds.get_or_create(&label).inc_by(0.0);
        }
        c
    }

    /// Registers the shadow divergences (last, as both watchers list them)
    /// and keeps `r` to serve.
    fn serve(&mut self, mut r: Registry) {
        register!(r, self, series::SHADOW_DIVERGENCES => shadow_divergences);
        self.registry = Arc::new(r);
    }
}

/// Name and help of each series the one-agent and the fleet watcher both
/// keep per agent: one table, so dashboards and alert rules find them alike.
mod series {
    /// A series' name (after `drctl_`) and help.
    pub(super) type Series = (&'static str, &'static str);
    pub(super) const SITE: Series = ("site", "1 for the site the agent is on, 0 for the other");
    pub(super) const EPOCH: Series = ("epoch", "the current AIL connection's epoch");
    pub(super) const LISTENER_UP: Series = (
        "listener_up",
        "1 when the listener's service is on (DN in service), 0 when off or unknown",
    );
    pub(super) const ALARM_ACTIVE: Series = ("alarm_active", "1 while the alarm is up");
    pub(super) const ALARMS_ACTIVE: Series = ("alarms_active", "alarms up");
    pub(super) const PAUSED: Series = ("paused", "1 while automatic switchovers are paused (E3)");
    pub(super) const BACKEND_FAULTS: Series = (
        "backend_faults",
        "backend disconnections and failed commands",
    );
    pub(super) const SHADOW_DIVERGENCES: Series = (
        "shadow_divergences",
        "decisions only one of the live and the --shadow policy made (0 without --shadow)",
    );
}

/// A count as a gauge value (saturating: no fleet comes near).
fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The four listeners of `v`, by the names `drctl_listener_up` shows.
fn listeners(v: &View) -> impl Iterator<Item = (&'static str, ListenerStatus)> {
    LISTENERS
        .into_iter()
        .zip([v.telephony, v.configuration, v.statistic, v.dn])
}

/// `drctl_switchovers_total` and `drctl_switchover_duration_seconds`,
/// counted alike by the one-agent and the fleet metrics.
struct Switchovers {
    outcomes: Family<SwitchLabel, Counter>,
    duration: Histogram,
}

/// A switchover in flight: since when, why.
type InFlight = Option<(Timestamp, &'static str)>;

impl Switchovers {
    /// Every reason and outcome at 0.
    fn new() -> Switchovers {
        let s = Switchovers {
            outcomes: Family::default(),
            duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
        };
        for reason in Reason::ALL {
            for outcome in OUTCOMES {
                let label = SwitchLabel {
                    reason: reason.as_str(),
                    outcome,
                };
                s.outcomes.get_or_create(&label).inc_by(0);
            }
        }
        s
    }

    /// Registers both, with their help texts.
    fn register(&self, r: &mut Registry, outcomes_help: &str, duration_help: &str) {
        r.register("switchovers", outcomes_help, self.outcomes.clone());
        r.register(
            "switchover_duration_seconds",
            duration_help,
            self.duration.clone(),
        );
    }

    /// Counts `d` for an agent whose switchover in flight is `in_flight`
    /// (kept here); returns 1 when one starts with none in flight, -1 when
    /// the one in flight completes, else 0.
    fn count(&self, t: Timestamp, d: &Decision, in_flight: &mut InFlight) -> i64 {
        let count = |reason, outcome| {
            self.outcomes
                .get_or_create(&SwitchLabel { reason, outcome })
                .inc()
        };
        match d {
            Decision::SwitchoverStarted { reason, .. } => {
                let was = in_flight.replace((t, reason.as_str()));
                i64::from(was.is_none())
            }
            Decision::SwitchoverCompleted { reason, .. } => {
                count(reason.as_str(), "completed");
                let Some((start, _)) = in_flight.take() else {
                    return 0;
                };
                self.duration.observe((t - start).as_secs_f64());
                -1
            }
            Decision::SwitchoverFailed { .. } => {
                count(in_flight.map_or("unknown", |(_, r)| r), "failed");
                0
            }
            Decision::SwitchoverSuppressed { reason, .. } => {
                count(reason.as_str(), "suppressed");
                0
            }
            _ => 0,
        }
    }
}

fn up(s: ListenerStatus) -> i64 {
    i64::from(s == ListenerStatus::On)
}

impl Observer for Metrics {
    fn output(&mut self, _t: Timestamp, output: &Output) {
        match output {
            Output::Event {
                event: WireEvent::Disconnected,
                ..
            }
            | Output::Result { result: Err(_), .. } => {
                self.faults.inc();
            }
            _ => {}
        }
    }

    fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
        self.common.switchovers.count(t, d, &mut self.in_flight);
    }

    fn settled(&mut self, t: Timestamp, _agent: &str, engine: &Engine) {
        let v = engine.view();
        let phase = v.phase.as_str();
        let site = v.site.as_ref().map(|s| s.to_string());
        if let Some((since, last_phase, last_site)) = self.last.take() {
            let label = PhaseLabel { phase: last_phase };
            self.common
                .phase_seconds
                .get_or_create(&label)
                .inc_by((t - since).as_secs_f64());
            if last_phase != phase {
                self.phase.get_or_create(&label).set(0);
            }
            if let Some(s) = last_site.filter(|s| Some(s) != site.as_ref()) {
                self.site.get_or_create(&SiteLabel { site: s }).set(0);
            }
        }
        self.phase.get_or_create(&PhaseLabel { phase }).set(1);
        if let Some(s) = &site {
            self.site
                .get_or_create(&SiteLabel { site: s.clone() })
                .set(1);
        }
        // Ready: connected, its listeners subscribed (W2 done).
        let ready = v.phase == PhaseKind::Watching;
        self.common.health.set_ready(
            ready,
            match &site {
                Some(s) => format!("{phase} on {s}"),
                None => phase.to_owned(),
            },
        );
        self.last = Some((t, phase, site));
        self.epoch.set(v.epoch.map_or(0, gauge_value));
        for (name, s) in listeners(&v) {
            self.listener
                .get_or_create(&ListenerLabel { listener: name })
                .set(up(s));
        }
        self.paused.set(i64::from(v.paused));
    }

    fn alarms(&mut self, _t: Timestamp, _agent: &str, active: &[Alarm]) {
        for a in Alarm::ALL {
            let on = active.contains(&a);
            self.alarm
                .get_or_create(&AlarmLabel { alarm: a.as_str() })
                .set(i64::from(on));
        }
        self.alarms_active.set(gauge_value(active.len()));
    }
}

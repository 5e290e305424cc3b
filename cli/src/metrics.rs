//! Prometheus metrics (`[metrics] listen`): a read-only `GET /metrics`
//! (OpenMetrics, or the text format 0.0.4 when asked; served by
//! `crate::http`), fed by an observer of the host loop, which also keeps the
//! readiness `GET /readyz` answers.
//!
//! Every labelled series exists from the start (0 until it happens), so a
//! query or an alert on one never meets "no data": both sites, the four
//! listeners, every alarm, phase and switchover reason and outcome.

mod fleet;

pub use fleet::FleetMetrics;

use crate::host::observe::Observer;
use crate::http::Health;
use drctl_plugin_api::messages::{Event as WireEvent, Output};
use drctl_policy::{Alarm, Decision, Engine, ListenerStatus, PhaseKind, Reason, Timestamp};
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
    registry: Arc<Registry>,
    site: Family<SiteLabel, Gauge>,
    epoch: Gauge,
    listener: Family<ListenerLabel, Gauge>,
    alarm: Family<AlarmLabel, Gauge>,
    alarms_active: Gauge,
    paused: Gauge,
    switchovers: Family<SwitchLabel, Counter>,
    duration: Histogram,
    phase: Family<PhaseLabel, Gauge>,
    phase_seconds: Family<PhaseLabel, Counter<f64, AtomicU64>>,
    faults: Counter,
    shadow_divergences: Counter,
    in_flight: Option<(Timestamp, &'static str)>,
    last: Option<(Timestamp, &'static str, Option<String>)>,
    health: Arc<Health>,
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
        let m = Metrics {
            registry: Arc::new(Registry::default()),
            site: Family::default(),
            epoch: Gauge::default(),
            listener: Family::default(),
            alarm: Family::default(),
            alarms_active: Gauge::default(),
            paused: Gauge::default(),
            switchovers: Family::default(),
            duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            phase: Family::default(),
            phase_seconds: Family::default(),
            faults: Counter::default(),
            shadow_divergences: Counter::default(),
            in_flight: None,
            last: None,
            health: Arc::new(Health::default()),
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
            let label = PhaseLabel { phase: p.as_str() };
            m.phase
                .get_or_create(&label)
                .set(i64::from(p == PhaseKind::Idle));
            // Creating the series is the point; adding 0 keeps its value.
            m.phase_seconds.get_or_create(&label).inc_by(0.0);
        }
        for reason in Reason::ALL {
            for outcome in OUTCOMES {
                let label = SwitchLabel {
                    reason: reason.as_str(),
                    outcome,
                };
                m.switchovers.get_or_create(&label).inc_by(0);
            }
        }
        r.register(
            "site",
            "1 for the site the agent is on, 0 for the other",
            m.site.clone(),
        );
        r.register(
            "epoch",
            "the current AIL connection's epoch",
            m.epoch.clone(),
        );
        r.register(
            "listener_up",
            "1 when the listener's service is on (DN in service), 0 when off or unknown",
            m.listener.clone(),
        );
        r.register("alarm_active", "1 while the alarm is up", m.alarm.clone());
        r.register("alarms_active", "alarms up", m.alarms_active.clone());
        r.register(
            "paused",
            "1 while automatic switchovers are paused (E3)",
            m.paused.clone(),
        );
        r.register(
            "switchovers",
            "switchover outcomes by reason: completed, failed (one per failed attempt), suppressed",
            m.switchovers.clone(),
        );
        r.register(
            "switchover_duration_seconds",
            "from switchover-started to switchover-completed",
            m.duration.clone(),
        );
        r.register("phase", "1 for the engine's current phase", m.phase.clone());
        r.register(
            "phase_seconds",
            "time spent in each phase",
            m.phase_seconds.clone(),
        );
        r.register(
            "backend_faults",
            "backend disconnections and failed commands",
            m.faults.clone(),
        );
        r.register(
            "shadow_divergences",
            SHADOW_HELP,
            m.shadow_divergences.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// The registry, for the HTTP endpoint.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The readiness this observer keeps, for `GET /readyz`.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// `drctl_shadow_divergences_total`, for the `--shadow` observer to count.
    pub fn shadow_divergences(&self) -> Counter {
        self.shadow_divergences.clone()
    }
}

const SHADOW_HELP: &str =
    "decisions only one of the live and the --shadow policy made (0 without --shadow)";

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
        let count = |reason, outcome| SwitchLabel { reason, outcome };
        match d {
            Decision::SwitchoverStarted { reason, .. } => {
                self.in_flight = Some((t, reason.as_str()))
            }
            Decision::SwitchoverCompleted { reason, .. } => {
                self.switchovers
                    .get_or_create(&count(reason.as_str(), "completed"))
                    .inc();
                if let Some((start, _)) = self.in_flight.take() {
                    self.duration.observe((t - start).as_secs_f64());
                }
            }
            Decision::SwitchoverFailed { .. } => {
                let reason = self.in_flight.map_or("unknown", |(_, r)| r);
                self.switchovers
                    .get_or_create(&count(reason, "failed"))
                    .inc();
            }
            Decision::SwitchoverSuppressed { reason, .. } => {
                self.switchovers
                    .get_or_create(&count(reason.as_str(), "suppressed"))
                    .inc();
            }
            _ => {}
        }
    }

    fn settled(&mut self, t: Timestamp, _agent: &str, engine: &Engine) {
        let v = engine.view();
        let phase = v.phase.as_str();
        let site = v.site.map(|s| s.to_string());
        if let Some((since, last_phase, last_site)) = self.last.take() {
            let label = PhaseLabel { phase: last_phase };
            self.phase_seconds
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
        self.health.set_ready(
            ready,
            match &site {
                Some(s) => format!("{phase} on {s}"),
                None => phase.to_owned(),
            },
        );
        self.last = Some((t, phase, site));
        self.epoch
            .set(v.epoch.map_or(0, |e| i64::try_from(e).unwrap_or(i64::MAX)));
        for (name, s) in
            LISTENERS
                .into_iter()
                .zip([v.telephony, v.configuration, v.statistic, v.dn])
        {
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
        self.alarms_active
            .set(i64::try_from(active.len()).unwrap_or(i64::MAX));
    }
}

//! Alertmanager sinks: drctl's alarms as alerts, posted to Prometheus
//! Alertmanager's v2 API (`POST <url>/api/v2/alerts`) with the webhook's
//! client (no redirects, a timeout per attempt, retries, credentials shown
//! redacted), so they go through the routing, silencing and paging that ops
//! already have. Switchover notifications are not alerts and are skipped.
//!
//! An alert is labelled `alertname` (the alarm), `agent`, `site` (where the
//! agent was when it was raised), `severity` and the sink's own `labels`.
//! Like Prometheus, the sink keeps the alarms that are up and sends them all
//! again every `resend-interval`, each valid for four intervals (`endsAt`
//! ahead): an Alertmanager that restarted learns them back, and the alerts
//! of a watcher that died resolve by themselves. A cleared alarm is sent
//! with `endsAt` = when it cleared, and again at each resend until a POST
//! carrying it succeeds.

use super::webhook::Webhook;
use super::Notification;
use drctl_config::{SinkConfig, SinkUrl};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// The API path under the Alertmanager's URL.
const API_PATH: [&str; 3] = ["api", "v2", "alerts"];

/// Alerts kept for resending at most (fleet mode: agents × alarms); an
/// alarm raised beyond it is sent once and not resent (logged).
const MAX_ALERTS: usize = 100_000;

/// Alerts per POST when resending.
const BATCH: usize = 1_000;

/// An alert that is up is valid for this many resend intervals (as
/// Prometheus: `endsAt` = now + 4 × resend delay).
const VALID_FOR: u32 = 4;

/// The `severity` of an alarm the sink's `severity` table does not name.
fn default_severity(alarm: &str) -> &'static str {
    match alarm {
        // The agent cannot take calls where it is (D1 telephony OFF, a switch
        // pending or not; D4 its SIP registration lost), or a switchover
        // could not be made (W4).
        "telephony-service-down" | "sip-registration-lost" | "switchover-failed" => "critical",
        _ => "warning",
    }
}

/// One sink, with the alarms that are up or cleared but not yet delivered.
pub(super) struct Alertmanager {
    post: Webhook,
    resend: Duration,
    labels: BTreeMap<String, String>,
    severity: BTreeMap<String, String>,
    /// By (agent, alarm).
    alerts: HashMap<(String, &'static str), Alert>,
    /// Alarms raised while `alerts` was full.
    untracked: u64,
}

/// An alarm as Alertmanager was (or is to be) told.
#[derive(Clone, Debug)]
struct Alert {
    site: Option<String>,
    /// When it was raised (absent: raised before this sink knew of it).
    starts_at: Option<String>,
    /// When it cleared; absent while it is up.
    ends_at: Option<String>,
}

/// One alert of the v2 API's `postableAlerts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Postable<'a> {
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<&'a str>,
    ends_at: &'a str,
}

/// `<url>/api/v2/alerts`; a URL that already ends so is kept as it is.
fn endpoint(url: &str) -> anyhow::Result<SinkUrl> {
    let mut u = reqwest::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("the alertmanager URL is not a URL: {e}"))?;
    if !u.path().trim_end_matches('/').ends_with("/api/v2/alerts") {
        u.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("the alertmanager URL cannot take a path"))?
            .pop_if_empty()
            .extend(API_PATH);
    }
    Ok(SinkUrl::from(String::from(u)))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Alertmanager {
    /// The sink's client, posting to its Alertmanager's alerts endpoint.
    pub(super) fn new(sink: &SinkConfig) -> anyhow::Result<Alertmanager> {
        let url = sink.url.as_ref().map(SinkUrl::expose).unwrap_or_default();
        Ok(Alertmanager {
            post: Webhook::to(sink, &endpoint(url)?)?,
            resend: sink.resend_interval,
            labels: sink.labels.clone(),
            severity: sink.severity.clone(),
            alerts: HashMap::new(),
            untracked: 0,
        })
    }

    /// Delivers notifications as they come and resends the alerts every
    /// resend interval, until the queue closes.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Notification>, name: &str) {
        let start = tokio::time::Instant::now() + self.resend;
        let mut tick = tokio::time::interval_at(start, self.resend);
        // After a slow round, the next one is a whole interval later, not at once.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(n) => self.notify(&n, name).await,
                    None => break,
                },
                _ = tick.tick() => self.resend_all(name).await,
            }
        }
    }

    /// `endsAt` of an alert that is up, sent now.
    fn valid_until(&self) -> String {
        let ahead = self.resend.saturating_mul(VALID_FOR);
        rfc3339(SystemTime::now() + ahead)
    }

    /// One alarm raised or cleared: remembered, then sent (with retries).
    async fn notify(&mut self, n: &Notification, name: &str) {
        let (Some(alarm), "alarm") = (n.alarm, n.event) else {
            return;
        };
        let key = (n.agent.clone(), alarm);
        let alert = match (n.state, self.alerts.get(&key)) {
            // Raised again while up: the alert Alertmanager has stands.
            ("raised", Some(a)) if a.ends_at.is_none() => a.clone(),
            ("raised", _) => Alert {
                site: n.site.clone(),
                starts_at: Some(n.time.clone()),
                ends_at: None,
            },
            // With its labels as raised: Alertmanager tells alerts apart by them.
            ("cleared", Some(a)) => Alert {
                ends_at: Some(n.time.clone()),
                ..a.clone()
            },
            ("cleared", None) => Alert {
                site: n.site.clone(),
                starts_at: None,
                ends_at: Some(n.time.clone()),
            },
            _ => return,
        };
        self.keep(&key, &alert, name);
        let until = self.valid_until();
        let sent = {
            let body = [self.postable(&key, &alert, &until)];
            self.post.deliver(&body[..]).await
        };
        match sent {
            Ok(()) if alert.ends_at.is_some() => {
                self.alerts.remove(&key);
            }
            Ok(()) => {}
            // Kept: the next resend tries again.
            Err(e) => tracing::warn!(
                "alarm sink {name}: alarm {alarm} {} not delivered: {e:#} (resent within {})",
                n.state,
                humantime::format_duration(self.resend)
            ),
        }
    }

    /// Remembers `alert` for the resends, while there is room.
    fn keep(&mut self, key: &(String, &'static str), alert: &Alert, name: &str) {
        if self.alerts.len() < MAX_ALERTS || self.alerts.contains_key(key) {
            self.alerts.insert(key.clone(), alert.clone());
            return;
        }
        self.untracked += 1;
        if self.untracked % 1000 == 1 {
            tracing::warn!(
                "alarm sink {name}: {MAX_ALERTS} alerts kept already: {} of {} is sent once, not resent ({} so far)",
                key.1,
                key.0,
                self.untracked
            );
        }
    }

    /// Every alert kept, in batches; a failed POST ends the round (the
    /// Alertmanager is likely down: the next round tries again).
    async fn resend_all(&mut self, name: &str) {
        if self.alerts.is_empty() {
            return;
        }
        let until = self.valid_until();
        let keys: Vec<(String, &'static str)> = self.alerts.keys().cloned().collect();
        for batch in keys.chunks(BATCH) {
            let sent = {
                let body: Vec<Postable<'_>> = batch
                    .iter()
                    .filter_map(|k| Some(self.postable(k, self.alerts.get(k)?, &until)))
                    .collect();
                self.post.send_once(&body).await
            };
            if let Err(e) = sent {
                tracing::warn!(
                    "alarm sink {name}: {} alert(s) not resent: {e:#} (next try in {})",
                    self.alerts.len(),
                    humantime::format_duration(self.resend)
                );
                return;
            }
            // Delivered: a cleared alarm is done with.
            for k in batch {
                if self.alerts.get(k).is_some_and(|a| a.ends_at.is_some()) {
                    self.alerts.remove(k);
                }
            }
        }
        tracing::debug!("alarm sink {name}: {} alert(s) resent", self.alerts.len());
    }

    /// The alert of `alarm` for `agent` as the API takes it.
    fn postable<'a>(
        &'a self,
        (agent, alarm): &'a (String, &'static str),
        alert: &'a Alert,
        until: &'a str,
    ) -> Postable<'a> {
        let mut labels: BTreeMap<&str, &str> = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let severity = self
            .severity
            .get(*alarm)
            .map_or_else(|| default_severity(alarm), String::as_str);
        labels.insert("alertname", alarm);
        labels.insert("agent", agent);
        labels.insert("severity", severity);
        if let Some(site) = &alert.site {
            labels.insert("site", site);
        }
        let summary = match &alert.site {
            Some(site) => format!("drctl alarm {alarm} for agent {agent} on {site}"),
            None => format!("drctl alarm {alarm} for agent {agent}"),
        };
        Postable {
            labels,
            annotations: BTreeMap::from([("summary", summary)]),
            starts_at: alert.starts_at.as_deref(),
            ends_at: alert.ends_at.as_deref().unwrap_or(until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_v2_alerts_path_under_the_url() {
        for (url, want) in [
            ("http://am:9093", "http://am:9093/api/v2/alerts"),
            ("http://am:9093/", "http://am:9093/api/v2/alerts"),
            ("https://h/prefix/", "https://h/prefix/api/v2/alerts"),
            (
                "https://h/prefix/api/v2/alerts",
                "https://h/prefix/api/v2/alerts",
            ),
            ("http://u:p@h:1/x?k=v", "http://u:p@h:1/x/api/v2/alerts?k=v"),
        ] {
            let got = endpoint(url).map(|u| u.expose().to_owned());
            assert_eq!(got.ok().as_deref(), Some(want), "{url}");
        }
        assert!(endpoint("not a url").is_err());
    }

    fn sink(toml_labels: &[(&str, &str)], severity: &[(&str, &str)]) -> Alertmanager {
        let config = SinkConfig {
            url: Some("http://127.0.0.1:1".into()),
            labels: toml_labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            severity: severity
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..SinkConfig::default()
        };
        match Alertmanager::new(&config) {
            Ok(a) => a,
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn an_alert_has_drctls_labels_over_the_sinks_and_severity_per_alarm() {
        let am = sink(&[("team", "cc")], &[("backend-disconnected", "page")]);
        let alert = Alert {
            site: Some("site1".into()),
            starts_at: Some("2026-01-01T00:00:00.000Z".into()),
            ends_at: None,
        };
        let key = ("ann".to_owned(), "backend-disconnected");
        let json = serde_json::to_value(am.postable(&key, &alert, "2026-01-01T00:04:00.000Z"))
            .unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "labels": {"alertname": "backend-disconnected", "agent": "ann", "site": "site1",
                           "severity": "page", "team": "cc"},
                "annotations": {"summary": "drctl alarm backend-disconnected for agent ann on site1"},
                "startsAt": "2026-01-01T00:00:00.000Z",
                "endsAt": "2026-01-01T00:04:00.000Z",
            })
        );
        let key = ("ann".to_owned(), "switchover-failed");
        let cleared = Alert {
            site: None,
            starts_at: None,
            ends_at: Some("2026-01-01T00:01:00.000Z".into()),
        };
        let json = serde_json::to_value(am.postable(&key, &cleared, "later")).unwrap_or_default();
        assert_eq!(json["labels"]["severity"], "critical");
        assert_eq!(json["endsAt"], "2026-01-01T00:01:00.000Z");
        assert!(json.get("startsAt").is_none() && json["labels"].get("site").is_none());
    }
}

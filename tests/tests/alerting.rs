//! Alerting as ops run it (issue 18): the example Prometheus rules and
//! Grafana dashboard are valid and use only metrics a real watcher exports;
//! promtool accepts the rules and their unit tests; the alertmanager sink's
//! alerts fire, resolve and survive an Alertmanager restart in a real
//! Alertmanager.

use drctl_e2e::alerting::{
    alertmanager_bin, dashboard_queries, example, rule_queries, selectors, Alertmanager, Query,
    Scrape,
};
use drctl_e2e::service::{skip, tool_or_skip};
use drctl_e2e::{free_port, read_test_scenario, scrape, strings_at, wait_until, Watcher, PATIENCE};
use std::collections::BTreeSet;
use std::time::Duration;

/// Series Prometheus makes itself when it scrapes, not drctl.
const SYNTHETIC: [&str; 1] = ["up"];

/// Target labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

fn queries() -> Vec<Query> {
    let mut all = rule_queries(&example("prometheus-rules.yml"));
    let rules = all.len();
    all.extend(dashboard_queries(&example("grafana-dashboard.json")));
    assert!(rules >= 5 && all.len() > rules + 10, "{all:#?}");
    all
}

#[test]
fn every_rule_and_dashboard_query_is_promql() {
    let mut bad = Vec::new();
    for q in queries() {
        match selectors(&q.expr) {
            Ok(s) if !s.is_empty() => {}
            Ok(_) => bad.push(format!("{}: selects no metric: {}", q.origin, q.expr)),
            Err(e) => bad.push(format!("{}: {e}: {}", q.origin, q.expr)),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_dashboard_is_importable_grafana_json() {
    let path = example("grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dash["uid"], "drctl");
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let mut ids = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate id: {panel}"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        let mut refs = BTreeSet::new();
        for t in panel["targets"].as_array().unwrap() {
            assert!(
                refs.insert(t["refId"].as_str().unwrap()),
                "duplicate refId: {panel}"
            );
        }
    }
    let vars = strings_at(&dash["templating"]["list"], "name");
    assert_eq!(vars, ["datasource", "agent"]);
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let Some(promtool) = tool_or_skip("promtool", "Debian: apt-get install prometheus") else {
        return;
    };
    for args in [
        ["check", "rules", "prometheus-rules.yml"],
        ["test", "rules", "prometheus-rules.test.yml"],
    ] {
        let out = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(example(""))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
        assert!(
            text.contains("SUCCESS"),
            "promtool {}:\n{text}",
            args.join(" ")
        );
    }
}

#[test]
fn every_metric_the_rules_and_dashboard_use_is_in_a_scrape_of_a_watcher() {
    let port = free_port();
    let w = Watcher::start(
        &read_test_scenario("alerting-exports.toml"),
        &format!("[agent]\nusername = \"ann\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut text = String::new();
    wait_until(
        "a failed switchover in the scrape",
        Duration::from_secs(60),
        || {
            text = scrape(port).unwrap_or_default();
            text.contains("outcome=\"failed\"")
                && text.contains("drctl_switchover_duration_seconds_count")
        },
    );
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, b)| b);
    let scraped = Scrape::parse(body);
    assert!(scraped.samples.len() > 5, "{body}\n{}", w.stderr());
    let mut missing = Vec::new();
    for q in queries() {
        for s in selectors(&q.expr).unwrap() {
            if SYNTHETIC.contains(&s.metric.as_str()) {
                continue;
            }
            if !scraped.has(&s.metric) {
                missing.push(format!("{}: no metric {}", q.origin, s.metric));
                continue;
            }
            let Some(labels) = scraped.samples.get(&s.metric) else {
                continue;
            };
            for (k, v) in &s.equal {
                if TARGET_LABELS.contains(&k.as_str()) {
                    continue;
                }
                match labels.get(k) {
                    None => missing.push(format!("{}: {} has no label {k}", q.origin, s.metric)),
                    Some(values) if !values.contains(v) => missing.push(format!(
                        "{}: {}{{{k}={v:?}}} is not exported (values: {values:?})",
                        q.origin, s.metric
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{}\nscrape:\n{body}",
        missing.join("\n")
    );
}

/// The alert of `alarm` from the sink labelled `sink`, if Alertmanager has it.
fn alert<'a>(
    alerts: &'a [serde_json::Value],
    alarm: &str,
    sink: &str,
) -> Option<&'a serde_json::Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alarm && a["labels"]["sink"] == sink)
}

#[test]
fn alarms_fire_resolve_and_come_back_after_an_alertmanager_restart() {
    let Some(bin) = alertmanager_bin().or_else(|| {
        skip("Alertmanager is not installed (Debian: apt-get install prometheus-alertmanager)")
    }) else {
        return;
    };
    let mut am = Alertmanager::start(&bin);
    // Two sinks to the same Alertmanager, told apart by a label: "fast"
    // resends every second, "slow" every hour (its alerts stay valid 4 h).
    let sink = |name: &str, every: &str| {
        format!(
            "[[alarms.sinks]]\ntype = \"alertmanager\"\nurl = \"{}\"\nresend-interval = \"{every}\"\n\
             labels = {{ sink = \"{name}\", team = \"contact-centre\" }}\n\
             severity = {{ statistic-service-down = \"page\" }}\n",
            am.url()
        )
    };
    let w = Watcher::start(
        &read_test_scenario("alerting-alarms.toml"),
        &format!(
            "[agent]\nusername = \"ann\"\n{}{}",
            sink("fast", "1s"),
            sink("slow", "1h")
        ),
    );
    let context = |am: &Alertmanager, w: &Watcher| {
        format!(
            "alerts: {:#?}\ndrctl:\n{}\nalertmanager:\n{}",
            am.alerts(),
            w.stderr(),
            am.log()
        )
    };

    // Fired: both alarms from both sinks, labelled as configured.
    let mut alerts = Vec::new();
    wait_until("four alerts firing", PATIENCE, || {
        alerts = am.alerts();
        ["fast", "slow"].iter().all(|s| {
            alert(&alerts, "configuration-service-down", s).is_some()
                && alert(&alerts, "statistic-service-down", s).is_some()
        })
    });
    for (alarm, severity) in [
        ("configuration-service-down", "warning"),
        ("statistic-service-down", "page"),
    ] {
        for s in ["fast", "slow"] {
            let a = alert(&alerts, alarm, s).unwrap();
            assert_eq!(
                a["labels"],
                serde_json::json!({"alertname": alarm, "agent": "ann", "site": "site1",
                    "severity": severity, "sink": s, "team": "contact-centre"}),
                "{a:#}"
            );
            assert_eq!(a["status"]["state"], "active", "{a:#}");
            assert!(a["startsAt"].as_str().is_some(), "{a:#}");
        }
    }
    let started = alert(&alerts, "statistic-service-down", "fast").unwrap()["startsAt"].clone();

    // Resolved: the slow sink's alert too, which would stay valid for 4 h
    // had the clear not sent its endsAt.
    wait_until(
        "configuration-service-down to resolve",
        Duration::from_secs(60),
        || {
            let alerts = am.alerts();
            ["fast", "slow"]
                .iter()
                .all(|s| alert(&alerts, "configuration-service-down", s).is_none())
        },
    );
    let alerts = am.alerts();
    for s in ["fast", "slow"] {
        assert!(
            alert(&alerts, "statistic-service-down", s).is_some(),
            "{}",
            context(&am, &w)
        );
    }

    // A restarted Alertmanager knows nothing; the fast sink's resends bring
    // back what is still up, as it was raised.
    am.restart();
    wait_until("statistic-service-down to be resent", PATIENCE, || {
        alert(&am.alerts(), "statistic-service-down", "fast").is_some()
    });
    let alerts = am.alerts();
    let back = alert(&alerts, "statistic-service-down", "fast").unwrap();
    assert_eq!(back["startsAt"], started, "{back:#}");
    assert_eq!(back["status"]["state"], "active", "{back:#}");
    assert!(
        alert(&alerts, "statistic-service-down", "slow").is_none(),
        "the slow sink resends only hourly: {alerts:#?}"
    );
    assert!(
        alert(&alerts, "configuration-service-down", "fast").is_none(),
        "a resolved alarm is not resent as firing: {alerts:#?}"
    );

    // A watcher that stops (or dies) says nothing more: its alerts expire
    // on their own (four resend intervals).
    let (ran, _dir) = w.stop();
    assert!(ran.success(), "{}", ran.all());
    assert!(
        ran.stdout.contains("\"alarm-cleared\"")
            && ran.stdout.contains("configuration-service-down"),
        "{}",
        ran.all()
    );
    wait_until(
        "the dead watcher's alert to expire",
        Duration::from_secs(60),
        || alert(&am.alerts(), "statistic-service-down", "fast").is_none(),
    );
}

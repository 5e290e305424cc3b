//! `type = "alertmanager"` sinks: defaults, and refusals naming the key.

use std::time::Duration;

use drctl_config::{Config, LoadOptions, SinkKind};

/// Two sites, the least a valid config has.
const SITES: &str = "[[sites]]\nname = \"site1\"\ncs-proxy = \"a:7000\"\napp-name = \"A\"\n\
                     [[sites]]\nname = \"site2\"\ncs-proxy = \"b:7000\"\napp-name = \"B\"\n";

/// Loads a config file holding [`SITES`] and `text`, with no other layer.
fn load(text: &str) -> Result<Config, drctl_config::ConfigError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("drctl.toml");
    std::fs::write(&path, format!("{SITES}{text}")).expect("write drctl.toml");
    Config::load(&LoadOptions::isolated(Some(path)))
}

const SINK: &str = "[[alarms.sinks]]\ntype = \"alertmanager\"\n";

/// Asserts that `extra` after an alertmanager sink is refused on `key`, saying `expected`.
fn refused(extra: &str, key: &str, expected: &str) {
    let err = load(&format!("{SINK}{extra}")).expect_err("must be refused");
    let text = err.to_string();
    assert_eq!(err.key(), Some(key), "{text}");
    assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    assert!(text.contains("drctl.toml"), "{text:?} names no file");
}

#[test]
fn an_alertmanager_sink_takes_a_url_and_defaults_to_a_one_minute_resend() {
    let cfg = load(&format!("{SINK}url = \"http://am:9093\"\n")).expect("valid");
    let sink = &cfg.alarms.sinks[0];
    assert_eq!(sink.kind, SinkKind::Alertmanager);
    assert_eq!(sink.resend_interval, Duration::from_secs(60));
    assert!(sink.labels.is_empty() && sink.severity.is_empty());
    let cfg = load(&format!(
        "{SINK}url = \"https://am\"\nresend-interval = \"30s\"\n\
         labels = {{ team = \"cc\", env_2 = \"prod\" }}\n\
         severity = {{ backend-disconnected = \"critical\" }}\n"
    ))
    .expect("valid");
    let sink = &cfg.alarms.sinks[0];
    assert_eq!(sink.resend_interval, Duration::from_secs(30));
    assert_eq!(sink.labels.get("team").map(String::as_str), Some("cc"));
    assert_eq!(
        sink.severity
            .get("backend-disconnected")
            .map(String::as_str),
        Some("critical")
    );
}

#[test]
fn a_bad_alertmanager_sink_is_refused_naming_the_key() {
    refused("", "alarms.sinks[0].url", "needs the Alertmanager's url");
    refused(
        "url = \"am:9093\"\n",
        "alarms.sinks[0].url",
        "http:// or https://",
    );
    let url = "url = \"http://am:9093\"\n";
    refused(
        &format!("{url}resend-interval = \"0s\"\n"),
        "alarms.sinks[0].resend-interval",
        "expected 1s to 1h",
    );
    refused(
        &format!("{url}resend-interval = \"2h\"\n"),
        "alarms.sinks[0].resend-interval",
        "expected 1s to 1h",
    );
    refused(
        &format!("{url}labels = {{ \"team-a\" = \"x\" }}\n"),
        "alarms.sinks[0].labels.team-a",
        "Prometheus label name",
    );
    refused(
        &format!("{url}labels = {{ __meta = \"x\" }}\n"),
        "alarms.sinks[0].labels.__meta",
        "Prometheus label name",
    );
    refused(
        &format!("{url}labels = {{ severity = \"x\" }}\n"),
        "alarms.sinks[0].labels.severity",
        "drctl sets severity itself",
    );
    refused(
        &format!("{url}labels = {{ team = \"\" }}\n"),
        "alarms.sinks[0].labels.team",
        "empty",
    );
    refused(
        &format!("{url}severity = {{ telephony-down = \"critical\" }}\n"),
        "alarms.sinks[0].severity.telephony-down",
        "unknown alarm: expected one of telephony-service-down",
    );
    refused(
        &format!("{url}severity = {{ switchover-failed = \" \" }}\n"),
        "alarms.sinks[0].severity.switchover-failed",
        "empty",
    );
}

#[test]
fn labels_and_severity_belong_to_alertmanager_sinks_only() {
    let err = load(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"http://h\"\nlabels = { team = \"cc\" }\n",
    )
    .expect_err("must be refused");
    assert_eq!(err.key(), Some("alarms.sinks[0].labels"), "{err}");
    assert!(
        err.to_string().contains("only for type = \"alertmanager\""),
        "{err}"
    );
}

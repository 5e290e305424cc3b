//! Layering, validation errors, origins and redaction of `drctl-config`.

// `figment::Jail` closures must return `figment::Result`, whose error is large.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::time::Duration;

use drctl_config::{Config, ConfigError, FailbackMode, LoadOptions, Origin};
use figment::Jail;

/// A valid configuration for two sites (line 1 is a comment, so keys keep
/// their line numbers).
const BASE: &str = include_str!("two-sites.toml");

/// Options with the standard layers, the system file moved into the jail.
fn jail_options(jail: &Jail) -> LoadOptions {
    LoadOptions {
        system_file: Some(jail.directory().join("etc-drctl.toml")),
        ..LoadOptions::default()
    }
}

/// Loads `./drctl.toml` = `text` in the jail.
fn load_text(jail: &Jail, text: &str) -> Result<Config, ConfigError> {
    jail.create_file("drctl.toml", text).expect("jail file");
    Config::load(&jail_options(jail))
}

/// Loads `./drctl.toml` = BASE + `extra` in the jail.
fn try_load(jail: &Jail, extra: &str) -> Result<Config, ConfigError> {
    load_text(jail, &format!("{BASE}{extra}"))
}

/// Like [`try_load`], for `?` in a jail.
fn load_with(jail: &Jail, extra: &str) -> figment::Result<Config> {
    try_load(jail, extra).map_err(|e| e.to_string().into())
}

/// Loads BASE with `--set key=value` in the jail: the error it is refused
/// with, as text.
fn set_error(jail: &Jail, key: &str, value: &str) -> String {
    jail.create_file("drctl.toml", BASE).expect("jail file");
    let mut opts = jail_options(jail);
    opts.overrides = vec![(key.into(), value.into())];
    let err = Config::load(&opts).expect_err("the --set must be refused");
    err.to_string()
}

/// Asserts that loading BASE + `extra` fails on `key`, with `expected` in the message.
fn expect_invalid(extra: &str, key: &str, expected: &str) {
    expect_invalid_text(&format!("{BASE}{extra}"), key, expected);
}

/// Asserts that loading `text` as `drctl.toml` fails on `key`, naming the
/// file, with `expected` in the message.
fn expect_invalid_text(text: &str, key: &str, expected: &str) {
    Jail::expect_with(|jail| {
        let err = load_text(jail, text).expect_err("config must be rejected");
        assert_refused(&err, key, expected);
        let text = err.to_string();
        assert!(
            text.starts_with("drctl.toml"),
            "{text:?} does not name the file"
        );
        Ok(())
    });
}

/// Asserts `err` names `key` and says `says`.
fn assert_refused(err: &ConfigError, key: &str, says: &str) {
    let text = err.to_string();
    assert_eq!(err.key(), Some(key), "{text}");
    assert!(text.contains(says), "{text:?} lacks {says:?}");
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/drctl.toml")
}

#[test]
fn the_example_is_valid_and_complete() {
    let config = Config::load(&LoadOptions::isolated(Some(example()))).expect("example loads");
    config.validate_agent().expect("example has agent settings");
    // The shipped unit's password source (config/examples/drctl.service).
    assert_eq!(
        config.agent.password_credential.as_deref(),
        Some("password")
    );
    assert_eq!(config.first_site().map(|s| s.name.as_str()), Some("site1"));
    assert_eq!(config.files(), &[example()]);
    // Every key the schema can show appears in the example (set or commented out).
    let text = std::fs::read_to_string(example()).expect("example readable");
    let mut full = config.clone();
    full.agent.password_file = Some("/x".into());
    full.agent.password_env = Some("X".into());
    full.startup.cache_file = Some("/x".into());
    full.policy.site_timeout = Some(Duration::from_secs(1));
    full.policy.site_sip_register_timeout = Some(Duration::from_secs(1));
    full.control.socket = Some("/x".into());
    full.agents = vec![config.agent.clone()];
    full.metrics.listen = Some("127.0.0.1:1".into());
    full.alarms.sinks = vec![drctl_config::SinkConfig {
        url: Some("http://x".into()),
        command: vec!["x".into()],
        ..Default::default()
    }];
    full.switch.gates = vec![drctl_config::GateConfig {
        name: "g".into(),
        exec: vec!["x".into()],
        http: Some("http://x".into()),
        ..Default::default()
    }];
    for line in full.origins() {
        let leaf = line.key.rsplit(['.', ']']).next().unwrap_or_default();
        assert!(
            text.contains(&format!("{leaf} =")),
            "example lacks {}",
            line.key
        );
    }
}

#[test]
fn defaults_follow_the_seed() {
    Jail::expect_with(|jail| {
        let config = load_with(jail, "")?;
        assert_eq!(config.startup.timeout, Duration::from_secs(300));
        assert_eq!(config.startup.backoff.initial, Duration::from_secs(1));
        assert_eq!(config.startup.backoff.factor, 2.0);
        assert_eq!(config.startup.backoff.max, Duration::from_secs(60));
        assert_eq!(config.startup.backoff.jitter, 0.2);
        assert_eq!(config.policy.site_timeout, None);
        assert_eq!(config.policy.failback, FailbackMode::Manual);
        assert_eq!(config.policy.failback_after, Duration::from_secs(600));
        assert_eq!(
            config.policy.supervisor_logout_reasons,
            ["supervisor_forced_logout"]
        );
        assert_eq!(config.backend.name, "mock");
        assert_eq!(config.genesys.person_annex_section, "dr");
        assert_eq!(config.first_site().map(|s| s.name.as_str()), Some("site1"));
        Ok(())
    });
}

#[test]
fn layers_override_in_order_files_env_set() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "etc-drctl.toml",
            &format!("{BASE}\n[policy]\nhold-down = \"1s\"\nseed = 1\nswitchover-jitter = \"1s\"\nfailback-after = \"1m\"\n"),
        )?;
        jail.create_dir("xdg/drctl")?;
        jail.set_env("XDG_CONFIG_HOME", jail.directory().join("xdg").display());
        jail.create_file(
            "xdg/drctl/drctl.toml",
            "[policy]\nhold-down = \"2s\"\nseed = 2\nswitchover-jitter = \"2s\"\n",
        )?;
        jail.create_file("drctl.toml", "[policy]\nhold-down = \"3s\"\nseed = 3\n")?;
        jail.set_env("DRCTL_POLICY__HOLD_DOWN", "4s");
        let mut opts = jail_options(jail);
        opts.overrides = vec![("policy.hold-down".into(), "5s".into())];
        let config = Config::load(&opts).map_err(|e| e.to_string())?;
        let p = &config.policy;
        assert_eq!(p.failback_after, Duration::from_secs(60), "system file");
        assert_eq!(p.switchover_jitter, Duration::from_secs(2), "user file");
        assert_eq!(p.seed, 3, "./drctl.toml");
        assert_eq!(p.hold_down, Duration::from_secs(5), "--set beats env");
        assert_eq!(config.files().len(), 3);

        opts.overrides.clear();
        let config = Config::load(&opts).map_err(|e| e.to_string())?;
        assert_eq!(
            config.policy.hold_down,
            Duration::from_secs(4),
            "env beats files"
        );
        Ok(())
    });
}

#[test]
fn config_flag_replaces_local_file_and_must_exist() {
    Jail::expect_with(|jail| {
        jail.create_file("drctl.toml", &format!("{BASE}\n[policy]\nseed = 3\n"))?;
        jail.create_file(
            "other.toml",
            &format!("{BASE}\n[policy]\nhold-down = \"9s\"\n"),
        )?;
        let mut opts = jail_options(jail);
        opts.config_file = Some("other.toml".into());
        let config = Config::load(&opts).map_err(|e| e.to_string())?;
        assert_eq!(config.policy.seed, 0, "./drctl.toml is not read");
        assert_eq!(config.policy.hold_down, Duration::from_secs(9));

        opts.config_file = Some("missing.toml".into());
        let err = Config::load(&opts).expect_err("missing --config file");
        assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
        assert_eq!(err.to_string(), "missing.toml: config file not found");
        Ok(())
    });
}

#[test]
fn env_keys_use_double_underscore_and_dashes() {
    Jail::expect_with(|jail| {
        jail.set_env("DRCTL_POLICY__SITE_TIMEOUT", "10s");
        jail.set_env("DRCTL_POLICY__SITE_SIP_REGISTER_TIMEOUT", "0s");
        jail.set_env("DRCTL_AGENT__DN", "007");
        jail.set_env("DRCTL_BACKEND__MOCK__SPEED", "2");
        // Not config keys: no "__".
        jail.set_env("DRCTL_AGENT_PASSWORD", "x");
        jail.set_env("DRCTL_LOG", "debug");
        let config = load_with(jail, "")?;
        assert_eq!(config.policy.site_timeout, Some(Duration::from_secs(10)));
        assert_eq!(
            config.policy.site_sip_register_timeout,
            Some(Duration::ZERO)
        );
        assert_eq!(
            config.agent.dn.as_deref(),
            Some("007"),
            "strings are not parsed"
        );
        assert_eq!(
            config.backend.table_json("mock"),
            serde_json::json!({ "speed": 2 })
        );
        Ok(())
    });
}

#[test]
fn set_values_parse_as_toml_else_string() {
    Jail::expect_with(|jail| {
        jail.create_file("drctl.toml", BASE)?;
        let mut opts = jail_options(jail);
        opts.overrides = vec![
            ("policy.seed".into(), "42".into()),
            ("policy.failback".into(), "auto".into()),
            (
                "policy.supervisor-logout-reasons".into(),
                "[\"a\", \"b\"]".into(),
            ),
            ("agent.dn".into(), "0x10".into()),
            ("startup.backoff.factor".into(), "3".into()),
        ];
        let config = Config::load(&opts).map_err(|e| e.to_string())?;
        assert_eq!(config.policy.seed, 42);
        assert_eq!(config.policy.failback, FailbackMode::Auto);
        assert_eq!(config.policy.supervisor_logout_reasons, ["a", "b"]);
        assert_eq!(config.startup.backoff.factor, 3.0);
        assert_eq!(
            config.agent.dn.as_deref(),
            Some("0x10"),
            "strings stay strings"
        );

        let err = set_error(jail, "policy..x", "1");
        assert!(err.starts_with("--set: policy..x: not a key"), "{err}");
        Ok(())
    });
}

#[test]
fn extraction_errors_name_file_line_key_and_expectation() {
    Jail::expect_with(|jail| {
        let err = try_load(jail, "\n[policy]\nsite-timeout = \"3x\"\n").expect_err("bad duration");
        assert_eq!(
            err.to_string(),
            "drctl.toml:18: policy.site-timeout: invalid value \"3x\": expected a duration like \"30s\" or \"2m\""
        );
        match err {
            ConfigError::Invalid {
                origin: Origin::File { path, line },
                ..
            } => {
                assert_eq!(path, PathBuf::from("drctl.toml"));
                assert_eq!(line, Some(18));
            }
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn wrong_duration() {
    expect_invalid(
        "[startup]\ntimeout = 5\n",
        "startup.timeout",
        "invalid value 5: expected a duration like \"30s\"",
    );
    expect_invalid(
        "[startup]\nbackoff = { initial = \"soon\" }\n",
        "startup.backoff.initial",
        "expected a duration",
    );
}

#[test]
fn unknown_keys() {
    expect_invalid(
        "[policy]\nsite-timout = \"1s\"\n",
        "policy.site-timout",
        "unknown key: expected one of: site-timeout",
    );
    expect_invalid(
        "[polcy]\nx = 1\n",
        "polcy",
        "unknown key: expected one of: agent, agents, sites",
    );
    expect_invalid(
        "[[sites]]\nname = \"s3\"\ncs-proxy = \"h:1\"\napp-name = \"a\"\nport = 1\n",
        "sites[2].port",
        "unknown key",
    );
    expect_invalid(
        "[backend]\nplugin-dir = \"x\"\n",
        "backend.plugin-dir",
        "expected one of: name, plugin-dirs, command-timeout, or a [backend.<plugin>] table",
    );
}

#[test]
fn unknown_enum_value() {
    expect_invalid(
        "[policy]\nfailback = \"sometimes\"\n",
        "policy.failback",
        "invalid value \"sometimes\": expected one of: manual, auto",
    );
}

#[test]
fn first_site_must_be_a_site() {
    expect_invalid(
        "[startup]\nfirst-site = \"site3\"\n",
        "startup.first-site",
        "drctl.toml:17: startup.first-site: invalid value \"site3\": expected one of: site1, site2",
    );
}

#[test]
fn sites_exactly_two_distinct_with_ports() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "drctl.toml",
            "[[sites]]\nname = \"a\"\ncs-proxy = \"h:1\"\napp-name = \"x\"\n",
        )?;
        let err = Config::load(&jail_options(jail)).expect_err("one site");
        assert_refused(
            &err,
            "sites",
            "expected exactly two [[sites]] tables, found 1",
        );
        Ok(())
    });
    for (proxy, ok) in [
        ("h:7000", true),
        ("[::1]:7000", true),
        ("h", false),
        ("h:0", false),
        ("h:70000", false),
        (":7000", false),
    ] {
        let body = BASE.replace("csproxy-b:7000", proxy);
        Jail::expect_with(|jail| {
            let result = load_text(jail, &body);
            assert_eq!(result.is_ok(), ok, "{proxy}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.key(), Some("sites[1].cs-proxy"));
                assert!(e
                    .to_string()
                    .contains("expected host:port with a port in 1..65535"));
                assert!(e.to_string().starts_with("drctl.toml:14:"), "{e}");
            }
            Ok(())
        });
    }
    let dup = BASE.replacen("name = \"site2\"", "name = \"site1\"", 1);
    expect_invalid_text(&dup, "sites[1].name", "expected two distinct names");
    expect_invalid("[[sites]]\nname = \"s3\"\n", "sites[2].cs-proxy", "missing");
}

#[test]
fn backoff_ranges() {
    expect_invalid(
        "[startup.backoff]\ninitial = \"0s\"\n",
        "startup.backoff.initial",
        "expected a duration > 0",
    );
    expect_invalid(
        "[startup.backoff]\nfactor = 0.5\n",
        "startup.backoff.factor",
        "expected a number >= 1",
    );
    expect_invalid(
        "[startup.backoff]\ninitial = \"2m\"\n",
        "startup.backoff.max",
        "expected a duration >= startup.backoff.initial",
    );
    expect_invalid(
        "[startup.backoff]\njitter = 1.0\n",
        "startup.backoff.jitter",
        "expected a number in [0, 1)",
    );
    expect_invalid(
        "[startup.backoff]\njitter = -0.1\n",
        "startup.backoff.jitter",
        "expected a number in [0, 1)",
    );
}

#[test]
fn cache_forbidden_with_hot_seating() {
    let body = BASE.replace("dn = \"7001\"", "dn = \"7001\"\nhot-seating = true");
    expect_invalid_text(
        &format!("{body}\n[startup]\ncache-preferred = true\n"),
        "startup.cache-preferred",
        "must be false when agent.hot-seating = true",
    );
}

#[test]
fn failback_auto_needs_a_delay() {
    expect_invalid(
        "[policy]\nfailback = \"auto\"\nfailback-after = \"0s\"\n",
        "policy.failback-after",
        "expected a duration > 0 when policy.failback = \"auto\"",
    );
}

#[test]
fn password_sources() {
    // Two sources conflict.
    expect_invalid_text(
        &BASE.replace("dn = ", "password = \"p\"\ndn = "),
        "agent.password",
        "conflicting password sources",
    );
    // None at all: an error for real runs, on agent.password-env, in the file.
    Jail::expect_with(|jail| {
        let body = BASE.replace("password-env = \"DRCTL_AGENT_PASSWORD\"\n", "");
        let config = load_text(jail, &body).map_err(|e| e.to_string())?;
        let err = config.validate_agent().expect_err("no password source");
        assert_eq!(err.key(), Some("agent.password-env"));
        assert!(
            err.to_string()
                .starts_with("drctl.toml:2: agent.password-env: missing password source"),
            "{err}"
        );
        assert!(config.resolve_password().is_err());
        Ok(())
    });
    // Username is required for real runs.
    Jail::expect_with(|jail| {
        let body = BASE.replace("username = \"agent007\"\n", "");
        let config = load_text(jail, &body).map_err(|e| e.to_string())?;
        let err = config.validate_agent().expect_err("no username");
        assert_eq!(err.key(), Some("agent.username"));
        Ok(())
    });
}

#[test]
fn resolve_password_from_env_and_file() {
    Jail::expect_with(|jail| {
        let config = load_with(jail, "")?;
        let err = config.resolve_password().expect_err("unset");
        assert!(
            err.to_string()
                .contains("environment variable DRCTL_AGENT_PASSWORD is not set"),
            "{err}"
        );
        jail.set_env("DRCTL_AGENT_PASSWORD", "s3cret");
        assert_eq!(
            config
                .resolve_password()
                .map_err(|e| e.to_string())?
                .expose(),
            "s3cret"
        );

        let file = jail.directory().join("pw");
        std::fs::write(&file, "filepw\n").map_err(|e| e.to_string())?;
        let body = BASE.replace(
            "password-env = \"DRCTL_AGENT_PASSWORD\"",
            &format!("password-file = {:?}", file.display().to_string()),
        );
        let config = load_text(jail, &body).map_err(|e| e.to_string())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
            let err = config.resolve_password().expect_err("world-readable");
            assert_refused(
                &err,
                "agent.password-file",
                "readable by group or others (mode 644)",
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        assert_eq!(
            config
                .resolve_password()
                .map_err(|e| e.to_string())?
                .expose(),
            "filepw"
        );
        Ok(())
    });
}

#[test]
fn env_and_set_errors_name_their_origin() {
    Jail::expect_with(|jail| {
        jail.set_env("DRCTL_POLICY__HOLD_DOWN", "soon");
        let err = try_load(jail, "").expect_err("bad env");
        assert_eq!(
            err.to_string(),
            "env DRCTL_POLICY__HOLD_DOWN: policy.hold-down: invalid value \"soon\": expected a duration like \"30s\" or \"2m\""
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        assert_eq!(
            set_error(jail, "startup.first-site", "nowhere"),
            "--set: startup.first-site: invalid value \"nowhere\": expected one of: site1, site2"
        );
        Ok(())
    });
}

#[test]
fn syntax_errors_name_file_and_line() {
    Jail::expect_with(|jail| {
        let err = try_load(jail, "[policy\n").expect_err("bad TOML");
        let text = err.to_string();
        assert!(text.starts_with("drctl.toml: line 16, column"), "{text}");
        assert!(text.contains("invalid TOML"), "{text}");
        Ok(())
    });
}

#[test]
fn origins_come_from_figment_metadata() {
    Jail::expect_with(|jail| {
        jail.set_env("DRCTL_POLICY__SITE_TIMEOUT", "10s");
        jail.create_file("drctl.toml", BASE)?;
        let mut opts = jail_options(jail);
        opts.overrides = vec![("policy.seed".into(), "7".into())];
        let config = Config::load(&opts).map_err(|e| e.to_string())?;
        let lines = config.origins();
        let find = |key: &str| {
            lines
                .iter()
                .find(|l| l.key == key)
                .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
        };
        assert_eq!(
            find("policy.site-timeout").origin,
            Origin::Env {
                var: "DRCTL_POLICY__SITE_TIMEOUT".into()
            }
        );
        assert_eq!(find("policy.site-timeout").value, "\"10s\"");
        assert_eq!(find("policy.seed").origin, Origin::CommandLine);
        assert_eq!(
            find("sites[1].cs-proxy").origin,
            Origin::File {
                path: "drctl.toml".into(),
                line: Some(14)
            }
        );
        assert_eq!(find("policy.hold-down").origin, Origin::Default);
        let listing = config.origin_listing();
        assert!(
            listing.contains("# env DRCTL_POLICY__SITE_TIMEOUT"),
            "{listing}"
        );
        assert!(listing.contains("# drctl.toml:3"), "{listing}");
        Ok(())
    });
}

#[test]
fn secrets_never_show() {
    const PASSWORD: &str = "hunter2-do-not-print";
    Jail::expect_with(|jail| {
        jail.set_env("DRCTL_AGENT__PASSWORD", PASSWORD);
        let body = BASE.replace("password-env = \"DRCTL_AGENT_PASSWORD\"\n", "");
        jail.create_file(
            "drctl.toml",
            &format!("{body}\n[backend.ail-bridge]\npassword = \"{PASSWORD}\"\napi-token = \"{PASSWORD}\"\npassword-env = \"X\"\n"),
        )?;
        let config = Config::load(&jail_options(jail)).map_err(|e| e.to_string())?;
        assert_eq!(
            config
                .resolve_password()
                .map_err(|e| e.to_string())?
                .expose(),
            PASSWORD
        );
        let shown = [
            config.redacted_toml(),
            config.origin_listing(),
            format!("{config:?}"),
            format!("{:?}", config.agent),
            config.warnings().join("\n"),
        ];
        for text in shown {
            assert!(!text.contains(PASSWORD), "leaked in {text}");
        }
        assert!(config.redacted_toml().contains("password = \"<redacted>\""));
        assert!(config.origin_listing().contains("password-env = \"X\""));
        // The plugin itself gets the real value.
        assert_eq!(
            config.backend.table_json("ail-bridge")["password"],
            PASSWORD
        );
        Ok(())
    });
}

#[test]
fn redacted_toml_loads_back() {
    Jail::expect_with(|jail| {
        let config = load_with(jail, "[policy]\nsite-timeout = \"90s\"\n")?;
        let shown = config.redacted_toml();
        jail.create_file("shown.toml", &shown)?;
        let again = Config::load(&LoadOptions::isolated(Some("shown.toml".into())))
            .map_err(|e| format!("{e}\n{shown}"))?;
        assert_eq!(again, config);
        Ok(())
    });
}

#[test]
fn a_recordings_config_reloads_with_overrides_and_without_the_password() {
    Jail::expect_with(|jail| {
        let cfg = load_with(jail, "[policy]\nsite-timeout = \"30s\"\n")?;
        let mut with_password = cfg.clone();
        with_password.agent.password = Some(drctl_config::Secret::new("hunter2-known"));
        let recorded = with_password.recordable();
        assert!(
            !recorded.to_string().contains("hunter2-known"),
            "{recorded}"
        );
        let same = Config::from_recording(&recorded, &[]).map_err(|e| e.to_string())?;
        assert_eq!(same.policy, cfg.policy);
        assert_eq!(same.sites, cfg.sites);
        let what_if =
            Config::from_recording(&recorded, &[("policy.site-timeout".into(), "10s".into())])
                .map_err(|e| e.to_string())?;
        assert_eq!(what_if.policy.site_timeout, Some(Duration::from_secs(10)));
        let bad =
            Config::from_recording(&recorded, &[("policy.site-timeout".into(), "soon".into())])
                .expect_err("a bad duration is refused");
        assert_eq!(bad.key(), Some("policy.site-timeout"), "{bad}");
        Ok(())
    });
}

#[test]
fn alarm_sinks_and_metrics_are_checked() {
    expect_invalid(
        "[[alarms.sinks]]\ntype = \"webhook\"\n",
        "alarms.sinks[0].url",
        "needs a url",
    );
    expect_invalid(
        "[[alarms.sinks]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
        "alarms.sinks[0].url",
        "http:// or https://",
    );
    expect_invalid(
        "[[alarms.sinks]]\ntype = \"exec\"\n",
        "alarms.sinks[0].command",
        "needs a command",
    );
    expect_invalid(
        "[metrics]\nlisten = \"localhost\"\n",
        "metrics.listen",
        "expected ip:port",
    );
    Jail::expect_with(|jail| {
        let cfg = load_with(
            jail,
            "[[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\ntimeout = \"2s\"\n",
        )?;
        assert_eq!(cfg.alarms.sinks[0].kind, drctl_config::SinkKind::Exec);
        assert_eq!(cfg.alarms.sinks[0].timeout, Duration::from_secs(2));
        assert_eq!(cfg.alarms.sinks[0].retries, 3);
        Ok(())
    });
}

#[test]
fn password_credential_reads_the_systemd_credential() {
    // The shipped unit's source: LoadCredential=password:FILE and
    // agent.password-credential = "password".
    Jail::expect_with(|jail| {
        let creds = jail.directory().join("credentials");
        std::fs::create_dir(&creds).map_err(|e| e.to_string())?;
        std::fs::write(creds.join("password"), "credpw\n").map_err(|e| e.to_string())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // What stat shows of systemd's 0400 file with an ACL for the service's user.
            std::fs::set_permissions(
                creds.join("password"),
                std::fs::Permissions::from_mode(0o440),
            )
            .map_err(|e| e.to_string())?;
        }
        let body = BASE.replace(
            "password-env = \"DRCTL_AGENT_PASSWORD\"",
            "password-credential = \"password\"",
        );
        jail.create_file("drctl.toml", &body)?;
        let config = Config::load(&jail_options(jail)).map_err(|e| e.to_string())?;
        config.validate_agent().map_err(|e| e.to_string())?;
        let err = config.resolve_password().expect_err("not under systemd");
        assert_refused(
            &err,
            "agent.password-credential",
            "$CREDENTIALS_DIRECTORY is not set",
        );
        jail.set_env("CREDENTIALS_DIRECTORY", creds.display());
        assert_eq!(
            config
                .resolve_password()
                .map_err(|e| e.to_string())?
                .expose(),
            "credpw"
        );
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());

        // One source only; a name, not a path.
        jail.create_file(
            "drctl.toml",
            &BASE.replace("dn = ", "password-credential = \"password\"\ndn = "),
        )?;
        let err = Config::load(&jail_options(jail)).expect_err("two sources");
        assert_refused(
            &err,
            "agent.password-credential",
            "conflicting password sources",
        );
        let body = BASE.replace(
            "password-env = \"DRCTL_AGENT_PASSWORD\"",
            "password-credential = \"../password\"",
        );
        jail.create_file("drctl.toml", &body)?;
        let err = Config::load(&jail_options(jail)).expect_err("a path");
        assert!(
            err.to_string().contains("expected a credential name"),
            "{err}"
        );
        Ok(())
    });
}

/// E2: `policy.failback-probe-interval` defaults to 10 s, and must be > 0
/// with automatic failback (a zero interval would probe in a tight loop).
#[test]
fn failback_probe_interval_defaults_and_range() {
    Jail::expect_with(|jail| {
        let config = load_with(jail, "")?;
        assert_eq!(
            config.policy.failback_probe_interval,
            Duration::from_secs(10)
        );
        let config = load_with(jail, "[policy]\nfailback-probe-interval = \"3s\"\n")?;
        assert_eq!(
            config.policy.failback_probe_interval,
            Duration::from_secs(3)
        );
        Ok(())
    });
    expect_invalid(
        "[policy]\nfailback = \"auto\"\nfailback-probe-interval = \"0s\"\n",
        "policy.failback-probe-interval",
        "expected a duration > 0 when policy.failback = \"auto\"",
    );
}

/// W5: `agent.login` is off by default, takes its queue, work mode and
/// reasons, and needs the agent's DN (for `[agent]` and each `[[agents]]`).
#[test]
fn agent_login_keys_and_their_dn() {
    Jail::expect_with(|jail| {
        let config = load_with(jail, "")?;
        assert!(!config.agent.login);
        let body = BASE.replace(
            "dn = \"7001\"",
            "dn = \"7001\"\nlogin = true\nlogin-queue = \"8001\"\nlogin-workmode = \"AutoIn\"\n\
             login-reasons = { why = \"dr\" }",
        );
        jail.create_file("drctl.toml", &body)?;
        let config = Config::load(&jail_options(jail)).map_err(|e| e.to_string())?;
        assert!(config.agent.login);
        assert_eq!(config.agent.login_queue.as_deref(), Some("8001"));
        assert_eq!(config.agent.login_workmode.as_deref(), Some("AutoIn"));
        assert_eq!(config.agent.login_reasons["why"], "dr");
        let body = BASE.replace("dn = \"7001\"", "login = true");
        jail.create_file("drctl.toml", &body)?;
        let err = Config::load(&jail_options(jail)).expect_err("W5 without a DN");
        assert_refused(&err, "agent.login", "needs the agent's DN");
        jail.create_file(
            "drctl.toml",
            &format!("{BASE}\n[[agents]]\nusername = \"ann\"\nlogin = true\n"),
        )?;
        let err = Config::load(&jail_options(jail)).expect_err("W5 in a fleet without a DN");
        assert_eq!(err.key(), Some("agents[0].login"));
        Ok(())
    });
}

#[test]
fn switch_gates_are_checked() {
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\n",
        "switch.gates[0].exec",
        "missing: a gate needs exec",
    );
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\nexec = [\"/bin/true\"]\nhttp = \"http://x\"\n",
        "switch.gates[0].http",
        "either exec or http, not both",
    );
    expect_invalid(
        "[[switch.gates]]\nexec = [\"/bin/true\"]\n",
        "switch.gates[0].name",
        "every gate needs a name",
    );
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\nexec = [\"/bin/true\"]\n[[switch.gates]]\nname = \"g\"\nhttp = \"https://x\"\n",
        "switch.gates[1].name",
        "appears twice",
    );
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\nhttp = \"ftp://x\"\n",
        "switch.gates[0].http",
        "expected an http:// or https:// URL",
    );
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\nexec = [\"/bin/true\"]\ntimeout = \"11m\"\n",
        "switch.gates[0].timeout",
        "at most 10m",
    );
    expect_invalid(
        "[[switch.gates]]\nname = \"g\"\nexec = [\"/bin/true\"]\napplies-to = [\"startup-relocate\"]\n",
        "switch.gates[0].applies-to",
        "startup-relocate is never gated",
    );
    Jail::expect_with(|jail| {
        let c = load_with(
            jail,
            "[[switch.gates]]\nname = \"wfm\"\nhttp = \"https://u:p@wfm/ok?token=t\"\n",
        )?;
        let g = &c.switch.gates[0];
        assert_eq!(g.timeout, Duration::from_secs(10));
        let names: Vec<_> = g.applies_to.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["operator", "failback"]);
        // Shown redacted, sent whole.
        let shown = serde_json::to_string(&c.recordable()).unwrap();
        assert!(
            !shown.contains("token=t") && !shown.contains("u:p"),
            "{shown}"
        );
        Ok(())
    });
}

//! The scenario format as ops meet it (issue 16, item 9): an event past the
//! end warns, the mock's built-in sites and relative paths behave the same
//! however the scenario is given, demo.toml says what it does, and the
//! README documents every key the parser takes.

use drctl_e2e::{repo, Drctl, TestDir};

#[test]
fn an_event_after_the_end_is_a_warning() {
    let dir = TestDir::new();
    let f = dir.file(
        "late.toml",
        "[deployment]\npreferred-site = \"site1\"\nend = \"1m\"\n\n\
         [[events]]\nat = \"90s\"\nsite = \"site1\"\nset = { telephony = \"off\" }\n",
    );
    let out = Drctl::watch(&f).virtual_to_end().run_in(dir.path());
    let err = &out.stderr;
    assert!(out.success(), "{err}");
    let warning = format!(
        "{f}:5:1: events.at: 1m 30s is after deployment.end (1m): \
         a run to the end (--until-end, simulate) never plays this event"
    );
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("WARN") && l.contains(&warning)),
        "{err}"
    );
}

#[test]
fn a_scenario_from_the_config_gets_the_built_in_sites_and_a_path_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::copy(
        repo().join("plugins/mock/scenarios/demo.toml"),
        dir.path().join("demo.toml"),
    )
    .unwrap();
    // No [[sites]], a relative scenario path: next to the config file.
    let cfg = etc.join("drctl.toml");
    std::fs::write(&cfg, "[backend.mock]\nscenario = \"../demo.toml\"\n").unwrap();
    let run = |cmd: Drctl| {
        // From the repository root, not the config's directory.
        let out = cmd.run_in(dir.path());
        assert!(out.success(), "{cmd:?}: {}", out.stderr);
        out.records()
    };
    let from_config = run(Drctl::default()
        .config(&cfg)
        .arg("watch")
        .virtual_to_end()
        .json());
    let from_flag = run(Drctl::watch(Drctl::DEMO).virtual_to_end().json());
    assert_eq!(from_config.len(), 13, "{from_config:?}");
    assert_eq!(from_config, from_flag);
}

#[test]
fn demo_toml_says_when_each_of_its_decisions_happens() {
    let out = Drctl::watch(Drctl::DEMO).virtual_to_end().json().run();
    let text = std::fs::read_to_string(repo().join(Drctl::DEMO)).unwrap();
    let comments: String = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for line in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ms = v["t"].as_u64().unwrap() / 1_000_000;
        // "+110 s", "+0.4 s", "+110.2 s": how the comments write times.
        let when = if ms % 1000 == 0 {
            format!("+{} s", ms / 1000)
        } else {
            format!("+{}.{} s", ms / 1000, (ms % 1000) / 100)
        };
        assert!(
            comments.contains(&when),
            "{} at {when} is not in demo.toml's comments:\n{comments}",
            v["type"]
        );
    }
}

/// Every key the scenario parser takes is in the README's scenario section.
#[test]
fn the_readme_documents_every_scenario_key() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("### Mock scenarios")
        .expect("a Mock scenarios section");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n## ").map_or(section.len(), |i| i + 4)];
    for key in [
        "preferred-site",
        "first-site",
        "connect-latency",
        "register-delay",
        "site-timeout",
        "site-sip-register-timeout",
        "end",
        "agents",
        "cs-proxy-capacity",
        "cs-proxy-queue",
        "telephony",
        "configuration",
        "statistic",
        "reachable",
        "at",
        "site",
        "set",
        "logout",
        "dn-back-in-service",
        "dn-out-of-service",
        "disconnect",
        "stale",
        "graceful_shutdown_logout",
        "dr-force_logout",
        "supervisor_forced_logout",
    ] {
        let named = section.contains(&format!("`{key}")) || section.contains(&format!("\"{key}\""));
        assert!(named, "README's scenario section lacks `{key}`");
    }
}

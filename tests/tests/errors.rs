//! Bad input never panics: exit 2 with a message naming the file (SPEC §9).

use drctl_e2e::{Drctl, Ran};
use std::io::Write;

/// A scenario file with `text`, removed when dropped.
fn scenario(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f
}

/// `drctl watch` of the scenario at `path` on the virtual clock to its end.
fn watch(path: &str) -> Ran {
    Drctl::watch(path).virtual_to_end().run()
}

/// Exit 2, every one of `needles` in the message, and no panic.
fn assert_bad_input(out: &Ran, needles: &[&str]) {
    let stderr = &out.stderr;
    assert_eq!(out.code, Some(2), "stderr: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{n:?} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_duration_in_a_scenario_names_file_and_line() {
    let f = scenario("[deployment]\npreferred-site = \"site1\"\nsite-timeout = \"3x\"\n");
    let p = f.path().to_string_lossy().into_owned();
    assert_bad_input(&watch(&p), &[&p, ":3:"]);
}

#[test]
fn unknown_site_in_a_scenario_names_file_line_and_key() {
    let f = scenario("[deployment]\npreferred-site = \"site9\"\n");
    let p = f.path().to_string_lossy().into_owned();
    assert_bad_input(
        &watch(&p),
        &[&p, ":2:", "deployment.preferred-site", "site1, site2"],
    );
}

#[test]
fn unknown_key_in_a_scenario_names_file_line_and_key() {
    let f = scenario("[deployment]\npreferred-site = \"site1\"\ncolour = \"blue\"\n");
    let p = f.path().to_string_lossy().into_owned();
    assert_bad_input(&watch(&p), &[&p, ":3:", "colour"]);
}

#[test]
fn missing_plugin_lists_where_it_looked() {
    let out = Drctl::new(&["watch", "--backend", "nosuch"])
        .args(&["--scenario", "plugins/mock/scenarios/demo.toml"])
        .virtual_clock()
        .run();
    assert_bad_input(&out, &["nosuch"]);
}

#[test]
fn missing_scenario_file_is_named() {
    let out = watch("plugins/mock/scenarios/does-not-exist.toml");
    assert_bad_input(&out, &["does-not-exist.toml"]);
}

#[test]
fn plugin_of_another_abi_major_is_refused_naming_both_versions() {
    let bin = drctl_e2e::drctl_bin();
    let lib = bin.with_file_name(format!(
        "{}drctl_fixture_abi2{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let lib = if lib.exists() {
        lib
    } else {
        bin.parent()
            .unwrap()
            .join("deps")
            .join(lib.file_name().unwrap())
    };
    let lib = lib.to_string_lossy().into_owned();
    let out = Drctl::new(&["watch", "--backend", &lib])
        .args(&["--scenario", "plugins/mock/scenarios/demo.toml"])
        .run();
    // Both versions named: the plugin's and this drctl's (whatever its minor).
    assert_bad_input(&out, &[&lib, "ABI 2", "this drctl speaks 1."]);
}

//! `drctl-config`: loading a config file of arbitrary text.
//!
//! The input up to its first NUL byte is written to a file of this process's
//! own and loaded with [`LoadOptions::isolated`] (only defaults and that
//! file: no standard files, no environment), as `drctl --config FILE` would;
//! the lines after the NUL, if any, are `--set KEY=VALUE` pairs on top.
//!
//! Errors are expected; panics are bugs. A config that loads must also
//! render (`config show`'s TOML must parse again, `--origin`), and the
//! config a recording keeps of it must load again as the same config (what
//! `drctl replay` runs with).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use drctl_config::{Config, LoadOptions};
use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for every input.
fn scratch_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("drctl-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("drctl.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let (file, sets) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let path = scratch_file();
    std::fs::write(path, file).expect("write the scratch config");
    let mut opts = LoadOptions::isolated(Some(path.clone()));
    opts.overrides = String::from_utf8_lossy(sets)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let config = match Config::load(&opts) {
        Ok(config) => config,
        Err(e) => {
            let _ = (e.to_string(), e.key());
            return;
        }
    };

    // What `config show` and `config show --origin` print.
    let shown = config.redacted_toml();
    if !shown.starts_with("# cannot render") {
        if let Err(e) = shown.parse::<toml::Table>() {
            panic!("config show printed TOML that does not parse: {e}\n{shown}");
        }
    }
    let _ = config.origin_listing();
    let _ = config.validate_agent();
    let _ = config.has_password_source();
    let _ = config.first_site();
    let _ = config.backend.selected_json();
    for site in &config.sites {
        let _ = site.cs_proxy_host_port();
    }
    let _ = format!("{config:?}");

    // What a recording keeps, and what `drctl replay` makes of it.
    let recorded = config.recordable();
    let replayed = match Config::from_recording(&recorded, &[]) {
        Ok(c) => c,
        Err(e) => panic!("a loaded config's recording does not load: {e}\n{recorded:#}"),
    };
    assert_eq!(
        replayed.recordable(),
        recorded,
        "replaying a recording's config changed it"
    );
});

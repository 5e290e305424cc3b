//! Helpers for end-to-end tests: build the binary and its plugins once, run
//! `drctl`, and read its decision records.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The built `drctl` binary (built with its plugins on first use: `cargo test`
/// of this package alone would not build another package's binary).
pub fn drctl_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test exe>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let mut build = Command::new(env!("CARGO"));
        build.args([
            "build",
            "-p",
            "drctl",
            "-p",
            "drctl-plugin-mock",
            "-p",
            "drctl-fixture-abi2",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.current_dir(repo()).status().expect("cargo build");
        assert!(status.success(), "building drctl failed");
        profile_dir.join("drctl")
    })
    .clone()
}

/// Runs `drctl` with `args` from the repository root, with no user config.
pub fn drctl(args: &[&str]) -> Output {
    let empty = std::env::temp_dir().join("drctl-e2e-no-config");
    let _ = std::fs::create_dir_all(&empty);
    Command::new(drctl_bin())
        .args(args)
        .current_dir(repo())
        .env("XDG_CONFIG_HOME", &empty)
        .env("HOME", &empty)
        .env_remove("RUST_LOG")
        .output()
        .expect("run drctl")
}

/// Decision records on stdout (`--output json`), one compact line each:
/// `"<t ns> <type> <other field values in order>"`.
pub fn records(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON record: {line:?}: {e}"));
            let obj = v.as_object().expect("a JSON object");
            let mut parts = vec![
                obj["t"].to_string(),
                obj["type"].as_str().unwrap_or("").to_owned(),
            ];
            // SPEC §6 field order (serde_json's map sorts keys).
            const FIELDS: [&str; 8] = [
                "site", "reason", "from", "to", "error", "why", "alarm", "class",
            ];
            assert!(
                obj.keys()
                    .all(|k| k == "t" || k == "type" || FIELDS.contains(&k.as_str())),
                "unexpected field in {line}"
            );
            for val in FIELDS.iter().filter_map(|k| obj.get(*k)) {
                parts.push(val.as_str().map_or_else(|| val.to_string(), str::to_owned));
            }
            parts.join(" ")
        })
        .collect()
}

//! Locating the fixture plugins (real cdylibs) from tests and benches.
//!
//! `cargo test` never builds a `cdylib` that no test links to (checked with
//! cargo 1.95: `cargo test --workspace` builds the fixture crates' test
//! harnesses at most, never `libdrctl_fixture_*.so`). So the first call to
//! [`fixture`] runs `cargo build -p drctl-fixture-...` itself, with the same
//! cargo (`env!("CARGO")`), target directory and profile directory as the
//! running test binary, which lives in `<target>/<profile>/deps/`. Cargo has
//! released its build lock by the time tests run, so this does not deadlock;
//! when the fixtures are up to date it takes a fraction of a second.

#![allow(dead_code)]

pub mod wire;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The fixture crates under `plugin-api/tests/fixtures/`, by short name.
pub const FIXTURES: &[&str] = &["echo", "badjson", "abi2", "badmagic", "nosym"];

/// `<target>/<profile>`: where cargo puts the final artifacts of this build.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The built fixture library `name` (e.g. `echo`), building the fixtures first if needed.
pub fn fixture(name: &str) -> PathBuf {
    build_fixtures();
    let path = profile_dir().join(format!(
        "{}drctl_fixture_{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(path.is_file(), "fixture {} was not built", path.display());
    path
}

fn build_fixtures() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("profile dir has a parent");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
            None => {}
        }
        for name in FIXTURES {
            cargo.arg("-p").arg(format!("drctl-fixture-{name}"));
        }
        let out = cargo
            .output()
            .expect("cannot run cargo to build the fixtures");
        assert!(
            out.status.success(),
            "building the fixture plugins failed ({:?}):\n{}",
            cargo,
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

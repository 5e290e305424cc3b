//! Compiles the Java sidecar (`java/`) into `OUT_DIR/ail-bridge-sidecar.jar`
//! with the JDK's `javac` and `jar`, for the plugin to embed.
//!
//! Without a usable JDK (17+) the plugin still builds, without the jar, and
//! its `create` says so. A compile error in the sidecar's sources fails the
//! build: a plugin silently shipping without its sidecar would be worse.
//! `DRCTL_AIL_BRIDGE_NO_JDK=1` forces the no-JDK path (to test it).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ail_bridge_sidecar)");
    println!("cargo::rerun-if-changed=java");
    println!("cargo::rerun-if-env-changed=JAVA_HOME");
    println!("cargo::rerun-if-env-changed=JAVAC");
    println!("cargo::rerun-if-env-changed=DRCTL_AIL_BRIDGE_NO_JDK");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut sources = Vec::new();
    java_sources(Path::new("java/src"), &mut sources);
    sources.sort();
    let build_id = build_id(&sources);
    // The sidecar reports this id in its handshake; the plugin refuses any other.
    println!("cargo::rustc-env=AIL_BRIDGE_BUILD_ID={build_id}");

    if env::var_os("DRCTL_AIL_BRIDGE_NO_JDK").is_some_and(|v| v != "0" && !v.is_empty()) {
        println!("cargo::warning=DRCTL_AIL_BRIDGE_NO_JDK is set: ail-bridge is built without its sidecar");
        return;
    }
    let Some((javac, jar)) = find_jdk() else {
        println!(
            "cargo::warning=no JDK 17+ (javac, jar) found: ail-bridge is built without its Java \
             sidecar and will refuse to start; install one (e.g. default-jdk-headless) and rebuild"
        );
        return;
    };

    let classes = out.join("sidecar-classes");
    let _ = fs::remove_dir_all(&classes);
    fs::create_dir_all(&classes).expect("create the classes directory");
    let status = Command::new(&javac)
        .args(["--release", "17", "-encoding", "UTF-8", "-Xlint:all", "-d"])
        .arg(&classes)
        .args(&sources)
        .status()
        .expect("run javac");
    assert!(status.success(), "javac failed on plugins/ail-bridge/java");
    let resource = classes.join("drctl").join("ailbridge").join("build-id");
    fs::write(&resource, &build_id).expect("write the sidecar's build id");

    let jar_file = out.join("ail-bridge-sidecar.jar");
    let _ = fs::remove_file(&jar_file);
    let status = Command::new(&jar)
        .arg("--create")
        .arg("--file")
        .arg(&jar_file)
        .args(["--main-class", "drctl.ailbridge.Sidecar", "-C"])
        .arg(&classes)
        .arg(".")
        .status()
        .expect("run jar");
    assert!(status.success(), "jar failed to package the sidecar");
    println!("cargo::rustc-cfg=ail_bridge_sidecar");
}

/// Every `.java` file under `dir`.
fn java_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            java_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "java") {
            out.push(path);
        }
    }
}

/// The crate version plus an FNV-1a hash of the sidecar's sources: equal ids
/// mean the plugin and the sidecar were built from the same code.
fn build_id(sources: &[PathBuf]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for path in sources {
        feed(path.to_string_lossy().as_bytes());
        feed(&fs::read(path).expect("read a sidecar source"));
    }
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    format!("{version}-{hash:016x}")
}

/// `javac` and `jar` of a JDK 17 or later: `$JAVAC`, `$JAVA_HOME/bin`, or `PATH`.
fn find_jdk() -> Option<(PathBuf, PathBuf)> {
    let mut candidates = Vec::new();
    if let Some(javac) = env::var_os("JAVAC") {
        let javac = PathBuf::from(javac);
        let jar = javac.with_file_name("jar");
        candidates.push((javac, jar));
    }
    if let Some(home) = env::var_os("JAVA_HOME") {
        let bin = PathBuf::from(home).join("bin");
        candidates.push((bin.join("javac"), bin.join("jar")));
    }
    candidates.push((PathBuf::from("javac"), PathBuf::from("jar")));
    candidates
        .into_iter()
        .find(|(javac, jar)| javac_major(javac).is_some_and(|v| v >= 17) && runs(jar))
}

/// The major version `javac -version` reports (`javac 17.0.15` -> 17).
fn javac_major(javac: &Path) -> Option<u32> {
    let out = Command::new(javac).arg("-version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let version = text.split_whitespace().nth(1)?;
    version.split(['.', '-', '+']).next()?.parse().ok()
}

fn runs(tool: &Path) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

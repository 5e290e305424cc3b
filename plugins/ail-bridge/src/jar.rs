//! The sidecar jar, embedded in the plugin at build time and written out to
//! a cache file the JVM can load.
//!
//! Embedding (rather than installing the jar beside the plugin) means the
//! plugin and the sidecar cannot drift apart: one file carries both, and the
//! handshake still checks the build id. The cache file is named by that id
//! and rewritten atomically, so concurrent drctl processes share it safely.

use crate::error::BridgeError;
use crate::protocol::BUILD_ID;
use std::io::Write;
use std::path::{Path, PathBuf};

#[cfg(ail_bridge_sidecar)]
const JAR: Option<&[u8]> = Some(include_bytes!(concat!(
    env!("OUT_DIR"),
    "/ail-bridge-sidecar.jar"
)));
#[cfg(not(ail_bridge_sidecar))]
const JAR: Option<&[u8]> = None;

/// The embedded jar, if the plugin was built with a JDK.
pub fn embedded() -> Option<&'static [u8]> {
    JAR
}

/// The default directory for the jar: `$XDG_CACHE_HOME/drctl`, else
/// `~/.cache/drctl`, else the temp dir.
pub fn default_dir() -> PathBuf {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(cache) = from("XDG_CACHE_HOME") {
        return cache.join("drctl");
    }
    if let Some(home) = from("HOME") {
        return home.join(".cache").join("drctl");
    }
    std::env::temp_dir().join("drctl-cache")
}

/// Writes the embedded jar into `dir` (unless an identical copy is there) and returns its path.
pub fn materialize(dir: &Path) -> Result<PathBuf, BridgeError> {
    let bytes = JAR.ok_or(BridgeError::NoSidecarJar)?;
    write_once(dir, &format!("ail-bridge-sidecar-{BUILD_ID}.jar"), bytes)
}

/// `dir/name` holding exactly `bytes`, written via a temp file and a rename.
fn write_once(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, BridgeError> {
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        return Ok(path);
    }
    let fail = |source| BridgeError::Jar {
        path: path.clone(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(fail)?;
    let tmp = dir.join(format!("{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_and_rewrites_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cache");
        let path = write_once(&sub, "x.jar", b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(write_once(&sub, "x.jar", b"one").unwrap(), path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified
        );
        write_once(&sub, "x.jar", b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers = std::fs::read_dir(&sub).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
    }

    #[test]
    fn an_unwritable_dir_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"").unwrap();
        let e = write_once(&file.join("sub"), "x.jar", b"one").unwrap_err();
        assert!(e.to_string().contains("plain-file"), "{e}");
    }
}

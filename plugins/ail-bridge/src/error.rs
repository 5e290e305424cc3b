//! What can go wrong starting or talking to the AIL sidecar.

use std::path::PathBuf;

/// A failure of the bridge itself (not a failed AIL command, which is a
/// `CommandError` result).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// `[backend.ail-bridge]` could not be read.
    #[error("backend.ail-bridge: {0}")]
    Config(String),
    /// The names file (`backend.ail-bridge.names`) could not be read.
    #[error("backend.ail-bridge.names {path:?}: {message}")]
    Names {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The sidecar refused the settings or the names file it was given.
    #[error("the AIL sidecar refuses backend.ail-bridge: {0}; `drctl-ail-bridge self-test --config ...` shows the effective settings")]
    SidecarConfig(String),
    /// The plugin was compiled on a machine without a JDK.
    #[error(
        "this ail-bridge plugin was built without its Java sidecar: no JDK 17+ (javac and jar) \
         was found when it was compiled; install one (e.g. `apt-get install default-jdk-headless`) \
         and rebuild drctl"
    )]
    NoSidecarJar,
    /// The embedded jar could not be written out.
    #[error("cannot write the AIL sidecar jar to {path}: {source}")]
    Jar {
        /// Where it was going.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The JVM could not be started at all.
    #[error(
        "cannot start the JVM {java:?}: {source}; set backend.ail-bridge.java (or JAVA_HOME) \
         to a Java 17+ runtime"
    )]
    Spawn {
        /// The `java` that was run.
        java: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The JVM started but never answered the handshake.
    #[error("the AIL sidecar gave no handshake within {timeout}{tail}")]
    HandshakeTimeout {
        /// How long the plugin waited.
        timeout: String,
        /// The sidecar's last log lines, if any.
        tail: String,
    },
    /// The JVM exited before the handshake.
    #[error("the AIL sidecar exited before its handshake ({status}){tail}")]
    EarlyExit {
        /// Its exit status.
        status: String,
        /// The sidecar's last log lines, if any.
        tail: String,
    },
    /// The sidecar's first line was not a handshake.
    #[error("the AIL sidecar's first line is not a handshake: {0}")]
    BadHandshake(String),
    /// Plugin and sidecar come from different builds.
    #[error(
        "the AIL sidecar speaks protocol {sidecar_protocol} (build {sidecar_build}) but this \
         ail-bridge plugin speaks protocol {plugin_protocol} (build {plugin_build}): they were \
         built apart; reinstall drctl's plugins together"
    )]
    Mismatch {
        /// The plugin's protocol version.
        plugin_protocol: u32,
        /// The plugin's build id.
        plugin_build: String,
        /// The sidecar's protocol version.
        sidecar_protocol: u32,
        /// The sidecar's build id.
        sidecar_build: String,
    },
    /// The AIL classes on the classpath lack names the bridge uses.
    #[error(
        "AIL is not usable from backend.ail-bridge.classpath [{classpath}]: {count} of its \
         names are missing: {shown}; `drctl-ail-bridge self-test --classpath ...` lists them all"
    )]
    AilMissing {
        /// The configured classpath, joined.
        classpath: String,
        /// How many names are missing.
        count: usize,
        /// The first few, by name.
        shown: String,
    },
    /// Writing to the sidecar failed.
    #[error("cannot write to the AIL sidecar: {0}")]
    Io(#[source] std::io::Error),
}

impl BridgeError {
    /// The missing-names error, showing at most a few names.
    pub fn ail_missing(classpath: &[String], missing: &[String]) -> BridgeError {
        const SHOWN: usize = 4;
        let mut shown = missing
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if missing.len() > SHOWN {
            shown.push_str(&format!(" and {} more", missing.len() - SHOWN));
        }
        BridgeError::AilMissing {
            classpath: classpath.join(":"),
            count: missing.len(),
            shown,
        }
    }
}

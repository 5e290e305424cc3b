//! [`ConfigError`] and [`Origin`]: what went wrong, where, with which key.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// drctl's built-in default.
    Default,
    /// A config file, with the line of the key when it is known.
    File {
        /// The file's path, as it was given or found.
        path: PathBuf,
        /// 1-based line of the key in that file.
        line: Option<usize>,
    },
    /// A `DRCTL_*` environment variable.
    Env {
        /// The variable's name, e.g. `DRCTL_POLICY__SITE_TIMEOUT`.
        var: String,
    },
    /// A `--set KEY=VALUE` command-line override.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => write!(f, "env {var}"),
            Origin::CommandLine => f.write_str("--set"),
        }
    }
}

/// Why the configuration cannot be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file cannot be read or is not valid TOML, or a `--config` file does not exist.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A key is unknown, missing or has a value out of range.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// Where the offending value (or its section) came from.
        origin: Origin,
        /// The key, dotted, arrays indexed: `sites[1].cs-proxy`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The agent's password cannot be read from its configured source.
    #[error("{origin}: {key}: {message}")]
    Password {
        /// Where the password source was configured.
        origin: Origin,
        /// The password key in use (`agent.password-env`, `agent.password-file`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::File { .. } => None,
            ConfigError::Invalid { key, .. } | ConfigError::Password { key, .. } => Some(key),
        }
    }
}

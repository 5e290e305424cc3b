//! Tracing to stderr, as text or JSON; `RUST_LOG` wins over `-v`/`-q`.

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// The level for a verbosity (`-v` minus `-q` count); 0 is `info`.
fn level(verbosity: i16) -> &'static str {
    match verbosity {
        i16::MIN..=-3 => "off",
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    }
}

/// Installs the global subscriber; logs go to stderr, never stdout.
pub fn init(format: LogFormat, verbosity: i16) {
    let default = level(verbosity);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A subscriber already installed (tests) is not an error.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

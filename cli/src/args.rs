//! The command line: global options shared by every subcommand.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, ValueEnum};
use drctl_config::{Config, ConfigError, LoadOptions};

use crate::commands::Command;

/// Site Disaster Recovery orchestrator for two-site Genesys SIP Server contact centres.
#[derive(Debug, Parser)]
#[command(name = "drctl", version, propagate_version = true)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file to read instead of ./drctl.toml (it must exist).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override a config key, e.g. `--set policy.site-timeout=10s` (repeatable, wins over
    /// files and environment).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warnings, -qq errors, -qqq nothing); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
}

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

impl GlobalArgs {
    /// The config layers for this command line (SPEC §7).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            config_file: self.config.clone(),
            overrides: self.set.clone(),
            ..LoadOptions::default()
        }
    }

    /// Loads and validates the effective configuration.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        Config::load(&self.load_options())
    }

    /// `-v` count minus `-q` count.
    pub fn verbosity(&self) -> i16 {
        i16::from(self.verbose) - i16::from(self.quiet)
    }
}

/// Parses `KEY=VALUE` (the value may contain `=`).
fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected KEY=VALUE (e.g. policy.site-timeout=10s), got {arg:?}"
        )),
    }
}

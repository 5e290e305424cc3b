//! `drctl config show [--origin]` and `drctl config check`.

use clap::{Args, Subcommand};
use drctl_config::Config;

use crate::args::GlobalArgs;
use crate::commands::print_stdout;
use crate::exit::CliResult;

/// `drctl config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with the configuration.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `drctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Show {
        /// Print every key as `key = value   # origin` (file:line, env variable, --set or default).
        #[arg(long)]
        origin: bool,
    },
    /// Validate the configuration for a real run; prints "ok: FILES" or the error (exit 2).
    Check,
}

/// Runs a `drctl config` subcommand.
pub fn run(args: ConfigArgs, global: &GlobalArgs) -> CliResult {
    match args.command {
        ConfigCommand::Show { origin } => show(global, origin),
        ConfigCommand::Check => check(global),
    }
}

fn show(global: &GlobalArgs, origin: bool) -> CliResult {
    let config = global.load_config()?;
    if origin {
        print_stdout(&config.origin_listing())
    } else {
        let header = format!("# effective configuration from: {}\n", sources(&config));
        print_stdout(&(header + &config.redacted_toml()))
    }
}

fn check(global: &GlobalArgs) -> CliResult {
    let config = global.load_config()?;
    config.validate_agent()?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    print_stdout(&format!("ok: {}\n", sources(&config)))
}

/// The config files read, for humans.
fn sources(config: &Config) -> String {
    if config.files().is_empty() {
        return "no config file (defaults, environment and --set only)".to_owned();
    }
    let files: Vec<String> = config
        .files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    files.join(", ")
}

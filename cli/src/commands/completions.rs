//! `drctl completions SHELL` and `drctl man`: shell completions and manual
//! pages, generated from the command line's own definition (clap_complete,
//! clap_mangen), so they never drift from it.

use crate::args::GlobalArgs;
use crate::exit::{CliError, CliResult};
use anyhow::Context;
use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// Print a completion script for SHELL on stdout, e.g.
/// `drctl completions bash > /etc/bash_completion.d/drctl`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the manual page drctl(1) on stdout (`drctl man | man -l -`), or
/// write it and one page per subcommand into --dir.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write drctl.1 and drctl-SUBCOMMAND.1 pages into this directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs `drctl completions`.
pub fn completions(args: CompletionsArgs, _global: &GlobalArgs) -> CliResult {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "drctl", &mut out);
    super::print_stdout(&String::from_utf8_lossy(&out))
}

/// Runs `drctl man`.
pub fn man(args: ManArgs, _global: &GlobalArgs) -> CliResult {
    let cmd = super::Cli::command();
    match args.dir {
        Some(dir) => {
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))
                .map_err(CliError::failed)?;
            eprintln!("manual pages written to {}", dir.display());
            Ok(())
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(CliError::failed)?;
            super::print_stdout(&String::from_utf8_lossy(&out))
        }
    }
}

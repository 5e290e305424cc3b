//! `drctl`: parse the command line, set up logging, run the subcommand, map
//! its outcome to an exit code ([`exit::Exit`]).

mod alarms;
mod args;
mod commands;
mod control;
mod drill_report;
mod events;
mod exit;
mod fleet;
mod gates;
mod history;
mod host;
mod http;
mod logging;
mod metrics;
mod notify;
mod ops;
mod paths;
mod report;
mod schedule;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::Cli;
use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let exit = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return exit.into();
        }
    };
    logging::init(cli.global.log_format, cli.global.verbosity());
    match commands::run(cli.command, &cli.global) {
        Ok(()) => Exit::Ok.into(),
        Err(err) => {
            eprintln!("error: {err}");
            err.exit.into()
        }
    }
}

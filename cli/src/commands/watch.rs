//! `drctl watch`: start up, watch, alarm and switch until stopped (SPEC §1).

use crate::args::GlobalArgs;
use crate::exit::{CliError, CliResult};
use crate::host::Stop;
use crate::session::{prepare, runtime, stop_on_signal, SessionArgs, SessionKind};
use clap::Args;

/// Start up on the preferred site, watch the four listeners, raise alarms and
/// switch sites when the DR policy says so, until SIGINT/SIGTERM.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Stop at the scenario's `end` (mock backend).
    #[arg(long)]
    until_end: bool,
}

/// Runs `drctl watch`.
pub fn run(args: WatchArgs, global: &GlobalArgs) -> CliResult {
    let mut prepared = prepare(global, &args.session, SessionKind::Watch)?;
    let end = if args.until_end {
        Some(prepared.end.ok_or_else(|| {
            CliError::bad_input(anyhow::anyhow!(
                "--until-end needs a scenario with deployment.end (backend {})",
                prepared.backend
            ))
        })?)
    } else {
        None
    };
    runtime()?.block_on(async {
        let host = &mut prepared.host;
        host.inject(drctl_policy::Event::Start)
            .map_err(CliError::failed)?;
        let mut stop = stop_on_signal();
        let why = host
            .run(end, &mut stop, |_| false)
            .await
            .map_err(CliError::failed)?;
        tracing::info!(?why, "watch stopped");
        host.shutdown().map_err(CliError::failed)?;
        if why == Stop::Idle {
            tracing::info!("nothing more can happen (virtual clock)");
        }
        Ok(())
    })
}

//! `drctl watch`: start up, watch, alarm and switch until stopped (SPEC §1).

use crate::args::GlobalArgs;
use crate::exit::{CliError, CliResult};
use crate::host::{Stop, StopFuture};
use crate::session::{prepare, SessionArgs};
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
    let mut prepared = prepare(global, &args.session, None)?;
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::failed)?;
    rt.block_on(async {
        let host = &mut prepared.host;
        host.inject(drctl_policy::Event::Start)
            .map_err(CliError::failed)?;
        let mut stop: StopFuture = Box::pin(shutdown_signal());
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

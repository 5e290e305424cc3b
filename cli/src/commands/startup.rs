//! `drctl startup`: run S1–S4 once and report where the agent landed.

use crate::args::{GlobalArgs, SessionArgs};
use crate::exit::{CliError, CliResult, Exit};
use clap::Args;
use drctl_policy::PhaseKind;

/// Connect to a site's CS Proxy, read the agent's preferred site and move
/// there (S1–S4), then report. Exit 0 on the preferred site, 3 when only the
/// secondary could be reached, 4 when no site answered within startup.timeout.
#[derive(Debug, Args)]
pub struct StartupArgs {
    #[command(flatten)]
    session: SessionArgs,
}

/// Runs `drctl startup`.
pub fn run(args: StartupArgs, global: &GlobalArgs) -> CliResult {
    let view = crate::ops::startup(global, &args.session)?;
    let site = view.site.as_deref().unwrap_or("-");
    let preferred = view.preferred_site.as_deref().unwrap_or("-");
    if view.phase == PhaseKind::GaveUp {
        eprintln!("no site could be reached within startup.timeout");
        return Err(CliError {
            exit: Exit::NoSite,
            error: anyhow::anyhow!("startup failed"),
        });
    }
    if view.preferred_site.is_some() && view.site == view.preferred_site {
        eprintln!("on the preferred site {site}");
        Ok(())
    } else {
        eprintln!("on {site}; the preferred site {preferred} could not be reached");
        Err(CliError {
            exit: Exit::Secondary,
            error: anyhow::anyhow!("on the secondary site {site}"),
        })
    }
}

//! `drctl pause` / `drctl resume` (E3): hold or release a running watcher's
//! automatic switchovers; operator switchovers are never held.

use crate::args::GlobalArgs;
use crate::commands::status::ask;
use crate::control::Request;
use crate::exit::CliResult;
use clap::Args;

/// Hold automatic switchovers of the running watcher (E3): triggers become
/// `switchover-suppressed` (why: paused) until `drctl resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {}

/// Release automatic switchovers (E3); a trigger held while paused that still
/// holds is acted on now.
#[derive(Debug, Args)]
pub struct ResumeArgs {}

/// Runs `drctl pause`.
pub fn pause(_args: PauseArgs, global: &GlobalArgs) -> CliResult {
    ask(global, Request::Pause)?;
    eprintln!("paused: automatic switchovers are held until drctl resume");
    Ok(())
}

/// Runs `drctl resume`.
pub fn resume(_args: ResumeArgs, global: &GlobalArgs) -> CliResult {
    ask(global, Request::Resume)?;
    eprintln!("resumed: automatic switchovers are allowed again");
    Ok(())
}

//! `drctl pause` / `drctl resume` (E3): hold or release a running watcher's
//! automatic switchovers; operator switchovers are never held.

use crate::args::{AgentArg, GlobalArgs};
use crate::commands::status::one;
use crate::control::Request;
use crate::exit::CliResult;
use clap::Args;

/// Hold automatic switchovers of the running watcher (E3): triggers become
/// `switchover-suppressed` (why: paused) until `drctl resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    agent: AgentArg,
}

/// Release automatic switchovers (E3); a trigger held while paused that still
/// holds is acted on now.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    agent: AgentArg,
}

/// Runs `drctl pause`.
pub fn pause(args: PauseArgs, global: &GlobalArgs) -> CliResult {
    let status = one(global, args.agent.agent.as_deref())?.ask(&Request::Pause)?;
    eprintln!(
        "paused {}: automatic switchovers are held until drctl resume",
        crate::logging::escape(status.agent.as_deref().unwrap_or("the agent"))
    );
    Ok(())
}

/// Runs `drctl resume`.
pub fn resume(args: ResumeArgs, global: &GlobalArgs) -> CliResult {
    let status = one(global, args.agent.agent.as_deref())?.ask(&Request::Resume)?;
    eprintln!(
        "resumed {}: automatic switchovers are allowed again",
        crate::logging::escape(status.agent.as_deref().unwrap_or("the agent"))
    );
    Ok(())
}

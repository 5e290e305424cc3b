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
    /// Resume by itself after this long (e.g. `30m`): maintenance with an end.
    #[arg(long = "for", value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    for_: Option<std::time::Duration>,
    /// Why (shown by `status`, e.g. "SIP Server upgrade, CHG-1234").
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
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
    let request = Request::Pause {
        // Whole seconds, at least one (a maintenance window, not a timer).
        for_s: args.for_.map(|d| d.as_secs().max(1)),
        reason: args.reason,
    };
    let status = one(global, args.agent.agent.as_deref())?.ask(&request)?;
    let until = match &args.for_ {
        Some(d) => format!("for {}", humantime::format_duration(*d)),
        None => "until drctl resume".to_owned(),
    };
    eprintln!(
        "paused {}: automatic switchovers are held {until}",
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

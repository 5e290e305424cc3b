//! `drctl events`: the running watcher's decisions as they happen, through
//! its control socket.

use crate::args::{AgentArg, GlobalArgs, OutputFormat};
use crate::commands::status::one;
use crate::control::{self, ClientError, Request};
use crate::exit::{CliError, CliResult};
use anyhow::anyhow;
use clap::Args;

/// Print the running watcher's recent decisions (and `--shadow`
/// divergences); with --follow, every new one as it happens, until Ctrl-C or
/// the watcher stops. A client that reads too slowly loses events and is
/// told how many (`N events dropped`, or `{"type":"dropped","count":N}`).
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this agent's events (a fleet watcher's agent; also picks the watcher).
    #[command(flatten)]
    agent: AgentArg,
    /// Keep printing new events as they happen.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Text for people or one JSON object a line (decision records with `agent`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// Runs `drctl events`.
pub fn run(args: EventsArgs, global: &GlobalArgs) -> CliResult {
    let target = one(global, args.agent.agent.as_deref())?;
    let request = Request::Events {
        follow: args.follow,
    };
    let colour = crate::logging::colours(&std::io::stdout());
    let mut failed: Option<CliError> = None;
    let on_line = |reply: &control::Reply| {
        let Some(event) = reply.event.as_ref().filter(|_| failed.is_none()) else {
            return;
        };
        let text = match args.output {
            OutputFormat::Json => format!("{event}\n"),
            OutputFormat::Text => crate::events::render(&event.to_string(), colour),
        };
        // stdout closed (`| head`): stop printing, the stream ends with us.
        if let Err(e) = super::print_stdout(&text) {
            failed = Some(e);
        }
    };
    let agent = target.agent.as_deref();
    let reply = if args.follow {
        control::stream(&target.path, agent, &request, on_line)
    } else {
        control::request(
            &target.path,
            agent,
            &request,
            super::status::ANSWER_TIMEOUT,
            on_line,
        )
    };
    if let Some(e) = failed {
        return Err(e);
    }
    match reply {
        Ok(r) if r.ok == Some(true) => Ok(()),
        Ok(r) => Err(CliError::failed(anyhow!(
            "the watcher refused: {}",
            r.error.unwrap_or_default()
        ))),
        // The watcher stopped mid-stream: the stream is over.
        Err(ClientError::Closed) if args.follow => {
            eprintln!("the watcher closed the stream (it stopped)");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

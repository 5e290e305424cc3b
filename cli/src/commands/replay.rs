//! `drctl replay`: a recorded session through today's engine, with the
//! `replay` backend, on the virtual clock (or `--speed N` on the real one).

use crate::args::{GlobalArgs, OutputFormat};
use crate::exit::{CliError, CliResult};
use crate::ops::replay::Replay;
use crate::report::StatusReport;
use clap::Args;
use drctl_policy::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// Replay a recording (`--record FILE`) through today's policy and print its
/// decisions; `--check` compares them with the recorded ones. `--set KEY=VALUE`
/// changes the recorded config for a what-if (e.g. `policy.site-timeout=10s`).
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording (JSON Lines, from `--record`).
    file: PathBuf,
    /// Compare today's decisions with the recorded ones: exit 0 when identical,
    /// 1 with the first difference otherwise.
    #[arg(long)]
    check: bool,
    /// Replay on the real clock, N times faster (0.001 to 1000000), instead of
    /// the virtual clock.
    #[arg(long, value_name = "N", value_parser = parse_speed, allow_hyphen_values = true)]
    speed: Option<f64>,
    /// How far apart two equal decisions may be and still agree (default: 0 for a
    /// virtual-clock recording, 50ms for a real-clock one, whose timers fired a little late).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    tolerance: Option<Duration>,
    /// Stop at this session time (e.g. `45s`) instead of the recording's end.
    #[arg(long, value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    until: Option<Duration>,
    /// Print the engine's state where the replay stops (site, epoch,
    /// listeners, timers with the time left, alarms, pause, last decisions)
    /// instead of the decisions.
    #[arg(long, conflicts_with = "check")]
    state: bool,
    /// Beside each decision: the rule that made it, the input that caused it
    /// (the recording's line, or the timer and when it was armed) and the
    /// config values it used, with their origin.
    #[arg(long, conflicts_with_all = ["check", "state"])]
    explain: bool,
    /// A what-if event, in the scenario's event keys (repeatable), e.g.
    /// `--inject 'at=45s site=site2 telephony=off'`; a site's event reaches
    /// the engine only while the agent is at that site.
    #[arg(long, value_name = "EVENT")]
    inject: Vec<String>,
    /// What-if events from a file of scenario `[[events]]` (repeatable).
    #[arg(long, value_name = "FRAGMENT.toml")]
    inject_file: Vec<PathBuf>,
    /// Decisions on stdout as text or JSON lines (with `--check`: the verdict).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Replay one agent of a fleet recording (its username): its decisions
    /// only, checked against its recorded ones; what follows one engine
    /// (`--state`, `--explain`, `--inject`) needs it on a fleet recording.
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
}

/// The `--speed` factors accepted: beyond them the real clock's arithmetic
/// (session time = wall time × N) leaves what a `Duration` holds, and no
/// incident is worth watching a thousand times slower or a million times faster.
const SPEED: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if SPEED.contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a speed factor from {} to {} (e.g. 10), got {s:?}",
            SPEED.start(),
            SPEED.end()
        )),
    }
}

/// Runs `drctl replay`.
pub fn run(args: ReplayArgs, global: &GlobalArgs) -> CliResult {
    let output = args.output;
    let file = args.file.clone();
    let state = crate::ops::replay::replay(
        global,
        &Replay {
            file: args.file,
            check: args.check,
            speed: args.speed,
            tolerance: args.tolerance,
            until: args.until,
            state: args.state,
            explain: args.explain,
            inject: args.inject,
            inject_files: args.inject_file,
            output: args.output,
            agent: args.agent,
        },
    )?;
    match state {
        Some((status, at)) => print_state(&status, at, &file, output),
        None => Ok(()),
    }
}

/// The engine's state where the replay stopped (`--state`), as `status`
/// shows a watcher's.
fn print_state(
    status: &StatusReport,
    at: Timestamp,
    file: &std::path::Path,
    output: OutputFormat,
) -> CliResult {
    let text = match output {
        OutputFormat::Json => {
            let value = serde_json::to_value(status).map_err(CliError::failed)?;
            format!("{value}\n")
        }
        OutputFormat::Text => {
            // The watcher's identity line (pid, uptime) is not the recording's.
            let body = super::status::render(status);
            let body = body.split_once('\n').map_or("", |(_, rest)| rest);
            format!("{:<11}{at} (replay of {})\n{body}", "at", file.display())
        }
    };
    super::print_stdout(&text)
}

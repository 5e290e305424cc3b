//! `drctl replay`: a recorded session through today's engine, with the
//! `replay` backend, on the virtual clock (or `--speed N` on the real one).

use crate::args::GlobalArgs;
use crate::exit::{CliError, CliResult, Exit};
use crate::host::check::{scan, tail_summary, Checker, OperatorInputs, Summary};
use crate::host::observe::{DecisionPrinter, Shared};
use crate::host::{Clock, Host, Stop};
use crate::session::{
    load_backend, new_engine, received_signal, runtime, signal_name, start_backend, stop_on_signal,
    ClockKind, OutputFormat, SessionKind,
};
use anyhow::anyhow;
use clap::Args;
use drctl_config::Config;
use drctl_plugin_api::messages::Password;
use drctl_plugin_api::recording::{RecordReader, RecordingError};
use drctl_policy::{Event, Timestamp};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
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
    /// Decisions on stdout as text or JSON lines (with `--check`: the verdict).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
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
    let path = &args.file;
    let (header, _) = RecordReader::open(path).map_err(CliError::bad_input)?;
    // The whole file is read once, every record parsed, so that a bad line is
    // exit 2 before anything is printed. With --check nothing is printed until
    // the verdict, so that scan runs on a second core alongside the replay,
    // which needs only what the file's tail says.
    let (summary, scanning) = match tail_summary(path).filter(|_| args.check) {
        Some(tail) => {
            let path = path.clone();
            (tail, Some(std::thread::spawn(move || scan(&path))))
        }
        None => {
            let full = scan(path).map_err(CliError::bad_input)?;
            warn_cut(path, &full);
            (full, None)
        }
    };
    type Scan = std::thread::JoinHandle<Result<Summary, RecordingError>>;
    let scanned = |scanning: Option<Scan>| -> Result<(), CliError> {
        let Some(handle) = scanning else {
            return Ok(());
        };
        let full: Summary = handle
            .join()
            .map_err(|_| CliError::failed(anyhow!("the recording scan panicked")))?
            .map_err(CliError::bad_input)?;
        warn_cut(path, &full);
        Ok(())
    };
    let kind = SessionKind::from_name(&header.command).ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "{}:1: header \"command\" is {:?}: expected watch, startup or switch",
            path.display(),
            header.command
        ))
    })?;
    let cfg = Config::from_recording(&header.config, &global.set)
        .map_err(|e| CliError::bad_input(anyhow!("{}: recorded config: {e}", path.display())))?;
    let engine = new_engine(&cfg, kind)?;
    let clock_kind = if args.speed.is_some() {
        ClockKind::Real
    } else {
        ClockKind::Virtual
    };
    let recording = std::fs::canonicalize(path).map_err(CliError::bad_input)?;
    let plugin_cfg = serde_json::json!({ "recording": recording });
    let plugin = load_backend(&cfg, "replay", clock_kind)?;
    let (instance, wake) = start_backend(&plugin, &plugin_cfg)?;
    let clock = match args.speed {
        Some(speed) => Clock::scaled(speed),
        None => Clock::virtual_at_zero(),
    };
    let tolerance = args.tolerance.unwrap_or(if header.clock == "real" {
        Duration::from_millis(50)
    } else {
        Duration::ZERO
    });
    let checker = Rc::new(RefCell::new(
        Checker::open(
            path,
            tolerance,
            (summary.truncated.is_some() || !summary.ended)
                .then(|| Timestamp::from_nanos(summary.last_t)),
        )
        .map_err(CliError::bad_input)?,
    ));
    let mut host = Host::new(
        engine,
        instance,
        header.session.clone(),
        Password::new(""),
        clock,
        wake,
    );
    host.observe(Box::new(Shared(checker.clone())));
    if !args.check {
        host.observe(Box::new(DecisionPrinter::new(
            std::io::stdout(),
            args.output.into(),
        )));
    }
    let mut inputs = OperatorInputs::open(path).map_err(CliError::bad_input)?;
    let end = Timestamp::from_nanos(summary.last_t);
    let replayed = runtime()?.block_on(async {
        host.inject(Event::Start).map_err(CliError::failed)?;
        let mut stop = stop_on_signal();
        loop {
            let next = inputs.next_at().map_err(CliError::bad_input)?;
            let until = next.map_or(end, |t| t.min(end));
            let why = host
                .run(Some(until), &mut stop, |_| false)
                .await
                .map_err(CliError::failed)?;
            if why == Stop::Signal {
                // Before the recording's end: no verdict, and no timeline summary.
                host.close();
                return Ok(received_signal().map(|n| (n, host.now())));
            }
            while let Some(event) = inputs.take_due(host.now()).map_err(CliError::bad_input)? {
                host.inject(event).map_err(CliError::failed)?;
            }
            if host.now() >= end && inputs.next_at().map_err(CliError::bad_input)?.is_none() {
                break;
            }
        }
        host.close();
        Ok::<_, CliError>(None)
    });
    if let Ok(Some((signal, at))) = replayed {
        // The scan thread is left to the process's exit: it may still have a
        // large file to read, and a stopped replay has no verdict to back.
        return Err(interrupted(signal, at, &args));
    }
    // A bad line found by the scan explains whatever else went wrong.
    scanned(scanning)?;
    replayed?;
    let verdict = checker.borrow_mut().finish().map_err(CliError::bad_input)?;
    if args.check {
        let text = match args.output {
            OutputFormat::Text => verdict.to_text(),
            OutputFormat::Json => verdict.to_json() + "\n",
        };
        super::print_stdout(&text)?;
        if verdict.identical() {
            Ok(())
        } else {
            Err(CliError {
                exit: Exit::Failed,
                error: anyhow!("today's decisions differ from the recording"),
            })
        }
    } else {
        match &verdict.mismatch {
            None => eprintln!("{} decisions, identical to the recording", verdict.now),
            Some(m) => eprintln!(
                "{} decisions ({} recorded); they differ from decision {} on (--check shows how)",
                verdict.now, verdict.recorded, m.index
            ),
        }
        Ok(())
    }
}

/// A replay stopped by `signal` at session time `at`: said on stdout as the
/// outcome (`interrupted`, never a verdict), exit 128 + the signal.
fn interrupted(signal: i32, at: Timestamp, args: &ReplayArgs) -> CliError {
    let name = signal_name(signal);
    if args.check {
        let text = match args.output {
            OutputFormat::Text => {
                format!("interrupted: {name} at {at}, before the recording's end; no verdict\n")
            }
            OutputFormat::Json => format!(
                "{}\n",
                serde_json::json!({
                    "check": "interrupted",
                    "signal": name,
                    "at": at.as_nanos(),
                })
            ),
        };
        // stdout gone: the exit code still says it.
        let _ = super::print_stdout(&text);
    }
    CliError {
        exit: Exit::signalled(signal),
        error: anyhow!("replay interrupted by {name} at {at}, before the recording's end"),
    }
}

/// Warns about a recording cut by a crash (mid-line, or before the session's end).
fn warn_cut(path: &std::path::Path, s: &Summary) {
    if let Some(line) = s.truncated {
        tracing::warn!(
            "{}:{line}: the last line is cut (the recording ended mid-write); replaying up to line {}",
            path.display(),
            line - 1
        );
    } else if !s.ended {
        tracing::warn!(
            "{}: the recording stops at {} without the session's end (the watcher was killed?); \
             decisions from then on are not compared",
            path.display(),
            Timestamp::from_nanos(s.last_t)
        );
    }
}

//! `drctl replay`: a recorded session through today's engine, with the
//! `replay` backend, on the virtual clock (or `--speed N` on the real one).

use crate::args::{ClockKind, GlobalArgs, OutputFormat};
use crate::exit::{CliError, Exit};
use crate::host::check::{scan, tail_summary, Checker, OperatorInputs, Summary};
use crate::host::explain::Explainer;
use crate::host::observe::{DecisionPrinter, Shared};
use crate::host::session::Session;
use crate::host::signal::{received_signal, signal_name};
use crate::host::{Clock, Host, Stop};
use crate::ops::agents::{checked, engine_config, AgentSpec, SessionKind};
use crate::ops::backend::{load_backend, start_backend, BackendKind};
use crate::ops::inject::{self, Injection};
use crate::ops::session::format;
use crate::report::StatusReport;
use anyhow::anyhow;
use drctl_config::Config;
use drctl_plugin_api::messages::Password;
use drctl_policy::{Event, Timestamp};
use drctl_protocol::recording::{Header, RecordReader};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// What to replay and how.
#[derive(Debug)]
pub struct Replay {
    /// The recording.
    pub file: PathBuf,
    /// Compare with the recorded decisions.
    pub check: bool,
    /// Real clock, N times faster; `None`: the virtual clock.
    pub speed: Option<f64>,
    /// How far apart two equal decisions may be.
    pub tolerance: Option<Duration>,
    /// Stop at this session time (`None`: the recording's end).
    pub until: Option<Duration>,
    /// Print the engine's state where the replay stops, not the decisions.
    pub state: bool,
    /// Print each decision with its rule, cause and config values.
    pub explain: bool,
    /// What-if events (`--inject 'at=45s site=site2 telephony=off'`).
    pub inject: Vec<String>,
    /// What-if event fragments (`[[events]]` files).
    pub inject_files: Vec<PathBuf>,
    /// Text or JSON.
    pub output: OutputFormat,
    /// Replay only this agent of a fleet recording (its username or session).
    pub agent: Option<String>,
}

/// The engine's state where a `--state` replay stopped, and when that is.
pub type State = (StatusReport, Timestamp);

/// Replays a recording (`drctl replay`); with `--state`, the state where it stopped.
pub fn replay(global: &GlobalArgs, args: &Replay) -> Result<Option<State>, CliError> {
    let path = &args.file;
    let (header, _) = RecordReader::open(path).map_err(CliError::bad_input)?;
    // Every record is checked, so that a bad line is exit 2 naming it before
    // anything is printed. A --check prints nothing until the verdict: it
    // checks the records in the same pass that reads the recorded decisions
    // (the host parses the recorded events as the backend hands them over),
    // and needs before the replay only what the file's tail says. Anything
    // else reads the whole file first.
    let tail = tail_summary(path).filter(|_| args.check && !args.explain);
    let fused = tail.is_some();
    let summary = match tail {
        Some(tail) => tail,
        None => {
            let full = scan(path).map_err(CliError::bad_input)?;
            warn_cut(path, &full);
            full
        }
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
    let agents = replay_agents(&header, &cfg, kind, args.agent.as_deref(), path)?;
    let fleet = header.is_fleet();
    if fleet && agents.engines.len() > 1 {
        one_agent_options(args, &header)?;
    }
    // A fleet recording replayed for some of its agents: only theirs are played.
    let only: Option<HashSet<String>> = (fleet && agents.engines.len() < header.agents.len())
        .then(|| agents.engines.iter().map(|(s, _, _)| s.clone()).collect());
    // The first agent's config: the sites, DN and values `--explain` shows.
    let cfg = agents.first_config;
    let clock_kind = if args.speed.is_some() {
        ClockKind::Real
    } else {
        ClockKind::Virtual
    };
    let recording = std::fs::canonicalize(path).map_err(CliError::bad_input)?;
    let plugin_cfg = match &only {
        None => serde_json::json!({ "recording": recording }),
        Some(sessions) => serde_json::json!({ "recording": recording, "sessions": sessions }),
    };
    let plugin = load_backend(&cfg, &BackendKind::Replay, clock_kind)?;
    let (mut instance, wake) = start_backend(&plugin, &plugin_cfg)?;
    // The recorded events repeat (their lines are their JSON): each distinct
    // one is parsed once.
    instance.memoize_outputs();
    // The loop asks for the deadline more often than the backend changes it.
    instance.cache_timeouts();
    let clock = match args.speed {
        Some(speed) => Clock::scaled(speed),
        None => Clock::virtual_at_zero(),
    };
    let tolerance = args.tolerance.unwrap_or(if header.clock == "real" {
        Duration::from_millis(50)
    } else {
        Duration::ZERO
    });
    let last = Timestamp::from_nanos(summary.last_t);
    let end = args.until.map_or(last, |u| last.min(Timestamp::ZERO + u));
    // Recorded decisions after a cut (a crash, or --until) are not compared.
    let cut = (summary.truncated.is_some() || !summary.ended || end < last).then_some(end);
    let checker = if fused {
        Checker::validating(path, tolerance, cut)
    } else {
        Checker::open(path, tolerance, cut)
    };
    let mut checker = checker.map_err(CliError::bad_input)?;
    if fleet {
        checker = checker.fleet(only.clone());
    }
    let checker = Rc::new(RefCell::new(checker));
    let sessions: HashMap<String, usize> = agents
        .engines
        .iter()
        .enumerate()
        .map(|(i, (s, _, _))| (s.clone(), i))
        .collect();
    let mut host = Host::fleet(agents.engines, instance, clock, wake);
    // The gates' verdicts are the recording's operator inputs: never run again.
    host.recorded_gates();
    host.observe(Box::new(Shared(checker.clone())));
    if args.explain {
        let json = matches!(args.output, OutputFormat::Json);
        let mut explainer =
            Explainer::new(path, &cfg, std::io::stdout(), json).map_err(CliError::bad_input)?;
        if let Some(session) = only.iter().flatten().next().filter(|_| fleet) {
            explainer = explainer.only_session(session.clone());
        }
        host.observe(Box::new(explainer));
    } else if !args.check && !args.state {
        let printer = DecisionPrinter::new(std::io::stdout(), format(args.output));
        host.observe(Box::new(if fleet {
            printer.with_agents()
        } else {
            printer
        }));
    }
    let sites: Vec<String> = cfg.sites.iter().map(|s| s.name.clone()).collect();
    let dn = cfg.agent.dn.clone().unwrap_or_else(|| "dn".to_owned());
    let mut injections: VecDeque<Injection> =
        inject::parse(&args.inject, &args.inject_files, &sites, &dn)
            .map_err(CliError::bad_input)?
            .into();
    // The checker's reader finds the operator inputs too: one pass over the file.
    let mut inputs = OperatorInputs::shared(checker.clone(), path, only);
    let mut session = Session::new(host).map_err(CliError::failed)?;
    let replayed = feed(&mut session, &mut inputs, &sessions, &mut injections, end);
    if let Ok(Some((signal, at))) = replayed {
        // A stopped replay has no verdict: the rest of the file is not read.
        return Err(interrupted(signal, at, args));
    }
    let finished = fused.then(|| checker.borrow_mut().finish());
    if let Some(finished) = &finished {
        let checked = checker.borrow().all_checked();
        match checked.filter(|_| replayed.is_ok() && finished.is_ok()) {
            Some(full) => warn_cut(path, &full),
            // Not every line was checked on the way (the replay failed or
            // stopped before the last event): the full read names the first
            // bad line if there is one, which explains whatever else went wrong.
            None => warn_cut(path, &scan(path).map_err(CliError::bad_input)?),
        }
    }
    replayed?;
    if args.state {
        return Ok(Some((session.host.status(0), session.host.now())));
    }
    let verdict = finished
        .unwrap_or_else(|| checker.borrow_mut().finish())
        .map_err(CliError::bad_input)?;
    if args.check {
        let text = match args.output {
            OutputFormat::Text => verdict.to_text(),
            OutputFormat::Json => verdict.to_json() + "\n",
        };
        crate::exit::print_stdout(&text)?;
        if verdict.identical() {
            Ok(None)
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
        Ok(None)
    }
}

/// Feeds one what-if event to the engine, on its current connection; a
/// site's event only while the agent is at that site (logged either way).
fn inject_one<B: crate::host::Backend>(
    session: &mut Session<B>,
    i: Injection,
) -> Result<(), CliError> {
    let view = session.host.engine(0).map(|e| e.view());
    let (site, epoch) = view.map_or((None, None), |v| (v.site.map(|s| s.to_string()), v.epoch));
    let now = session.host.now();
    let what = i.event.type_name();
    match (epoch, &i.site) {
        (None, _) => tracing::info!("{now}: injected {what} not delivered: no connection"),
        (Some(_), Some(s)) if site.as_ref() != Some(s) => tracing::info!(
            "{now}: injected {what} at {s} not delivered: the agent is on {}",
            site.as_deref().unwrap_or("no site")
        ),
        (Some(epoch), _) => {
            tracing::info!("{now}: injected {what}");
            session
                .inject(
                    0,
                    Event::Backend {
                        epoch,
                        event: i.event,
                    },
                )
                .map_err(CliError::failed)?;
        }
    }
    Ok(())
}

/// A replay stopped by `signal` at session time `at`: said on stdout as the
/// outcome (`interrupted`, never a verdict), exit 128 + the signal.
fn interrupted(signal: i32, at: Timestamp, args: &Replay) -> CliError {
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
        let _ = crate::exit::print_stdout(&text);
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

/// Runs the replay to the recording's end, feeding the operator inputs when
/// they are due; `Some((signal, at))` when a signal stopped it first.
fn feed<B: crate::host::Backend>(
    session: &mut Session<B>,
    inputs: &mut OperatorInputs,
    sessions: &HashMap<String, usize>,
    injections: &mut VecDeque<Injection>,
    end: Timestamp,
) -> Result<Option<(i32, Timestamp)>, CliError> {
    session.start().map_err(CliError::failed)?;
    loop {
        let next = inputs.next_at().map_err(CliError::bad_input)?;
        let next = [next, injections.front().map(|i| i.at)]
            .into_iter()
            .flatten()
            .min();
        let until = next.map_or(end, |t| t.min(end));
        let why = session
            .run(Some(until), |_| false)
            .map_err(CliError::failed)?;
        if why == Stop::Signal {
            // Before the recording's end: no verdict, and no timeline summary.
            session.host.close();
            return Ok(received_signal().map(|n| (n, session.host.now())));
        }
        while let Some((to, event)) = inputs
            .take_due(session.host.now())
            .map_err(CliError::bad_input)?
        {
            // One agent's input (a fleet's names it), or every agent's.
            let fed = match to.map(|s| sessions.get(&s).copied()) {
                Some(Some(i)) => session.inject(i, event),
                Some(None) => continue,
                None if session.host.len() == 1 => session.inject(0, event),
                None => session.inject_all(event),
            };
            fed.map_err(CliError::failed)?;
        }
        while injections
            .front()
            .is_some_and(|i| i.at <= session.host.now())
        {
            if let Some(i) = injections.pop_front() {
                inject_one(session, i)?;
            }
        }
        // Done at `end` once nothing is left to feed up to it (inputs after
        // it belong to what `--until` cuts off).
        let next = [
            inputs.next_at().map_err(CliError::bad_input)?,
            injections.front().map(|i| i.at),
        ]
        .into_iter()
        .flatten()
        .min();
        if session.host.now() >= end && next.is_none_or(|t| t > end) {
            break;
        }
    }
    session.host.close();
    Ok(None)
}

/// The agents a replay runs, as the recording started them.
struct ReplayAgents {
    /// Session id, (no) password, engine: the host's agents, in the recording's order.
    engines: Vec<AgentSpec>,
    /// The first one's config (one agent's: the recorded config itself).
    first_config: Config,
}

/// How many agent names an error lists.
const NAMES_SHOWN: usize = 20;

/// The recorded agents (all of them, or `--agent`'s), each with its own
/// engine: one agent's recording runs the recorded config; a fleet's runs
/// each agent's `[[agents]]` entry (else `[agent]` under its username, as
/// `simulate`'s identical agents), with its recorded seed and S5 site.
fn replay_agents(
    header: &Header,
    cfg: &Config,
    kind: SessionKind,
    only: Option<&str>,
    path: &std::path::Path,
) -> Result<ReplayAgents, CliError> {
    if !header.is_fleet() {
        let name = crate::ops::backend::agent_name(cfg);
        if let Some(a) = only.filter(|a| *a != name && *a != header.session) {
            return Err(CliError::bad_input(anyhow!(
                "--agent {a}: {} holds one agent's session, {name}'s",
                path.display()
            )));
        }
        let mut engine_cfg = engine_config(cfg, kind)?;
        engine_cfg.cached_preferred = header.cached_preferred.as_deref().map(Into::into);
        let engine = checked(engine_cfg)?;
        return Ok(ReplayAgents {
            engines: vec![(header.session.clone(), Password::new(""), engine)],
            first_config: cfg.clone(),
        });
    }
    let chosen: Vec<_> = header
        .agents
        .iter()
        .filter(|a| only.is_none_or(|o| a.username == o || a.session == o))
        .collect();
    if let (Some(o), true) = (only, chosen.is_empty()) {
        return Err(CliError::bad_input(anyhow!(
            "--agent {o}: not an agent of {} (its agents: {})",
            path.display(),
            agent_names(header)
        )));
    }
    let mut engines = Vec::with_capacity(chosen.len());
    let mut first_config = None;
    for a in chosen {
        let mut one = cfg.clone();
        match cfg
            .agents
            .iter()
            .find(|e| e.username.as_deref() == Some(a.username.as_str()))
        {
            Some(entry) => one.agent = entry.clone(),
            None => one.agent.username = Some(a.username.clone()),
        }
        let mut c = engine_config(&one, kind)?;
        c.username.clone_from(&a.username);
        c.seed = a.seed;
        c.cached_preferred = a.cached_preferred.as_deref().map(Into::into);
        engines.push((a.session.clone(), Password::new(""), checked(c)?));
        first_config.get_or_insert(one);
    }
    Ok(ReplayAgents {
        engines,
        first_config: first_config.unwrap_or_else(|| cfg.clone()),
    })
}

/// The recording's agents for a message: the first [`NAMES_SHOWN`], and how many more.
fn agent_names(header: &Header) -> String {
    let mut names: Vec<&str> = header
        .agents
        .iter()
        .take(NAMES_SHOWN)
        .map(|a| a.username.as_str())
        .collect();
    let more = header.agents.len().saturating_sub(NAMES_SHOWN);
    let more = format!("and {more} more");
    if header.agents.len() > NAMES_SHOWN {
        names.push(&more);
    }
    names.join(", ")
}

/// Refuses what follows one agent's engine (`--state`, `--explain`,
/// `--inject`) on a fleet recording replayed for more than one agent.
fn one_agent_options(args: &Replay, header: &Header) -> Result<(), CliError> {
    let option = [
        (args.state, "--state"),
        (args.explain, "--explain"),
        (!args.inject.is_empty(), "--inject"),
        (!args.inject_files.is_empty(), "--inject-file"),
    ]
    .into_iter()
    .find_map(|(on, name)| on.then_some(name));
    match option {
        None => Ok(()),
        Some(name) => Err(CliError::bad_input(anyhow!(
            "{name} follows one agent and {} is a fleet recording of {} agents: \
             name one with --agent NAME (its agents: {})",
            args.file.display(),
            header.agents.len(),
            agent_names(header)
        ))),
    }
}

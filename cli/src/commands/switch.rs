//! `drctl switch`: a forced switchover (failover drill, W1–W3, reason
//! `operator`), verified at the target, with a per-phase timing table.

use crate::args::{AgentArg, GlobalArgs, OutputFormat, SessionArgs};
use crate::commands::status::{configured, one, Target};
use crate::control::{self, Request};
use crate::exit::{CliError, CliResult};
use crate::host::observe::describe;
use crate::ops::switch::known_site;
use anyhow::anyhow;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// Start up, then switch the agent to the other site (or `--to SITE`): kill
/// the AIL factory, restart AIL there, subscribe the listeners, and verify
/// that telephony is ON and the DN back in service at the target.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    agent: AgentArg,
    /// The target site (default: the site the agent is not on).
    #[arg(long, value_name = "SITE")]
    to: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    /// Give up verifying after this long (e.g. "2m").
    #[arg(long, value_parser = drctl_plugin_api::duration::parse, default_value = "2m")]
    timeout: Duration,
    /// Do not run this switchover gate (`[[switch.gates]]`), for an
    /// emergency; repeatable; needs --reason; recorded as gate-skipped.
    #[arg(long = "skip-gate", value_name = "NAME", requires = "reason")]
    skip_gate: Vec<String>,
    /// Why (a change or incident number): recorded in the history;
    /// required to switch through a running watcher.
    #[arg(long, value_name = "TEXT", value_parser = reason_text)]
    reason: Option<String>,
    /// Not verified this long after the trigger: switch back to the origin
    /// (the drill fails).
    #[arg(long, value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    abort_after: Option<Duration>,
    /// Return to the origin this long after the trigger (e.g. "30m").
    #[arg(long, value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    lifetime: Option<Duration>,
    /// The expected recovery time (trigger to DN back in service): a
    /// longer one fails the drill.
    #[arg(long, value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    rto: Option<Duration>,
    /// Write the drill report here: .json, .md or .html (one self-contained
    /// page, the timeline drawn as SVG).
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
    /// Not now: the running watcher switches at TIME (RFC 3339, e.g.
    /// 2026-03-01T22:00:00+01:00, or +DURATION, e.g. +30m); needs --reason.
    #[arg(long, value_name = "TIME", requires = "reason", conflicts_with_all = ["dry_run", "cancel"])]
    at: Option<String>,
    /// Cancel the switch scheduled with --at (or a fleet's wave plan).
    #[arg(long, conflicts_with_all = ["to", "dry_run", "skip_gate", "abort_after", "lifetime", "rto", "report"])]
    cancel: bool,
    /// A fleet watcher: move this share of its agents (10% or a count), by
    /// login name, those not at --to already.
    #[arg(long, value_name = "SHARE", value_parser = crate::schedule::Share::parse,
          conflicts_with_all = ["agent", "at", "cancel"])]
    agents: Option<crate::schedule::Share>,
    /// A fleet watcher: move the agents (all, or --agents) in waves of this
    /// share, each once the previous one is verified and --wave-interval passed.
    #[arg(long, value_name = "SHARE", value_parser = crate::schedule::Share::parse,
          conflicts_with_all = ["agent", "at", "cancel"])]
    wave: Option<crate::schedule::Share>,
    /// Between two waves (after the previous one is verified).
    #[arg(long, value_name = "DURATION", requires = "wave", default_value = "30s",
          value_parser = drctl_plugin_api::duration::parse)]
    wave_interval: Duration,
}

impl SwitchArgs {
    /// The drill asked for, if any (`--abort-after`, `--lifetime`, `--rto`,
    /// `--report`).
    fn drill(&self) -> Option<control::DrillAsk> {
        let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let asked = self.abort_after.is_some()
            || self.lifetime.is_some()
            || self.rto.is_some()
            || self.report.is_some();
        asked.then(|| control::DrillAsk {
            abort_after_ms: ms(self.abort_after),
            lifetime_ms: ms(self.lifetime),
            rto_ms: ms(self.rto),
        })
    }
}

/// The longest `--reason` (it goes into every history line of the switchover).
const MAX_REASON: usize = 1024;

/// A `--reason`: not empty, at most [`MAX_REASON`] bytes, one line.
fn reason_text(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty: say why (a change or incident number)".to_owned());
    }
    if t.len() > MAX_REASON {
        return Err(format!("longer than {MAX_REASON} bytes"));
    }
    if t.chars().any(char::is_control) {
        return Err("one line, without control characters".to_owned());
    }
    Ok(t.to_owned())
}

/// Who performs the switchover and between which sites, before anything
/// changes: what `--dry-run` prints and the confirmation asks about.
struct Plan {
    /// The agent.
    agent: String,
    /// Where the agent is now (`None`: wherever the local startup lands).
    from: Option<String>,
    /// The target (`None`: the other site).
    to: Option<String>,
    /// Who acts, e.g. "the running drctl watch (pid 4242)".
    actor: String,
    /// The running watcher that acts, if any.
    watcher: Option<Target>,
}

impl Plan {
    fn origin_text(&self) -> String {
        self.from
            .clone()
            .unwrap_or_else(|| "the site startup lands on".to_owned())
    }

    fn target_text(&self) -> String {
        self.to
            .clone()
            .unwrap_or_else(|| "the other site".to_owned())
    }
}

/// Runs `drctl switch`.
pub fn run(args: SwitchArgs, global: &GlobalArgs) -> CliResult {
    // Read before anything is asked: a time that has passed is exit 2.
    let at = match &args.at {
        Some(text) => Some(
            crate::schedule::parse_at(text, std::time::SystemTime::now())
                .map_err(CliError::bad_input)?,
        ),
        None => None,
    };
    if args.cancel {
        return cancel(&args, global);
    }
    if args.agents.is_some() || args.wave.is_some() {
        return waves(&args, global);
    }
    let plan = plan(&args, global)?;
    if let Some(path) = &args.report {
        crate::drill_report::Format::of(path).map_err(CliError::bad_input)?;
    }
    if args.dry_run {
        println!(
            "{}\n(dry run: nothing was changed)",
            plan_text(&plan, &args)
        );
        return Ok(());
    }
    refuse_mismatches(&args, &plan, at.is_some())?;
    if !args.yes {
        confirm(&plan)?;
    }
    match (&plan.watcher, at) {
        (Some(target), Some(at)) => schedule(target, &args, at),
        (Some(target), None) => {
            eprintln!(
                "a drctl watch runs for this agent: {} performs the switchover",
                plan.actor
            );
            through_watcher(target, &args)
        }
        (None, _) => local(&args, global),
    }
}

/// What the switch will do, for `--dry-run`.
fn plan_text(plan: &Plan, args: &SwitchArgs) -> String {
    let (from, to) = (plan.origin_text(), plan.target_text());
    let start = if plan.from.is_none() {
        "start up (S1-S4), then "
    } else {
        ""
    };
    format!(
        "plan: agent {agent}, {from} -> {to} (reason operator), performed by {actor}:\n  \
         {start}switch:\n  \
         1. kill the AIL factory\n  2. restart AIL against {to}'s CS Proxy with loading/on-demand\n  \
         3. subscribe the telephony, configuration, statistic and DN listeners\n  \
         4. verify telephony ON and the DN back in service (within {})",
        humantime::format_duration(args.timeout),
        agent = crate::logging::escape(&plan.agent),
        actor = plan.actor,
    )
}

/// Flags that do not fit who acts (exit 2, nothing changed): `--at`
/// without a watcher, no `--reason` through one, drill options with `--at`.
fn refuse_mismatches(args: &SwitchArgs, plan: &Plan, at: bool) -> CliResult {
    if at && plan.watcher.is_none() {
        return Err(CliError::bad_input(anyhow!(
            "--at schedules the switch in a running drctl watch, and none answers for this agent \
             ({}): nothing was scheduled",
            plan.actor
        )));
    }
    if plan.watcher.is_some() && args.reason.is_none() {
        return Err(CliError::bad_input(anyhow!(
            "a drctl watch runs for this agent: switching through it needs --reason TEXT \
             (recorded in its history); nothing was changed"
        )));
    }
    if at && args.drill().is_some() {
        return Err(CliError::bad_input(anyhow!(
            "--abort-after, --lifetime, --rto and --report are for a drill that runs now, not one \
             scheduled with --at: nothing was scheduled"
        )));
    }
    Ok(())
}

/// The drill in this process (no watcher runs for the agent).
fn local(args: &SwitchArgs, global: &GlobalArgs) -> CliResult {
    let mut global = global.clone();
    if let Some(agent) = &args.agent.agent {
        global
            .set
            .push(("agent.username".to_owned(), agent.clone()));
    }
    let progress = Progress::new(args.session.output == OutputFormat::Text);
    let opts = crate::ops::switch::DrillOptions {
        to: args.to.clone(),
        intent: crate::host::gate::OperatorIntent {
            skip: args.skip_gate.clone(),
            why: args.reason.clone(),
        },
        timeout: args.timeout,
        abort_after: args.abort_after,
        lifetime: args.lifetime,
        rto: args.rto,
    };
    let outcome =
        crate::ops::switch::switch(&global, &args.session, opts, progress.writer(), &|msg| {
            progress.say(msg)
        })?;
    progress.finish();
    outcome.table.print_table();
    show_drill(&outcome.report, args.report.as_deref())?;
    outcome.verdict?;
    eprintln!(
        "switched {} -> {}: telephony ON, DN back in service",
        outcome.table.from, outcome.table.to
    );
    Ok(())
}

/// Finds who will act (a running watcher for the agent, asked for its state,
/// or this process, whose config, plugin and scenario are checked) and checks
/// the target against the sites they know: an unknown `--to` is exit 2.
fn plan(args: &SwitchArgs, global: &GlobalArgs) -> Result<Plan, CliError> {
    let agent = args.agent.agent.as_deref();
    // A local drill's flags name what to run: no looking for other watchers.
    let local = args.session.backend.is_some() || args.session.scenario.is_some();
    let target = if local {
        configured(global, agent)?
    } else {
        one(global, agent)?
    };
    if std::os::unix::net::UnixStream::connect(&target.path).is_ok() {
        let status = target.ask(&Request::Status)?;
        known_site(args.to.as_deref(), &status.sites)?;
        let to = args.to.clone().or_else(|| {
            status
                .sites
                .iter()
                .find(|s| Some(s.as_str()) != status.site.as_deref())
                .cloned()
        });
        return Ok(Plan {
            agent: status.agent.clone().unwrap_or_else(|| "-".to_owned()),
            from: status.site.clone(),
            to,
            actor: format!(
                "the running drctl watch (pid {}, {})",
                status.pid,
                target.path.display()
            ),
            watcher: Some(target),
        });
    }
    let mut global = global.clone();
    if let Some(agent) = &args.agent.agent {
        global
            .set
            .push(("agent.username".to_owned(), agent.clone()));
    }
    let local = crate::ops::switch::plan(&global, &args.session, args.to.as_deref())?;
    Ok(Plan {
        agent: local.agent,
        from: None,
        to: args.to.clone(),
        actor: format!(
            "this process (pid {}; no drctl watch answers on {})",
            std::process::id(),
            target.path.display()
        ),
        watcher: None,
    })
}

/// Asks the running watcher at `path` to switch; shows its decisions as they
/// come and the timing table at the end (a drill: its report, and the exit
/// by its verdict).
fn through_watcher(target: &Target, args: &SwitchArgs) -> CliResult {
    let path = &target.path;
    let json = args.session.output == OutputFormat::Json;
    let request = switch_request(args, None);
    // The watcher answers when the switchover is verified; allow for the
    // connect first. A drill may be quiet longer: verifying within
    // --abort-after, holding for --lifetime, then the return's own --timeout.
    let drill_wait = match args.drill() {
        Some(_) => {
            args.abort_after
                .unwrap_or(args.timeout)
                .max(args.lifetime.unwrap_or_default())
                + args.timeout
                + Duration::from_secs(30)
        }
        None => Duration::ZERO,
    };
    let wait = (args.timeout + Duration::from_secs(10)).max(drill_wait);
    let reply = control::request(path, target.agent.as_deref(), &request, wait, |line| {
        if let Some(record) = &line.progress {
            progress_line(record, json);
        }
    })
    .map_err(CliError::from)?;
    if args.drill().is_some() {
        return drill_reply(reply, args);
    }
    let Some(switched) = reply.switched.filter(|_| reply.ok == Some(true)) else {
        return Err(CliError::failed(anyhow!(
            "the watcher did not switch: {}",
            reply.error.unwrap_or_default()
        )));
    };
    switched.print_table();
    eprintln!(
        "switched {} -> {}: telephony ON, DN back in service",
        switched.from, switched.to
    );
    Ok(())
}

/// The end of a drill the watcher ran: the timing table, the RTO, the
/// return, the report written here (`--report`), the exit by the verdict,
/// as a local drill ends.
fn drill_reply(reply: control::Reply, args: &SwitchArgs) -> CliResult {
    let Some(r) = reply.drill else {
        // Refused before it started, or a watcher that knows no drills.
        return Err(CliError::failed(anyhow!(
            "the watcher did not run the drill: {}",
            reply
                .error
                .unwrap_or_else(|| "its answer has no drill report (an older drctl?)".to_owned())
        )));
    };
    if let Some(table) = &reply.switched {
        table.print_table();
    }
    show_drill(&r, args.report.as_deref())?;
    if r.verdict != "PASS" {
        let first = r.failures.first().map(String::as_str).unwrap_or("-");
        return Err(CliError::failed(anyhow!("drill FAIL: {first}")));
    }
    if let Some(table) = &reply.switched {
        eprintln!(
            "switched {} -> {}: telephony ON, DN back in service",
            table.from, table.to
        );
    }
    Ok(())
}

/// The switch request of `args` (`at`: scheduled then).
/// A drill's RTO and rollback lines on stderr, and its `--report` written:
/// the same for a local drill and one the watcher ran.
fn show_drill(r: &crate::drill_report::DrillReport, report: Option<&std::path::Path>) -> CliResult {
    if let Some(m) = r.rto.measured_s {
        let against = r
            .rto
            .expected_s
            .map(|e| format!(" (expected at most {e:.3}s)"))
            .unwrap_or_default();
        eprintln!("RTO {m:.3}s{against}");
    }
    if let Some(back) = &r.rollback {
        eprintln!("{}: {}", back.why, back.outcome);
    }
    if let Some(path) = report {
        r.write(path).map_err(CliError::failed)?;
        eprintln!("report: {} ({})", path.display(), r.verdict);
    }
    Ok(())
}

fn switch_request(args: &SwitchArgs, at: Option<std::time::SystemTime>) -> Request {
    Request::Switch {
        to: args.to.clone(),
        skip_gates: args.skip_gate.clone(),
        reason: args.reason.clone(),
        at_ms: at.map(crate::schedule::unix_ms),
        agents: args.agents,
        wave: args.wave,
        wave_interval_ms: args
            .wave
            .map(|_| u64::try_from(args.wave_interval.as_millis()).unwrap_or(u64::MAX)),
        timeout_ms: Some(u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX)),
        drill: args.drill(),
    }
}

/// `--at`: asks the watcher to schedule the switch; prints what it scheduled.
fn schedule(target: &Target, args: &SwitchArgs, at: std::time::SystemTime) -> CliResult {
    let reply = control::request(
        &target.path,
        target.agent.as_deref(),
        &switch_request(args, Some(at)),
        crate::commands::status::ANSWER_TIMEOUT,
        |_| {},
    )
    .map_err(CliError::from)?;
    let Some(row) = reply.scheduled.filter(|_| reply.ok == Some(true)) else {
        return Err(CliError::failed(anyhow!(
            "the watcher did not schedule the switch: {}",
            reply.error.unwrap_or_default()
        )));
    };
    if args.session.output == OutputFormat::Json {
        let value = serde_json::to_value(&row).map_err(CliError::failed)?;
        println!("{value}");
    } else {
        println!("{}", crate::commands::status::scheduled_line(&row));
    }
    Ok(())
}

/// `--cancel`: the agent's scheduled switch, or (a fleet without --agent)
/// the wave plan in progress; exit 1 when there is none.
fn cancel(args: &SwitchArgs, global: &GlobalArgs) -> CliResult {
    let target = one(global, args.agent.agent.as_deref())?;
    let reply = target.accepted(&Request::Cancel, "")?;
    if let Some(row) = &reply.scheduled {
        println!(
            "cancelled: {}",
            crate::commands::status::scheduled_line(row)
        );
    }
    if let Some(w) = &reply.wave {
        println!(
            "cancelled the wave plan: {}",
            w.error.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// `--agents` / `--wave`: asks a fleet watcher to move a share of its
/// agents in waves; shows each wave and each decision as they come; exit 1
/// when a wave fails (the later ones are not started).
fn waves(args: &SwitchArgs, global: &GlobalArgs) -> CliResult {
    refuse_for_waves(args)?;
    let target = one(global, None)?;
    if let Some(to) = &args.to {
        if let Ok(status) = target.answer(&Request::Status) {
            let sites = match status {
                crate::commands::status::Answer::One(s) => s.sites,
                crate::commands::status::Answer::Fleet(_) => Vec::new(),
            };
            known_site(Some(to), &sites)?;
        }
    }
    let what = format!(
        "{} of the agents to {}{}",
        args.agents
            .map_or_else(|| "all".to_owned(), |s| s.to_string()),
        args.to.as_deref().unwrap_or("their other site"),
        args.wave.map_or_else(String::new, |w| format!(
            ", in waves of {w} every {} after the previous one is verified",
            humantime::format_duration(args.wave_interval)
        ))
    );
    if !args.yes {
        ask(&format!(
            "Move {what}, performed by the drctl watch on {}? This logs those agents in again.",
            target.path.display()
        ))?;
    }
    eprintln!("the drctl watch on {} moves {what}", target.path.display());
    let json = args.session.output == OutputFormat::Json;
    let waves = args.wave.map_or(1, |_| 2);
    // Between two lines: a wave's switchovers, then the interval.
    let wait = args.timeout + args.wave_interval * waves + Duration::from_secs(10);
    let reply = control::request(
        &target.path,
        None,
        &switch_request(args, None),
        wait,
        |line| {
            if let Some(record) = &line.progress {
                progress_line(record, json);
            }
        },
    )
    .map_err(CliError::from)?;
    if let Some(w) = &reply.wave {
        for (k, row) in w.waves.iter().enumerate() {
            eprintln!("wave {}: {} ({})", k + 1, row.state, row.agents.join(", "));
        }
    }
    if reply.ok != Some(true) {
        return Err(CliError::failed(anyhow!(
            "{}",
            reply.error.unwrap_or_default()
        )));
    }
    let moved = reply.wave.as_ref().map_or(0, |w| w.selected);
    eprintln!("moved {moved} agents: telephony ON, DN back in service, wave after wave");
    Ok(())
}

/// Flags a wave plan does not take (exit 2, nothing changed): a local
/// session's, a drill's, and no `--reason`.
fn refuse_for_waves(args: &SwitchArgs) -> CliResult {
    if args.session.backend.is_some() || args.session.scenario.is_some() {
        return Err(CliError::bad_input(anyhow!(
            "--agents and --wave move agents of a running fleet watcher (drctl watch --agents \
             FILE), not a local drill: drop --backend and --scenario"
        )));
    }
    let flags = [
        ("--abort-after", args.abort_after.is_some()),
        ("--lifetime", args.lifetime.is_some()),
        ("--rto", args.rto.is_some()),
        ("--report", args.report.is_some()),
    ];
    if let Some((flag, _)) = flags.iter().find(|(_, set)| *set) {
        return Err(CliError::bad_input(anyhow!(
            "{flag} is for one agent's drill, not a wave plan: nothing was changed"
        )));
    }
    if args.reason.is_none() {
        return Err(CliError::bad_input(anyhow!(
            "a wave plan needs --reason TEXT (recorded in the watcher's history); nothing was changed"
        )));
    }
    Ok(())
}

/// One progress line of a watcher's switch: a decision record (with its
/// agent in a fleet) or a note of the wave plan.
fn progress_line(record: &serde_json::Value, json: bool) {
    if json {
        println!("{record}");
        return;
    }
    let t = record.get("t").and_then(|t| t.as_u64());
    if let (Some(t), Ok(d)) = (
        t,
        serde_json::from_value::<drctl_policy::Decision>(record.clone()),
    ) {
        let who = record
            .get("agent")
            .and_then(|a| a.as_str())
            .map(|a| format!("{:<10} ", crate::logging::escape(a)))
            .unwrap_or_default();
        let line = describe(drctl_policy::Timestamp::from_nanos(t), &d);
        // `describe` starts with the time (right-aligned): the agent goes after it.
        let body = line.trim_start();
        let pad = &line[..line.len() - body.len()];
        match body.split_once("  ") {
            Some((time, rest)) if !who.is_empty() => {
                println!("{pad}{time}  {who}{}", rest.trim_start())
            }
            _ => println!("{line}"),
        }
    } else if let Ok(note) = serde_json::from_value::<crate::report::Note>(record.clone()) {
        println!("{}", note.describe());
    }
}

/// Asks on the terminal, naming the agent, the sites and who acts; refuses
/// without a terminal.
fn confirm(plan: &Plan) -> Result<(), CliError> {
    ask(&format!(
        "Switch agent {} from {} to {}, performed by {}? This logs the agent in again.",
        crate::logging::escape(&plan.agent),
        plan.origin_text(),
        plan.target_text(),
        plan.actor
    ))
}

/// Asks `question` on the terminal; refuses without a terminal.
fn ask(question: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::bad_input(anyhow!(
            "refusing to switch without confirmation: stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(CliError::failed)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::bad_input(anyhow!(
            "not confirmed; nothing was changed"
        )))
    }
}

/// A spinner on stderr, only when stderr is a terminal and output is for people.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(for_people: bool) -> Self {
        let on_terminal = std::io::stderr().is_terminal();
        Progress((for_people && on_terminal).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    fn say(&self, msg: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(msg.to_owned());
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    /// Where decisions go: stdout, above the spinner when there is one (so
    /// that a decision line and the spinner never share a terminal line).
    fn writer(&self) -> Box<dyn Write> {
        match &self.0 {
            Some(bar) => Box::new(AboveBar {
                bar: bar.clone(),
                line: Vec::new(),
            }),
            None => Box::new(std::io::stdout()),
        }
    }
}

/// Writes whole lines to stdout with the spinner cleared meanwhile.
struct AboveBar {
    bar: indicatif::ProgressBar,
    line: Vec<u8>,
}

impl Write for AboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        if let Some(end) = self.line.iter().rposition(|&b| b == b'\n') {
            let whole: Vec<u8> = self.line.drain(..=end).collect();
            self.bar.suspend(|| {
                let mut out = std::io::stdout().lock();
                out.write_all(&whole).and_then(|()| out.flush())
            })?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

//! `drctl status`: what a running `drctl watch` sees, through its control socket.

use crate::args::{AgentArg, GlobalArgs, OutputFormat};
use crate::control::{self, Request};
use crate::exit::{CliError, CliResult};
use crate::host::observe::describe;
use crate::ops::backend::{client_config, control_socket};
use crate::report::{DrillRow, FleetReport, ScheduledRow, StatusReport, WaveReport};
use anyhow::anyhow;
use clap::Args;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Show the running watcher's site, epoch, listeners, pending timers, alarms,
/// pause state, last decisions and uptime.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    agent: AgentArg,
    /// Text for people or one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Ask again every --interval: redrawn in place on a terminal, one status
    /// after another otherwise (JSON: one object a line); until Ctrl-C.
    #[arg(long)]
    watch: bool,
    /// With --watch: how often (e.g. "500ms", "5s").
    #[arg(long, value_name = "DURATION", default_value = "2s", requires = "watch",
          value_parser = drctl_plugin_api::duration::parse)]
    interval: Duration,
    /// With --watch: stop after this many statuses.
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u64>,
}

/// How long a client waits for the watcher's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest `--interval` (a status is cheap, but not free for the watcher).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Runs `drctl status`.
pub fn run(args: StatusArgs, global: &GlobalArgs) -> CliResult {
    let target = match find(global, args.agent.agent.as_deref())? {
        Found::One(target) => target,
        Found::Several(watchers) => return list(&watchers, args.output),
    };
    if !args.watch {
        return print_answer(&target.answer(&Request::Status)?, args.output);
    }
    if args.interval < MIN_INTERVAL {
        return Err(CliError::bad_input(anyhow!(
            "--interval {}: expected at least {}",
            humantime::format_duration(args.interval),
            humantime::format_duration(MIN_INTERVAL)
        )));
    }
    // In place only for people at a terminal; a pipe or file gets each status
    // whole, one after another.
    let in_place = args.output == OutputFormat::Text && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    loop {
        let status = target.answer(&Request::Status)?;
        if in_place {
            // Home and clear, as watch(1) does: robust to wrapped lines.
            let header = format!(
                "every {} (Ctrl-C to stop)\n\n",
                humantime::format_duration(args.interval)
            );
            super::print_stdout(&format!("\x1b[H\x1b[2J{header}{}", status.render()))?;
        } else {
            if shown > 0 && args.output == OutputFormat::Text {
                super::print_stdout("\n")?;
            }
            print_answer(&status, args.output)?;
        }
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            return Ok(());
        }
        std::thread::sleep(args.interval);
    }
}

/// What a watcher answers to `status`: one agent's, or a fleet's.
pub enum Answer {
    /// One agent (a one-agent watcher, or `--agent NAME`).
    One(Box<StatusReport>),
    /// A fleet watcher asked without `--agent`.
    Fleet(Box<FleetReport>),
}

impl Answer {
    fn render(&self) -> String {
        match self {
            Answer::One(s) => render(s),
            Answer::Fleet(f) => render_fleet(f),
        }
    }
}

/// An answer, as asked.
fn print_answer(answer: &Answer, output: OutputFormat) -> CliResult {
    match (answer, output) {
        (Answer::One(s), _) => print(s, output),
        (Answer::Fleet(f), OutputFormat::Json) => {
            let value = serde_json::to_value(f).map_err(CliError::failed)?;
            super::print_stdout(&format!("{value}\n"))
        }
        (Answer::Fleet(f), OutputFormat::Text) => super::print_stdout(&render_fleet(f)),
    }
}

/// A fleet's status for people: the summary, then a row per agent.
pub fn render_fleet(f: &FleetReport) -> String {
    let s = &f.summary;
    let mut out = format!(
        "fleet      {} agents (backend {}, pid {}, up {})\n",
        s.agents,
        or_dash(f.backend.as_deref()),
        f.pid,
        f.uptime
    );
    out.push_str(&format!(
        "summary    {} watching, {} in service, {} switching, {} paused, {} with alarms\n",
        s.watching, s.in_service, s.switching, s.paused, s.alarmed
    ));
    let sites: Vec<String> = s
        .sites
        .iter()
        .map(|c| format!("{} {}", c.site, c.agents))
        .collect();
    out.push_str(&format!("sites      {}\n", list_or_none(sites)));
    if let Some(w) = &f.wave {
        out.push_str(&wave_lines(w));
    }
    for row in &f.scheduled {
        out.push_str(&format!("scheduled  {}\n", scheduled_line(row)));
    }
    for row in &f.drills {
        out.push_str(&format!("drill      {}\n", drill_line(row)));
    }
    out.push_str(&format!(
        "  {:<16} {:<8} {:<12} {:<8} {:<6} {}\n",
        "agent", "site", "phase", "dn", "paused", "alarms"
    ));
    for a in &f.agents {
        let mut alarms = list_or_none(a.alarms.clone());
        if let Some(sw) = &a.switchover {
            alarms.push_str(&format!("; switching {} -> {}", sw.from, sw.to));
        }
        out.push_str(&format!(
            "  {:<16} {:<8} {:<12} {:<8} {:<6} {}\n",
            crate::logging::escape(&a.agent),
            or_dash(a.site.as_deref()),
            a.phase,
            a.dn,
            if a.paused { "yes" } else { "no" },
            alarms
        ));
    }
    if f.more > 0 {
        out.push_str(&format!(
            "  ... and {} more (drctl status --agent NAME for one)\n",
            f.more
        ));
    }
    out
}

/// One status, as asked.
fn print(status: &StatusReport, output: OutputFormat) -> CliResult {
    match output {
        // Through `Value`, whose keys are sorted: the shape scripts read.
        OutputFormat::Json => {
            let value = serde_json::to_value(status).map_err(CliError::failed)?;
            super::print_stdout(&format!("{value}\n"))
        }
        OutputFormat::Text => super::print_stdout(&render(status)),
    }
}

/// Several watchers run here and none was named: one line (or JSON object) each.
fn list(watchers: &[(String, PathBuf)], output: OutputFormat) -> CliResult {
    let statuses: Vec<(String, Result<StatusReport, CliError>)> = watchers
        .iter()
        .map(|(agent, path)| {
            let target = Target {
                path: path.clone(),
                agent: None,
            };
            (agent.clone(), target.ask(&Request::Status))
        })
        .collect();
    if output == OutputFormat::Json {
        let all: Vec<Value> = statuses
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect();
        return super::print_stdout(&format!("{}\n", Value::Array(all)));
    }
    let mut out = format!(
        "{} watchers run here; drctl status --agent NAME for one:\n",
        watchers.len()
    );
    out.push_str(&format!(
        "  {:<16} {:>8}  {:<8} {:<12} {}\n",
        "agent", "pid", "site", "phase", "alarms"
    ));
    for (agent, status) in &statuses {
        let row = match status {
            Ok(s) => format!(
                "{:>8}  {:<8} {:<12} {}",
                s.pid,
                or_dash(s.site.as_deref()),
                s.phase,
                list_or_none(s.alarms.clone())
            ),
            Err(e) => format!("{:>8}  {e}", "-"),
        };
        out.push_str(&format!("  {:<16} {row}\n", crate::logging::escape(agent)));
    }
    super::print_stdout(&out)
}

/// Which watcher a client talks to, and for which of its agents.
pub struct Target {
    /// The watcher's control socket.
    pub path: PathBuf,
    /// The agent named with `--agent` (`None`: the watcher's only one).
    pub agent: Option<String>,
}

/// The watcher(s) a client command may mean.
pub enum Found {
    /// This one.
    One(Target),
    /// No config and no `--agent`, and several watchers run here: `(agent, socket)`.
    Several(Vec<(String, PathBuf)>),
}

/// The watcher for `--agent NAME`, else the config's agent's, without
/// looking for others.
pub fn configured(global: &GlobalArgs, agent: Option<&str>) -> Result<Target, CliError> {
    let cfg = client_config(global)?;
    Ok(Target {
        path: match agent {
            Some(name) => control::agent_socket_path(cfg.control.socket.as_deref(), name),
            None => control_socket(&cfg),
        },
        agent: agent.map(str::to_owned),
    })
}

/// The watcher for `--agent NAME`, else the config's agent's; with neither
/// (no config names the agent or the socket), the one running here, or all
/// of them when several run.
pub fn find(global: &GlobalArgs, agent: Option<&str>) -> Result<Found, CliError> {
    let cfg = client_config(global)?;
    if let Some(name) = agent {
        return Ok(Found::One(Target {
            path: control::agent_socket_path(cfg.control.socket.as_deref(), name),
            agent: Some(name.to_owned()),
        }));
    }
    let configured = Target {
        path: control_socket(&cfg),
        agent: None,
    };
    if cfg.agent.username.is_some() || cfg.control.socket.is_some() {
        return Ok(Found::One(configured));
    }
    let mut running = control::running_watchers();
    Ok(match running.len() {
        // Nobody answers: the default path's error says where it looked.
        0 => Found::One(configured),
        1 => {
            let (_, path) = running.remove(0);
            Found::One(Target { path, agent: None })
        }
        _ => Found::Several(running),
    })
}

/// The one watcher a command that changes something talks to: several
/// running without a name is refused (exit 2), naming them.
pub fn one(global: &GlobalArgs, agent: Option<&str>) -> Result<Target, CliError> {
    match find(global, agent)? {
        Found::One(target) => Ok(target),
        Found::Several(watchers) => {
            let names: Vec<String> = watchers
                .iter()
                .map(|(a, p)| format!("{} ({})", crate::logging::escape(a), p.display()))
                .collect();
            Err(CliError::bad_input(anyhow!(
                "{} watchers run here: {}; name one with --agent NAME",
                watchers.len(),
                names.join(", ")
            )))
        }
    }
}

impl Target {
    /// Sends a one-answer request to the watcher; one agent's status or a fleet's.
    pub fn answer(&self, request: &Request) -> Result<Answer, CliError> {
        let reply = self.accepted(request, "the watcher refused: ")?;
        Ok(match reply.fleet {
            Some(fleet) => Answer::Fleet(Box::new(fleet)),
            None => Answer::One(Box::new(reply.status.unwrap_or_default())),
        })
    }

    /// Sends a one-answer request to the watcher; its status on success.
    pub fn ask(&self, request: &Request) -> Result<StatusReport, CliError> {
        Ok(self
            .accepted(request, "the watcher refused: ")?
            .status
            .unwrap_or_default())
    }

    /// The watcher's reply to `request`, which it must have accepted; a
    /// refusal fails with `refused` followed by the watcher's reason.
    pub fn accepted(&self, request: &Request, refused: &str) -> Result<control::Reply, CliError> {
        let reply = control::request(
            &self.path,
            self.agent.as_deref(),
            request,
            ANSWER_TIMEOUT,
            |_| {},
        )
        .map_err(CliError::from)?;
        if reply.ok != Some(true) {
            return Err(CliError::failed(anyhow!(
                "{refused}{}",
                reply.error.unwrap_or_default()
            )));
        }
        Ok(reply)
    }
}

/// `-` for what is not known.
fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// A list, or `none`.
fn list_or_none(items: Vec<String>) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The status for people.
pub fn render(s: &StatusReport) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line(
        "agent",
        format!(
            "{} (backend {}, pid {}, up {})",
            or_dash(s.agent.as_deref()),
            or_dash(s.backend.as_deref()),
            s.pid,
            s.uptime
        ),
    );
    let epoch = s.epoch.map_or_else(|| "-".to_owned(), |e| e.to_string());
    line(
        "site",
        format!(
            "{} (preferred {}), epoch {epoch}, {}",
            or_dash(s.site.as_deref()),
            or_dash(s.preferred_site.as_deref()),
            s.phase
        ),
    );
    let l = &s.listeners;
    line(
        "listeners",
        format!(
            "telephony {}, configuration {}, statistic {}, DN {}",
            l.telephony, l.configuration, l.statistic, l.dn
        ),
    );
    line("paused", paused_text(s));
    let timers = s
        .timers
        .iter()
        .map(|t| format!("{} in {}", t.timer, t.left));
    line("timers", list_or_none(timers.collect()));
    line("alarms", list_or_none(s.alarms.clone()));
    if let Some(sw) = &s.switchover {
        line(
            "switchover",
            format!("{} {} -> {}", sw.reason, sw.from, sw.to),
        );
    }
    if let Some(row) = &s.scheduled {
        line("scheduled", scheduled_line(row));
    }
    if let Some(row) = &s.drill {
        line("drill", drill_line(row));
    }
    out.push_str("last decisions:\n");
    for d in &s.last_decisions {
        out.push_str(&decision_line(d));
    }
    out
}

/// Whether automatic switchovers are held, by whom, why and until when.
fn paused_text(s: &StatusReport) -> String {
    match (&s.pause, s.paused) {
        (_, false) => "no".to_owned(),
        (None, true) => "yes: automatic switchovers are held (drctl resume)".to_owned(),
        (Some(p), true) => {
            let until = p.left.as_ref().map_or_else(
                || "until drctl resume".to_owned(),
                |left| format!("resumes by itself in {left}"),
            );
            let why = p
                .reason
                .as_ref()
                .map_or_else(String::new, |r| format!(": {}", crate::logging::escape(r)));
            format!("yes, by {}, {until}{why}", p.by)
        }
    }
}

/// A scheduled switch in one line: when, where to, who asked and why.
pub fn scheduled_line(row: &ScheduledRow) -> String {
    let skip = if row.skip_gates.is_empty() {
        String::new()
    } else {
        format!(", skipping gate(s) {}", row.skip_gates.join(", "))
    };
    let when = match &row.held {
        Some(h) => format!(
            "due, waiting for the {} to end (at most {} more)",
            crate::logging::escape(&h.by),
            h.at_most
        ),
        None => format!("in {}", row.left),
    };
    format!(
        "switch of {} to {} at {} ({when}), by {}: {}{skip}",
        crate::logging::escape(&row.agent),
        crate::logging::escape(row.to.as_deref().unwrap_or("the other site")),
        row.at,
        row.by,
        crate::logging::escape(&row.reason)
    )
}

/// A drill under way in one line: where it goes, its stage, who and why.
pub fn drill_line(row: &DrillRow) -> String {
    format!(
        "{} {} -> {}, {} (at most {} more), started {} by {}: {}",
        crate::logging::escape(&row.agent),
        crate::logging::escape(&row.origin),
        crate::logging::escape(&row.target),
        crate::logging::escape(&row.stage),
        row.ends_in,
        row.started,
        row.by,
        crate::logging::escape(&row.reason)
    )
}

/// A wave plan for people: a header line, then a line per wave.
fn wave_lines(w: &WaveReport) -> String {
    let next = w
        .next_in
        .as_ref()
        .map_or_else(String::new, |n| format!(", next wave in {n}"));
    let mut out = format!(
        "waves      {}: {} agents to {} in {} waves, wave {} of {}{next}; by {}: {}\n",
        w.state,
        w.selected,
        crate::logging::escape(w.to.as_deref().unwrap_or("their other site")),
        w.waves.len(),
        w.current,
        w.waves.len(),
        w.by,
        crate::logging::escape(&w.reason)
    );
    for (k, row) in w.waves.iter().enumerate() {
        let names: Vec<String> = row
            .agents
            .iter()
            .map(|a| crate::logging::escape(a).into_owned())
            .collect();
        out.push_str(&format!(
            "  wave {:<3} {:<10} {}\n",
            k + 1,
            row.state,
            names.join(", ")
        ));
    }
    out
}

/// One decision record, as `describe` says it.
fn decision_line(d: &Value) -> String {
    let t = drctl_policy::Timestamp::from_nanos(d["t"].as_u64().unwrap_or_default());
    match serde_json::from_value::<drctl_policy::Decision>(d.clone()) {
        Ok(decision) => format!("  {}\n", describe(t, &decision)),
        // A watcher of another drctl version may know decisions this one does not.
        Err(_) => format!(
            "  {:>12}  {}\n",
            crate::host::observe::millis(t),
            d["type"].as_str().unwrap_or("-")
        ),
    }
}

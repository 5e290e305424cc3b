//! `drctl status`: what a running `drctl watch` sees, through its control socket.

use crate::args::{GlobalArgs, OutputFormat};
use crate::control::{self, Request};
use crate::exit::{CliError, CliResult};
use crate::host::observe::describe;
use crate::ops::backend::{client_config, control_socket};
use crate::report::StatusReport;
use anyhow::anyhow;
use clap::Args;
use serde_json::Value;
use std::time::Duration;

/// Show the running watcher's site, epoch, listeners, pending timers, alarms,
/// pause state, last decisions and uptime.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Text for people or one JSON object.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// How long a client waits for the watcher's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `drctl status`.
pub fn run(args: StatusArgs, global: &GlobalArgs) -> CliResult {
    let status = ask(global, Request::Status)?;
    match args.output {
        // Through `Value`, whose keys are sorted: the shape scripts read.
        OutputFormat::Json => {
            let value = serde_json::to_value(&status).map_err(CliError::failed)?;
            super::print_stdout(&format!("{value}\n"))
        }
        OutputFormat::Text => super::print_stdout(&render(&status)),
    }
}

/// Sends a one-answer request to the watcher; its status on success.
pub fn ask(global: &GlobalArgs, request: Request) -> Result<StatusReport, CliError> {
    let cfg = client_config(global)?;
    let path = control_socket(&cfg);
    let reply =
        control::request(&path, &request, ANSWER_TIMEOUT, |_| {}).map_err(CliError::from)?;
    if reply.ok != Some(true) {
        return Err(CliError::failed(anyhow!(
            "the watcher refused: {}",
            reply.error.unwrap_or_default()
        )));
    }
    Ok(reply.status.unwrap_or_default())
}

/// `-` for what is not known.
fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

/// A list, or `none`.
fn list(items: Vec<String>) -> String {
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
    let paused = if s.paused {
        "yes: automatic switchovers are held (drctl resume)"
    } else {
        "no"
    };
    line("paused", paused.to_owned());
    let timers = s
        .timers
        .iter()
        .map(|t| format!("{} in {}", t.timer, t.left));
    line("timers", list(timers.collect()));
    line("alarms", list(s.alarms.clone()));
    if let Some(sw) = &s.switchover {
        line(
            "switchover",
            format!("{} {} -> {}", sw.reason, sw.from, sw.to),
        );
    }
    out.push_str("last decisions:\n");
    for d in &s.last_decisions {
        out.push_str(&decision_line(d));
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
            t.to_string(),
            d["type"].as_str().unwrap_or("-")
        ),
    }
}

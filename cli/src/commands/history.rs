//! `drctl history`: every decision of every watcher and drill on this host,
//! from the audit log (`[history]`), oldest first.

use crate::args::{GlobalArgs, OutputFormat};
use crate::exit::{CliError, CliResult};
use crate::history::{self, Filter};
use crate::ops::backend::client_config;
use anyhow::anyhow;
use clap::Args;
use std::fmt::Write as _;

/// Show the decisions of every watcher and drill on this host (switchovers,
/// alarms, refusals), with who ran them and why.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only the last DURATION (e.g. `2h`, `7days`).
    #[arg(long, value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    since: Option<std::time::Duration>,
    /// Only this agent's decisions.
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// Only decisions of this type (e.g. `switchover-completed`).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// At most the N newest.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// Text for people or JSON Lines (one record a line, as logged).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// Runs `drctl history`.
pub fn run(args: HistoryArgs, global: &GlobalArgs) -> CliResult {
    let cfg = client_config(global)?;
    let path = history::path(&cfg.history).ok_or_else(|| {
        CliError::bad_input(anyhow!(
            "no history file: set history.file (no $STATE_DIRECTORY and no home directory)"
        ))
    })?;
    let since = match args.since {
        Some(d) => Some(std::time::SystemTime::now().checked_sub(d).ok_or_else(|| {
            CliError::bad_input(anyhow!(
                "--since {}: too far back",
                humantime::format_duration(d)
            ))
        })?),
        None => None,
    };
    let filter = Filter {
        since,
        agent: args.agent,
        kind: args.kind,
        last: args.last,
    };
    let read = history::read(&path, &filter)
        .map_err(|e| CliError::failed(anyhow!("{}: {e}", path.display())))?;
    if read.skipped > 0 {
        tracing::warn!(
            "{}: {} unreadable lines skipped (cut by a crash?)",
            path.display(),
            read.skipped
        );
    }
    let mut text = String::new();
    match args.output {
        OutputFormat::Json => {
            for line in &read.lines {
                let _ = writeln!(text, "{line}");
            }
        }
        OutputFormat::Text => {
            if read.lines.is_empty() {
                tracing::info!("{}: no decisions recorded", path.display());
            }
            for line in &read.lines {
                text.push_str(&render(line));
            }
        }
    }
    super::print_stdout(&text)
}

/// One line for people: time, agent, type, what, who, why.
fn render(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    let what: Vec<String> = [
        "reason",
        "from",
        "to",
        "site",
        "alarm",
        "error",
        "why",
        "operator_reason",
    ]
    .iter()
    .filter_map(|k| {
        v.get(*k)
            .and_then(|x| x.as_str())
            .map(|x| format!("{k}={x}"))
    })
    .collect();
    let who = match (s("user"), v.get("uid")) {
        ("", Some(uid)) => format!("uid {uid}"),
        (user, _) => user.to_owned(),
    };
    format!(
        "{:<24} {:<12} {:<24} {:<40} {} ({} {})\n",
        s("time"),
        s("agent"),
        s("type"),
        what.join(" "),
        who,
        s("command"),
        v.get("pid").map(ToString::to_string).unwrap_or_default(),
    )
}

//! `drctl status`: what a running `drctl watch` sees, through its control socket.

use crate::args::GlobalArgs;
use crate::control::{self, Request};
use crate::exit::{CliError, CliResult};
use crate::host::observe::describe;
use crate::session::{client_config, control_socket, OutputFormat};
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
        OutputFormat::Json => super::print_stdout(&format!("{status}\n")),
        OutputFormat::Text => super::print_stdout(&render(&status)),
    }
}

/// Sends a one-answer request to the watcher; its status on success.
pub fn ask(global: &GlobalArgs, request: Request) -> Result<Value, CliError> {
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

/// The status for people.
pub fn render(s: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line(
        "agent",
        format!(
            "{} (backend {}, pid {}, up {})",
            text(&s["agent"]),
            text(&s["backend"]),
            text(&s["pid"]),
            text(&s["uptime"])
        ),
    );
    line(
        "site",
        format!(
            "{} (preferred {}), epoch {}, {}",
            text(&s["site"]),
            text(&s["preferred_site"]),
            text(&s["epoch"]),
            text(&s["phase"])
        ),
    );
    let l = &s["listeners"];
    line(
        "listeners",
        format!(
            "telephony {}, configuration {}, statistic {}, DN {}",
            text(&l["telephony"]),
            text(&l["configuration"]),
            text(&l["statistic"]),
            text(&l["dn"])
        ),
    );
    let paused = if s["paused"] == Value::Bool(true) {
        "yes: automatic switchovers are held (drctl resume)"
    } else {
        "no"
    };
    line("paused", paused.to_owned());
    let list = |v: &Value, f: &dyn Fn(&Value) -> String| {
        let items: Vec<String> = v.as_array().into_iter().flatten().map(f).collect();
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    line(
        "timers",
        list(&s["timers"], &|t| {
            format!("{} in {}", text(&t["timer"]), text(&t["in"]))
        }),
    );
    line("alarms", list(&s["alarms"], &|a| text(a)));
    if let Some(sw) = s["switchover"].as_object() {
        line(
            "switchover",
            format!(
                "{} {} -> {}",
                text(&sw["reason"]),
                text(&sw["from"]),
                text(&sw["to"])
            ),
        );
    }
    out.push_str("last decisions:\n");
    for d in s["last_decisions"].as_array().into_iter().flatten() {
        let t = drctl_policy::Timestamp::from_nanos(d["t"].as_u64().unwrap_or_default());
        match serde_json::from_value::<drctl_policy::Decision>(d.clone()) {
            Ok(decision) => out.push_str(&format!("  {}\n", describe(t, &decision))),
            // A watcher of another drctl version may know decisions this one does not.
            Err(_) => out.push_str(&format!("  {:>12}  {}\n", t.to_string(), text(&d["type"]))),
        }
    }
    out
}

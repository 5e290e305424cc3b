//! `drctl watch`: start up, watch, alarm and switch until stopped (SPEC §1),
//! with the control socket, alarm sinks and metrics of a long-running watcher.

use crate::args::{GlobalArgs, SessionArgs};
use crate::exit::{CliError, CliResult};
use crate::ops::watch::{watch, Until};
use anyhow::Context;
use clap::Args;
use std::time::Duration;

/// Start up on the preferred site, watch the four listeners, raise alarms and
/// switch sites when the DR policy says so, until SIGINT/SIGTERM.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Stop at the scenario's `end` (mock backend).
    #[arg(long)]
    until_end: bool,
    /// Stop after this much session time (e.g. "1h"; on the virtual clock, at once).
    #[arg(long = "for", value_name = "DURATION", value_parser = drctl_plugin_api::duration::parse)]
    run_for: Option<Duration>,
    /// Fleet mode: a TOML file of `[[agents]]` entries (like `[agent]`), one
    /// backend session each; replaces the config's `[[agents]]`.
    #[arg(long, value_name = "FILE")]
    agents: Option<std::path::PathBuf>,
    /// Shadow mode: also run the policy with these config changes (e.g.
    /// `policy.site-timeout=10s`, repeatable) on the same live inputs, never
    /// acting; every decision it does not share with the live policy is logged.
    #[arg(long, value_name = "KEY=VALUE", value_parser = crate::args::parse_key_value)]
    shadow: Vec<(String, String)>,
}

/// A `--agents FILE`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    agents: Vec<drctl_config::AgentConfig>,
}

/// The `--set agents=[...]` override that puts `file`'s agents in the config.
fn agents_override(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--agents {}", file.display()))?;
    let parsed: AgentsFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim()))?;
    let value = toml::Value::try_from(&parsed.agents)?;
    Ok(("agents".to_owned(), value.to_string()))
}

/// Runs `drctl watch`.
pub fn run(args: WatchArgs, global: &GlobalArgs) -> CliResult {
    let mut global = global.clone();
    if let Some(file) = &args.agents {
        global
            .set
            .push(agents_override(file).map_err(CliError::bad_input)?);
    }
    let until = match (args.until_end, args.run_for) {
        (true, _) => Until::ScenarioEnd,
        (false, Some(d)) => Until::For(d),
        (false, None) => Until::Stopped,
    };
    watch(&global, &args.session, until, &args.shadow)
}

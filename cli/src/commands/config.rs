//! `drctl config show [--origin]` and `drctl config check`.

use clap::{Args, Subcommand};
use drctl_config::{broken_listing, layer_listing, Config};

use crate::args::GlobalArgs;
use crate::commands::print_stdout;
use crate::exit::CliResult;
use crate::ops::backend::{agent_name, scenario_dr_options};

/// `drctl config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with the configuration.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `drctl config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Show {
        /// Print the layers, then every key as `key = value   # origin`
        /// (file:line, env variable, --set or default) and the values drctl
        /// derives (control socket, where the DR options come from). When the
        /// configuration is invalid, the key at fault is marked (exit 2).
        #[arg(long)]
        origin: bool,
    },
    /// Check everything `drctl watch` would refuse before connecting (config,
    /// password source, plugin, alarm sink commands, control socket directory);
    /// prints "ok: FILES" or the error (exit 2).
    Check,
}

/// Runs a `drctl config` subcommand.
pub fn run(args: ConfigArgs, global: &GlobalArgs) -> CliResult {
    match args.command {
        ConfigCommand::Show { origin } => show(global, origin),
        ConfigCommand::Check => check(global),
    }
}

fn show(global: &GlobalArgs, origin: bool) -> CliResult {
    let opts = global.load_options();
    let loaded = Config::load(&opts);
    if !origin {
        let config = loaded?;
        let header = format!("# effective configuration from: {}\n", sources(&config));
        return print_stdout(&(header + &config.redacted_toml()));
    }
    match loaded {
        Ok(config) => print_stdout(&format!(
            "{}{}{}",
            layer_listing(&opts),
            config.origin_listing(),
            derived(&config)
        )),
        // Exactly when it is needed: what each layer set, the bad key marked.
        Err(e) => {
            print_stdout(&format!(
                "{}{}",
                layer_listing(&opts),
                broken_listing(&opts, &e)
            ))?;
            Err(e.into())
        }
    }
}

/// What drctl works out from the keys: the control socket, and where each
/// DR option (D1, D4) comes from.
fn derived(config: &Config) -> String {
    let mut out = String::from("# derived (not keys: what drctl works out from them)\n");
    out.push_str(&socket_line(config));
    out.push_str(&dr_option_lines(config));
    out
}

/// Where the watcher binds its control socket, and why there.
fn socket_line(config: &Config) -> String {
    let socket = crate::control::socket_path(config.control.socket.as_deref(), &agent_name(config));
    let how = match &config.control.socket {
        Some(_) => "control.socket".to_owned(),
        None => format!(
            "control.socket not set: the default for agent {}",
            agent_name(config)
        ),
    };
    format!(
        "control socket = {:?}   # {how}\n",
        socket.display().to_string()
    )
}

/// The DR options in force (S3) and where each comes from: the config,
/// the mock scenario, or the AIL Application read at startup.
fn dr_option_lines(config: &Config) -> String {
    let mut out = String::new();
    let origins = config.origins();
    let origin_of = |key: &str| {
        origins
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.origin.to_string())
            .unwrap_or_default()
    };
    let scenario = (config.backend.name == "mock")
        .then(|| config.backend.table_json("mock"))
        .and_then(|t| t.get("scenario")?.as_str().map(std::path::PathBuf::from));
    let from_scenario = scenario.as_deref().and_then(scenario_dr_options);
    let options = [
        ("site-timeout", config.policy.site_timeout),
        (
            "site-sip-register-timeout",
            config.policy.site_sip_register_timeout,
        ),
    ];
    for (k, (key, set)) in options.into_iter().enumerate() {
        let line = match (set, &scenario, &from_scenario) {
            (Some(d), _, _) => format!(
                "{key} = {:?}   # policy.{key} ({}), over the AIL Application's",
                humantime::format_duration(d).to_string(),
                origin_of(&format!("policy.{key}"))
            ),
            (None, Some(path), Some(values)) => match &values[k] {
                Some(v) => format!(
                    "{key} = {v:?}   # the mock scenario's deployment.{key} ({}); policy.{key} not set",
                    path.display()
                ),
                None => format!(
                    "{key} = \"0s\"   # not in the mock scenario ({}): off; policy.{key} not set",
                    path.display()
                ),
            },
            (None, Some(path), None) => format!(
                "{key} = \"?\"   # the mock scenario {} cannot be read; policy.{key} not set",
                path.display()
            ),
            (None, None, _) => format!(
                "{key} = \"(read at startup)\"   # the AIL Application's option in section [{}] \
                 (genesys.dr-options-section); policy.{key} not set",
                config.genesys.dr_options_section
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn check(global: &GlobalArgs) -> CliResult {
    let checked = crate::ops::check::check(global)?;
    for warning in checked.config.warnings() {
        eprintln!("warning: {warning}");
    }
    for note in &checked.notes {
        eprintln!("note: {note}");
    }
    print_stdout(&format!("ok: {}\n", sources(&checked.config)))
}

/// The config files read, for humans.
fn sources(config: &Config) -> String {
    if config.files().is_empty() {
        return "no config file (defaults, environment and --set only)".to_owned();
    }
    let files: Vec<String> = config
        .files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    files.join(", ")
}

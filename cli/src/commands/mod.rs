//! One module per subcommand; [`run`] dispatches. To add a subcommand: a file
//! here, a variant in [`Command`], an arm in [`run`].

pub mod completions;
pub mod config;
pub mod events;
pub mod explore;
pub mod history;
pub mod pause;
pub mod plugins;
pub mod replay;
pub mod simulate;
pub mod startup;
pub mod status;
pub mod switch;
pub mod watch;

use clap::{Parser, Subcommand};

use crate::args::GlobalArgs;
use crate::exit::CliResult;

/// `drctl --version`: the release, the git commit it was built from and the
/// plugin ABI it speaks (what a plugin must match).
pub fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (git {}, plugin ABI {}.{})",
            env!("CARGO_PKG_VERSION"),
            env!("DRCTL_GIT_COMMIT"),
            drctl_plugin_api::abi::ABI_MAJOR,
            drctl_plugin_api::abi::ABI_MINOR
        )
    })
}

/// Site Disaster Recovery orchestrator for two-site Genesys SIP Server contact centres.
#[derive(Debug, Parser)]
#[command(name = "drctl", version = version(), propagate_version = true)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or check the configuration.
    Config(config::ConfigArgs),
    /// List the backend plugins drctl can load.
    Plugins(plugins::PluginsArgs),
    /// Run startup (S1-S4) once and report where the agent landed.
    Startup(startup::StartupArgs),
    /// Start up, watch the listeners, alarm and switch sites until stopped.
    Watch(watch::WatchArgs),
    /// A forced switchover (failover drill), verified, with a timing table.
    Switch(switch::SwitchArgs),
    /// Replay a recorded session through today's policy; --check compares.
    Replay(replay::ReplayArgs),
    /// Run a fleet of agents through a mock scenario and report how it recovers.
    Simulate(simulate::SimulateArgs),
    /// Find fault schedules that break a property (seeded, shrunk to a scenario file).
    Explore(explore::ExploreArgs),
    /// Show what the running watcher sees (site, listeners, timers, alarms).
    Status(status::StatusArgs),
    /// Hold the running watcher's automatic switchovers (E3).
    Pause(pause::PauseArgs),
    /// The running watcher's decisions as they happen (--follow), or its recent ones.
    Events(events::EventsArgs),
    /// Every decision of every watcher and drill on this host, with who and why.
    History(history::HistoryArgs),
    /// Release the running watcher's automatic switchovers (E3).
    Resume(pause::ResumeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the manual page, or write all of them into a directory.
    Man(completions::ManArgs),
}

/// Runs `command`.
pub fn run(command: Command, global: &GlobalArgs) -> CliResult {
    match command {
        Command::Config(args) => config::run(args, global),
        Command::Plugins(args) => plugins::run(args, global),
        Command::History(args) => history::run(args, global),
        Command::Events(args) => events::run(args, global),
        Command::Explore(args) => explore::run(args, global),
        Command::Startup(args) => startup::run(args, global),
        Command::Watch(args) => watch::run(args, global),
        Command::Switch(args) => switch::run(args, global),
        Command::Replay(args) => replay::run(args, global),
        Command::Simulate(args) => simulate::run(args, global),
        Command::Status(args) => status::run(args, global),
        Command::Pause(args) => pause::pause(args, global),
        Command::Resume(args) => pause::resume(args, global),
        Command::Completions(args) => completions::completions(args, global),
        Command::Man(args) => completions::man(args, global),
    }
}

pub use crate::exit::print_stdout;

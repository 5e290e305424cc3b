//! `drctl plugins list`: every backend plugin found, and where.

use crate::args::GlobalArgs;
use crate::commands::print_stdout;
use crate::exit::CliResult;
use clap::{Args, Subcommand};
use drctl_plugin_api::loader;

/// Backend plugins.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Name, version, ABI, capabilities and path of every plugin found in
    /// `backend.plugin-dirs` and next to the drctl executable.
    List,
}

/// Runs `drctl plugins ...`.
pub fn run(args: PluginsArgs, global: &GlobalArgs) -> CliResult {
    let PluginsCommand::List = args.command;
    // The plugin dirs are the only key needed; a config without sites is fine here.
    let dirs = drctl_config::figment(&global.load_options())
        .extract_inner::<Vec<std::path::PathBuf>>("backend.plugin-dirs")
        .unwrap_or_default();
    let mut text = String::new();
    for found in loader::list_plugins(&dirs) {
        match found {
            Ok(p) => text.push_str(&format!(
                "{:<12} {:<8} ABI {}.{}  {:<24} {}\n",
                p.name,
                p.version,
                p.abi_major,
                p.abi_minor,
                p.capabilities.to_string(),
                p.path.display()
            )),
            Err(e) => text.push_str(&format!("error: {e}\n")),
        }
    }
    if text.is_empty() {
        let searched: Vec<String> = loader::search_dirs(&dirs)
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        text = format!("no plugins found in: {}\n", searched.join(", "));
    }
    print_stdout(&text)
}

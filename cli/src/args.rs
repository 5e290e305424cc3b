//! The command line's shared options: the global ones and those of the
//! commands that run a session.

use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};
use drctl_config::LoadOptions;

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file to read instead of ./drctl.toml (it must exist).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override a config key, e.g. `--set policy.site-timeout=10s` (repeatable, wins over
    /// files and environment).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warnings, -qq errors, -qqq nothing); RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
}

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

impl GlobalArgs {
    /// The config layers for this command line (SPEC §7).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            config_file: self.config.clone(),
            overrides: self.set.clone(),
            ..LoadOptions::default()
        }
    }

    /// `-v` count minus `-q` count.
    pub fn verbosity(&self) -> i16 {
        i16::from(self.verbose) - i16::from(self.quiet)
    }
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected KEY=VALUE (e.g. policy.site-timeout=10s), got {arg:?}"
        )),
    }
}

/// Which clock runs the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClockKind {
    /// Wall-clock time.
    Real,
    /// Jump to the next deadline (scenarios at full speed; DETERMINISTIC backends only).
    Virtual,
}

impl ClockKind {
    /// The name a recording header keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Real => "real",
            ClockKind::Virtual => "virtual",
        }
    }
}

/// How decisions are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line a decision, for people.
    Text,
    /// One JSON object a line: exactly the decision records (SPEC §6).
    Json,
}

/// Options shared by `watch`, `startup` and `switch`.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Backend plugin to use (overrides `backend.name`).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// Scenario file for the mock backend (sets `backend.mock.scenario`).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// The clock: `real`, or `virtual` to run a scenario at full speed.
    #[arg(long, value_enum, default_value_t = ClockKind::Real)]
    pub clock: ClockKind,
    /// Decisions on stdout as text or JSON lines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Record the session (JSON Lines, SPEC §6) for `drctl replay`; an
    /// existing FILE is refused unless `--force`.
    #[arg(long, value_name = "FILE", conflicts_with = "record_dir")]
    pub record: Option<PathBuf>,
    /// With `--record`: replace an existing FILE.
    #[arg(long, requires = "record")]
    pub force: bool,
    /// Record to a new file in DIR each run, `drctl-<agent>-<UTC time>.jsonl`,
    /// keeping the newest `--record-keep` of this agent's (DIR is made if missing).
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// With `--record-dir`: how many of this agent's recordings to keep, the
    /// new one included; older ones are deleted (never any other file).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub record_keep: u32,
}

impl SessionArgs {
    /// Where this session records, if it does (`agent` names `--record-dir`'s files).
    pub fn record_target(&self, agent: &str) -> Option<RecordTarget> {
        if let Some(path) = &self.record {
            return Some(RecordTarget::File {
                path: path.clone(),
                force: self.force,
            });
        }
        self.record_dir.as_ref().map(|dir| RecordTarget::Dir {
            dir: dir.clone(),
            agent: agent.to_owned(),
            keep: self.record_keep,
        })
    }
}

/// Where a recording goes.
#[derive(Debug, Clone)]
pub enum RecordTarget {
    /// `--record FILE [--force]`.
    File {
        /// The file.
        path: PathBuf,
        /// Replace it if it exists.
        force: bool,
    },
    /// `--record-dir DIR [--record-keep N]`.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The agent, in the file's name.
        agent: String,
        /// How many of this agent's recordings to keep.
        keep: u32,
    },
}

/// `--agent NAME`: which running watcher (and which of its agents) a client
/// command talks to.
#[derive(Debug, Clone, Args)]
pub struct AgentArg {
    /// The agent whose watcher to talk to (default: the config's agent, or the
    /// one watcher running here).
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
}

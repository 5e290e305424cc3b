//! `drctl explore`: find the fault schedule that breaks a policy, before
//! production does.

use crate::args::{GlobalArgs, OutputFormat};
use crate::exit::{CliError, CliResult};
use crate::ops::explore::{explore, Exploration, FaultKind, Finding, Property};
use anyhow::anyhow;
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Run seeded random fault schedules on the mock (virtual clock) against
/// properties; shrink each violation to a minimal scenario file. Exit 1 when
/// a property broke.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// The base scenario: its deployment and events; it must set `deployment.end`.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// How many seeds to try (seeds FIRST..FIRST+N).
    #[arg(long, value_name = "N", default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    first_seed: u64,
    /// The faults schedules draw from.
    #[arg(
        long,
        value_name = "KIND,...",
        default_value = "telephony,configuration,reachable,logout,disconnect",
        value_parser = |s: &str| FaultKind::parse_list(s).map(List)
    )]
    faults: List<FaultKind>,
    /// The properties every run must keep: `rto<=DURATION`, `no-flap[<=DURATION]`, `ends-preferred`.
    #[arg(
        long,
        value_name = "PROPERTY,...",
        default_value = "rto<=60s,no-flap",
        value_parser = |s: &str| Property::parse_list(s).map(List)
    )]
    check: List<Property>,
    /// Where the shrunk failing scenarios are written.
    #[arg(long, value_name = "DIR", default_value = "explore-findings")]
    out: PathBuf,
    /// The findings as text or JSON lines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// A comma-separated flag's values (one clap value, many items).
#[derive(Debug, Clone)]
struct List<T>(Vec<T>);

/// Runs `drctl explore`.
pub fn run(args: ExploreArgs, global: &GlobalArgs) -> CliResult {
    let (faults, check) = (args.faults.0, args.check.0);
    let seeds = args.first_seed
        ..args
            .first_seed
            .checked_add(args.seeds)
            .ok_or_else(|| CliError::bad_input(anyhow!("--first-seed + --seeds overflows")))?;
    // A bar only for people at a terminal (indicatif draws nothing when hidden).
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(args.seeds)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (findings, runs) = explore(
        global,
        &Exploration {
            base: &args.scenario,
            seeds,
            faults: &faults,
            check: &check,
            out: &args.out,
        },
        &|_| bar.inc(1),
    )?;
    bar.finish_and_clear();
    let text = findings_text(&findings, args.output)?;
    tracing::info!(
        "{} seeds, {} runs, {} properties broken",
        args.seeds,
        runs,
        findings.len()
    );
    super::print_stdout(&text)?;
    if findings.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(anyhow!(
            "{} of {} seeds broke a property (scenarios in {})",
            findings.len(),
            args.seeds,
            args.out.display()
        )))
    }
}

/// Each broken property, as `--output` asks: a JSON line, or the seed, the
/// property, the shrunk faults and the scenario file written.
fn findings_text(findings: &[Finding], output: OutputFormat) -> Result<String, CliError> {
    let mut text = String::new();
    for f in findings {
        match output {
            OutputFormat::Json => {
                let line = serde_json::to_string(f).map_err(CliError::failed)?;
                let _ = writeln!(text, "{line}");
            }
            OutputFormat::Text => {
                let _ = writeln!(
                    text,
                    "seed {}: {} broken: {}\n  shrunk {} -> {} faults: {}\n  {}",
                    f.seed,
                    f.property,
                    f.detail,
                    f.faults,
                    f.shrunk.len(),
                    f.shrunk.join("; "),
                    f.file.display()
                );
            }
        }
    }
    Ok(text)
}

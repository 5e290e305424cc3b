//! `drctl simulate`: a fleet of identical agents through a mock scenario on
//! the virtual clock; how long they take to recover and what the surviving
//! site's CS Proxy sees.

use crate::args::{GlobalArgs, OutputFormat};
use crate::exit::{CliError, CliResult};
use crate::fleet::plot::{plot, Line};
use crate::fleet::Report;
use crate::ops::simulate::{simulate, Run};
use clap::Args;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Run N identical agents through a mock scenario on the virtual clock and
/// report the time to recover (p50/p95/p99/max), the peak login rate each
/// site saw (attempts and successful logins), failed logins and agents still down.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The mock scenario (SPEC §6; `deployment.agents` is the default fleet size).
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// How many agents (default: the scenario's `deployment.agents`, else 1).
    #[arg(long, value_name = "N")]
    agents: Option<usize>,
    /// Run once per value of a config key and print one row each,
    /// e.g. `policy.switchover-jitter=0s,30s,120s`.
    #[arg(long, value_name = "KEY=V1,V2,...", value_parser = parse_compare)]
    compare: Option<(String, Vec<String>)>,
    /// Draw agents in service over the whole simulated time as an SVG chart,
    /// the outage and the timeout marked: one line per site, or with
    /// --compare one line per compared value (all sites together).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// The report as text or one JSON object (`--compare`: an array).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

fn parse_compare(s: &str) -> Result<(String, Vec<String>), String> {
    let (key, values) = s.split_once('=').ok_or_else(|| {
        format!("expected KEY=V1,V2,... (e.g. policy.switchover-jitter=0s,30s), got {s:?}")
    })?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
    if key.trim().is_empty() || values.iter().any(String::is_empty) {
        return Err(format!(
            "expected KEY=V1,V2,... with no empty value, got {s:?}"
        ));
    }
    Ok((key.trim().to_owned(), values))
}

/// Runs `drctl simulate`.
pub fn run(args: SimulateArgs, global: &GlobalArgs) -> CliResult {
    let runs: Vec<Option<(String, String)>> = match &args.compare {
        None => vec![None],
        Some((key, values)) => values
            .iter()
            .map(|v| Some((key.clone(), v.clone())))
            .collect(),
    };
    let mut reports = Vec::new();
    let mut lines = Vec::new();
    let mut first = None;
    for set in &runs {
        let started = std::time::Instant::now();
        let run = simulate(global, &args.scenario, args.agents, set.as_ref())?;
        tracing::info!(
            "simulated {} agents over {:.0}s in {:.2}s",
            run.report.agents,
            run.report.end_s,
            started.elapsed().as_secs_f64()
        );
        lines.extend(plot_lines(set.as_ref(), &run));
        reports.push((set.clone(), run.report.clone()));
        first.get_or_insert((run.report.end_s, run.marks));
    }
    if let (Some(path), Some((end_s, marks))) = (&args.plot, &first) {
        let title = match &args.compare {
            Some((key, _)) => format!("agents in service, by {key}"),
            None => "agents in service per site".to_owned(),
        };
        plot(path, &title, &lines, *end_s, marks).map_err(CliError::failed)?;
    }
    super::print_stdout(&report_text(&args, &reports))
}

/// The chart's lines of one run: one per site, or with `--compare` one per
/// compared value (every site's agents together).
fn plot_lines(set: Option<&(String, String)>, run: &Run) -> Vec<Line> {
    match set {
        Some((key, value)) => vec![Line {
            label: format!("{key}={value}"),
            values: run.series.iter().map(|c| c.iter().sum()).collect(),
        }],
        None => run
            .sites
            .iter()
            .enumerate()
            .map(|(k, site)| Line {
                label: site.clone(),
                values: run
                    .series
                    .iter()
                    .map(|c| c.get(k).copied().unwrap_or(0))
                    .collect(),
            })
            .collect(),
    }
}

/// The report (or the comparison) as `--output` asks.
fn report_text(args: &SimulateArgs, reports: &[(Option<(String, String)>, Report)]) -> String {
    let Some((_, first)) = reports.first() else {
        return String::new();
    };
    match (args.output, &args.compare) {
        (OutputFormat::Json, None) => serde_json::to_string(first).unwrap_or_default() + "\n",
        (OutputFormat::Json, Some((key, _))) => {
            let rows: Vec<_> = reports
                .iter()
                .map(|(set, r)| {
                    serde_json::json!({
                        "key": key,
                        "value": set.as_ref().map(|s| s.1.clone()),
                        "report": r,
                    })
                })
                .collect();
            serde_json::to_string(&rows).unwrap_or_default() + "\n"
        }
        (OutputFormat::Text, None) => render(first),
        (OutputFormat::Text, Some((key, _))) => render_compare(key, reports),
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s"))
}

/// The report for people.
fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} agents, {:.0}s simulated: {} recovered at another site, {} not in service at the end",
        r.agents, r.end_s, r.recovered, r.still_down
    );
    let _ = writeln!(
        out,
        "time to recover (outage to DN back in service at the new site): p50 {}  p95 {}  p99 {}  max {}",
        secs(r.ttr_p50_s),
        secs(r.ttr_p95_s),
        secs(r.ttr_p99_s),
        secs(r.ttr_max_s)
    );
    let _ = writeln!(
        out,
        "{:<8} {:>16} {:>14} {:>8} {:>14} {:>18}",
        "site", "peak attempts/s", "peak logins/s", "logins", "failed logins", "in service at end"
    );
    for s in &r.sites {
        let _ = writeln!(
            out,
            "{:<8} {:>16} {:>14} {:>8} {:>14} {:>18}",
            s.site,
            s.peak_attempts_per_s,
            s.peak_logins_per_s,
            s.logins,
            s.failed_logins,
            s.in_service_at_end
        );
    }
    out
}

/// One row per value of the compared key.
fn render_compare(key: &str, reports: &[(Option<(String, String)>, Report)]) -> String {
    let mut out = String::new();
    let sites: Vec<&str> = reports
        .first()
        .map(|(_, r)| r.sites.iter().map(|s| s.site.as_str()).collect())
        .unwrap_or_default();
    let _ = write!(
        out,
        "{key:<28} {:>8} {:>8} {:>8} {:>8}",
        "p50", "p95", "p99", "max"
    );
    for s in &sites {
        let _ = write!(out, " {:>18}", format!("{s} attempts/s"));
    }
    let _ = writeln!(out, " {:>8} {:>10}", "failed", "still down");
    for (set, r) in reports {
        let value = set.as_ref().map_or("", |s| s.1.as_str());
        let _ = write!(
            out,
            "{value:<28} {:>8} {:>8} {:>8} {:>8}",
            secs(r.ttr_p50_s),
            secs(r.ttr_p95_s),
            secs(r.ttr_p99_s),
            secs(r.ttr_max_s)
        );
        for s in &r.sites {
            let _ = write!(out, " {:>18}", s.peak_attempts_per_s);
        }
        let failed: u64 = r.sites.iter().map(|s| s.failed_logins).sum();
        let _ = writeln!(out, " {failed:>8} {:>10}", r.still_down);
    }
    out
}

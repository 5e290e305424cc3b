//! `drctl simulate`: a fleet of identical agents through a mock scenario on
//! the virtual clock; how long they take to recover and what the surviving
//! site's CS Proxy sees.

use crate::args::{GlobalArgs, OutputFormat};
use crate::exit::{CliError, CliResult};
use crate::fleet::Report;
use crate::ops::simulate::simulate;
use anyhow::anyhow;
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
    /// Draw agents in service per site over time as an SVG chart.
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
    for set in &runs {
        let started = std::time::Instant::now();
        let (report, series, sites) = simulate(global, &args.scenario, args.agents, set.as_ref())?;
        tracing::info!(
            "simulated {} agents over {:.0}s in {:.2}s",
            report.agents,
            report.end_s,
            started.elapsed().as_secs_f64()
        );
        if let (Some(path), None) = (&args.plot, &args.compare) {
            plot(path, &series, &sites).map_err(CliError::failed)?;
        }
        reports.push((set.clone(), report));
    }
    let text = match (args.output, &args.compare) {
        (OutputFormat::Json, None) => {
            serde_json::to_string(&reports[0].1).unwrap_or_default() + "\n"
        }
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
        (OutputFormat::Text, None) => render(&reports[0].1),
        (OutputFormat::Text, Some((key, _))) => render_compare(key, &reports),
    };
    super::print_stdout(&text)
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

/// Agents in service per site over time, as an SVG line chart.
fn plot(path: &std::path::Path, series: &[Vec<u32>], sites: &[String]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let max_y = series.iter().flatten().copied().max().unwrap_or(1).max(1);
    let max_x = series.len().max(2) - 1;
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("agents in service per site", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..max_x, 0..max_y + max_y / 20 + 1)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("agents in service")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (k, site) in sites.iter().enumerate() {
        let colour = colours[k % colours.len()];
        chart
            .draw_series(LineSeries::new(
                series
                    .iter()
                    .enumerate()
                    .map(|(x, counts)| (x, counts.get(k).copied().unwrap_or(0))),
                colour.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label(site.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

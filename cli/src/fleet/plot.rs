//! `drctl simulate --plot`: agents in service over the whole simulated time
//! as an SVG line chart, the outage and the timeout marked, the legend
//! beside the chart (never over the data).

use anyhow::anyhow;
use plotters::prelude::*;

/// One line of the chart: its label and a value for each second from 0.
#[derive(Debug, Clone)]
pub struct Line {
    /// The legend's text, e.g. `site1` or `policy.switchover-jitter=30s`.
    pub label: String,
    /// Agents in service at each second.
    pub values: Vec<u32>,
}

/// What the chart marks on the time axis, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    /// A site's outage: the site, when it began and when it ended (the end
    /// of the run if it did not).
    pub outage: Option<(String, f64, f64)>,
    /// When `site-timeout` after the outage's start ran out (D1).
    pub timeout: Option<f64>,
}

/// Line colours, dark enough on white and told apart (Tableau 10).
const PALETTE: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
];

/// Chart size in pixels: the plot and, right of it, the legend.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 500;
const LEGEND: u32 = 260;

/// Writes the chart of `lines` over `0..=end_s` seconds to `path`.
pub fn plot(
    path: &std::path::Path,
    title: &str,
    lines: &[Line],
    end_s: f64,
    marks: &Marks,
) -> anyhow::Result<()> {
    let fail = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(WIDTH - LEGEND);
    let max_y = lines
        .iter()
        .flat_map(|l| l.values.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let top = f64::from(max_y) * 1.05 + 1.0;
    let end_s = end_s.max(1.0);
    let mut chart = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..end_s, 0f64..top)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("agents in service")
        .draw()
        .map_err(|e| fail(&e))?;
    let outage_colour = RED.mix(0.12);
    if let Some((_, from, to)) = &marks.outage {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(*from, 0.0), (*to, top)],
                outage_colour.filled(),
            )))
            .map_err(|e| fail(&e))?;
    }
    if let Some(at) = marks.timeout {
        chart
            .draw_series(DashedLineSeries::new(
                [(at, 0.0), (at, top)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(|e| fail(&e))?;
    }
    let colour = |k: usize| {
        let (r, g, b) = PALETTE[k % PALETTE.len()];
        RGBColor(r, g, b)
    };
    for (k, line) in lines.iter().enumerate() {
        let points = line
            .values
            .iter()
            .enumerate()
            .map(|(x, v)| (x as f64, f64::from(*v)));
        chart
            .draw_series(LineSeries::new(points, colour(k).stroke_width(2)))
            .map_err(|e| fail(&e))?;
    }
    // The legend, right of the chart: one entry per line, then the marks.
    let text = ("sans-serif", 14).into_font().color(&BLACK);
    let mut y = 40i32;
    let mut entry = |swatch: &dyn Fn(i32) -> anyhow::Result<()>, label: &str| {
        swatch(y)?;
        right
            .draw(&Text::new(label.to_owned(), (40, y - 7), text.clone()))
            .map_err(|e| fail(&e))?;
        y += 24;
        anyhow::Ok(())
    };
    for (k, line) in lines.iter().enumerate() {
        let c = colour(k);
        entry(
            &|y| {
                right
                    .draw(&PathElement::new([(8, y), (32, y)], c.stroke_width(2)))
                    .map_err(|e| fail(&e))
            },
            &line.label,
        )?;
    }
    if let Some((site, from, to)) = &marks.outage {
        entry(
            &|y| {
                right
                    .draw(&Rectangle::new(
                        [(8, y - 6), (32, y + 6)],
                        outage_colour.filled(),
                    ))
                    .map_err(|e| fail(&e))
            },
            &format!("outage of {site} ({from:.0}s-{to:.0}s)"),
        )?;
    }
    if let Some(at) = marks.timeout {
        entry(
            &|y| {
                right
                    .draw(&PathElement::new([(8, y), (32, y)], BLACK.stroke_width(1)))
                    .map_err(|e| fail(&e))
            },
            &format!("site-timeout ({at:.0}s)"),
        )?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

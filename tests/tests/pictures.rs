//! What drctl draws and tells other systems (issue 16, item 10): the
//! `simulate --plot` chart, and the `site` and `cause` of alarm sink payloads.

use drctl_e2e::Drctl;

/// The `points` of each `<polyline>` in `svg` drawn with `stroke-width="2"`
/// (the data lines and their legend samples), as pixel pairs.
fn thick_lines(svg: &str) -> Vec<Vec<(i64, i64)>> {
    svg.split("<polyline")
        .skip(1)
        .filter(|p| p.contains("stroke-width=\"2\""))
        .filter_map(|p| {
            let points = p.split("points=\"").nth(1)?.split('"').next()?;
            Some(
                points
                    .split_whitespace()
                    .filter_map(|xy| {
                        let (x, y) = xy.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The x of each `<text>` whose content is `label`.
fn text_x(svg: &str, label: &str) -> Option<i64> {
    svg.split("<text").skip(1).find_map(|t| {
        let (attrs, body) = t.split_once('>')?;
        if body.trim_start().split('<').next()?.trim() != label {
            return None;
        }
        attrs.split("x=\"").nth(1)?.split('"').next()?.parse().ok()
    })
}

#[test]
fn simulate_compare_plots_one_line_per_value_over_the_whole_run_with_the_outage_marked() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("compare.svg");
    Drctl::new(&[
        "simulate",
        "--scenario",
        "plugins/mock/scenarios/fleet-site-outage.toml",
        "--agents",
        "20",
        "--compare",
        "policy.switchover-jitter=0s,30s,120s",
        "--plot",
    ])
    .arg(&svg_path)
    .run_in(dir.path())
    .expect_code(0);
    let svg = std::fs::read_to_string(&svg_path).expect("the chart is written");
    // 600 s simulated: a point a second, 0 to 600, for each compared value.
    let lines = thick_lines(&svg);
    let data: Vec<_> = lines.iter().filter(|l| l.len() > 2).collect();
    assert_eq!(data.len(), 3, "one line per compared value");
    for line in &data {
        assert_eq!(line.len(), 601, "the whole simulated time");
    }
    let right = data
        .iter()
        .flat_map(|l| l.iter().map(|p| p.0))
        .max()
        .unwrap();
    // The legend: beside the plot, never over it.
    for label in [
        "policy.switchover-jitter=0s",
        "policy.switchover-jitter=30s",
        "policy.switchover-jitter=120s",
        "outage of site1 (120s-600s)",
        "site-timeout (150s)",
    ] {
        let x = text_x(&svg, label).unwrap_or_else(|| panic!("no legend entry {label:?}"));
        assert!(
            x > right,
            "{label:?} at x {x}, over the data (right edge {right})"
        );
    }
    // The outage: a shaded band from 120 s to the end.
    assert!(
        svg.contains("opacity=\"0.12\" fill=\"#FF0000\""),
        "no outage band"
    );
}

#[test]
fn sink_payloads_say_where_the_agent_is_after_the_event_and_why_an_alarm_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sink.log");
    let cfg = dir.path().join("drctl.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[alarms.sinks]]\ntype = \"exec\"\ncommand = [\"sh\", \"-c\", \
             \"echo $DRCTL_EVENT $DRCTL_STATE site=${{DRCTL_SITE:-null}} from=$DRCTL_FROM cause=$DRCTL_CAUSE >> {}\"]\n",
            log.display()
        ),
    )
    .unwrap();
    Drctl::default()
        .config(&cfg)
        .args(&["watch", "--backend", "mock", "--scenario", Drctl::DEMO])
        .virtual_to_end()
        .run_in(dir.path())
        .expect_code(0);
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "switchover started site=null from=site2 cause=",
            "switchover completed site=site1 from=site2 cause=",
            // statistic at +15 s/+25 s, telephony (D1) at +40 s/+50 s
            "alarm raised site=site1 from= cause=",
            "alarm cleared site=site1 from= cause=",
            "alarm raised site=site1 from= cause=",
            "alarm cleared site=site1 from= cause=",
            // telephony and configuration at +80 s, cleared by leaving site1
            "alarm raised site=site1 from= cause=",
            "alarm raised site=site1 from= cause=",
            "switchover started site=null from=site1 cause=",
            "alarm cleared site=null from=site1 cause=agent-left-site",
            "alarm cleared site=null from=site1 cause=agent-left-site",
            "switchover completed site=site2 from=site1 cause=",
        ]
    );
}

//! The drill report (`drctl switch --report FILE`): a failover drill as an
//! experiment, like Chaos Toolkit's journal or AWS FIS's report: the
//! hypothesis, the steady state before and after, the gates and abort
//! conditions with their outcomes, the phase timeline, the measured RTO
//! against the expected one, the rollback, the recording, and a verdict.
//!
//! Written as JSON, Markdown or one self-contained HTML file (the timeline
//! drawn as inline SVG) by the file's extension. Every text that came from
//! outside (gate output, site and agent names) is escaped for its format.

use crate::gates::Outcome;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    /// The agent.
    pub agent: String,
    /// When the drill ran (wall clock, RFC 3339).
    pub started: String,
    /// drctl's version (the watcher's, for a drill it ran).
    pub drctl: String,
    /// The operator's `--reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the drill expects.
    pub hypothesis: Hypothesis,
    /// Before the switch: the origin healthy, the gates passing.
    pub steady_state_before: SteadyState,
    /// After it: the target in service, the gates passing (absent when it
    /// never got there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state_after: Option<SteadyState>,
    /// What stops the drill, and whether it did.
    pub abort_conditions: Vec<Condition>,
    /// The switchover's phases (and the return's, if any), from the trigger.
    pub timeline: Vec<Span>,
    /// Trigger (switchover-started) to the DN back in service at the target.
    pub rto: Rto,
    /// The return to the origin (`--abort-after`, `--lifetime`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// The recording of the drill (`--record`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// `PASS` or `FAIL` (from a watcher: anything else reads as `FAIL`).
    #[serde(deserialize_with = "verdict_word")]
    pub verdict: crate::gates::Word,
    /// Why it failed (empty on a pass).
    pub failures: Vec<String>,
}

/// What the drill expects to hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hypothesis {
    /// The site left.
    pub origin: String,
    /// The site to reach.
    pub target: String,
    /// `--rto`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_s: Option<f64>,
    /// The hypothesis in words.
    pub statement: String,
}

/// A steady-state check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteadyState {
    /// Where the agent was.
    pub site: String,
    /// Its telephony listener.
    pub telephony: String,
    /// Its DN.
    pub dn: String,
    /// The gates run, with their outcomes.
    pub gates: Vec<Outcome>,
    /// Whether the check held.
    pub ok: bool,
}

/// An abort condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Condition {
    /// What it is.
    pub condition: String,
    /// Whether it fired.
    pub triggered: bool,
}

/// One phase, relative to the trigger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Span {
    /// Its name (`connect`; `return: connect`).
    pub phase: String,
    /// Seconds from the trigger to its start.
    pub start_s: f64,
    /// How long it took, seconds.
    pub seconds: f64,
}

/// The measured recovery time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rto {
    /// Trigger to DN back in service, seconds (`None`: never in service).
    pub measured_s: Option<f64>,
    /// `--rto`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_s: Option<f64>,
    /// Whether the measured RTO is within the expected one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// The return to the origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rollback {
    /// Why: `--abort-after` or `--lifetime`.
    pub why: String,
    /// When it started, seconds from the trigger.
    pub at_s: f64,
    /// What happened, in words.
    pub outcome: String,
    /// Whether the agent is back in service at the origin.
    pub ok: bool,
}

/// A verdict read from a watcher's reply: `PASS`, or `FAIL` for anything
/// else (a watcher never says more, and nothing it says is trusted further).
fn verdict_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let word = String::deserialize(d)?;
    Ok(if word == "PASS" { "PASS" } else { "FAIL" })
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The extension names no format.
    #[error("--report {0}: expected a .json, .md or .html file")]
    Format(String),
    /// Writing failed.
    #[error("--report {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`.
    Json,
    /// `.md`.
    Markdown,
    /// `.html`.
    Html,
}

impl Format {
    /// The format `path`'s extension names (checked before the drill runs).
    pub fn of(path: &Path) -> Result<Format, ReportError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Ok(Format::Json),
            Some("md") => Ok(Format::Markdown),
            Some("html" | "htm") => Ok(Format::Html),
            _ => Err(ReportError::Format(path.display().to_string())),
        }
    }
}

impl DrillReport {
    /// Writes the report to `path` in the format its extension names.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let text = match Format::of(path)? {
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Markdown => self.markdown(),
            Format::Html => self.html(),
        };
        std::fs::write(path, text).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let m = md;
        let mut o = String::new();
        let _ = writeln!(o, "# Drill report: {}\n", self.verdict);
        let _ = writeln!(
            o,
            "Agent {}, {} (drctl {}){}\n",
            m(&self.agent),
            m(&self.started),
            self.drctl,
            self.reason
                .as_deref()
                .map(|r| format!(", reason: {}", m(r)))
                .unwrap_or_default()
        );
        let _ = writeln!(o, "**Hypothesis.** {}\n", m(&self.hypothesis.statement));
        let _ = writeln!(o, "## Steady state\n");
        let _ = writeln!(o, "| check | site | telephony | DN | gates | holds |");
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        let steady = [
            ("before", Some(&self.steady_state_before)),
            ("after", self.steady_state_after.as_ref()),
        ];
        for (when, s) in steady {
            match s {
                Some(s) => {
                    let _ = writeln!(
                        o,
                        "| {when} | {} | {} | {} | {} | {} |",
                        m(&s.site),
                        s.telephony,
                        s.dn,
                        m(&gate_summary(&s.gates)),
                        yes(s.ok)
                    );
                }
                None => {
                    let _ = writeln!(o, "| {when} | - | - | - | - | not reached |");
                }
            }
        }
        let _ = writeln!(o, "\n## Gates\n");
        let gates: Vec<&Outcome> = steady
            .iter()
            .filter_map(|(_, s)| *s)
            .flat_map(|s| &s.gates)
            .collect();
        if gates.is_empty() {
            let _ = writeln!(o, "No gate applies to this switchover.");
        } else {
            let _ = writeln!(o, "| gate | outcome | seconds | output |");
            let _ = writeln!(o, "|---|---|---|---|");
            for g in gates {
                let _ = writeln!(
                    o,
                    "| {} | {} | {:.3} | {} |",
                    m(&g.gate),
                    g.outcome,
                    g.seconds,
                    m(&g.output)
                );
            }
        }
        let _ = writeln!(o, "\n## Abort conditions\n");
        for c in &self.abort_conditions {
            let _ = writeln!(
                o,
                "- {}: {}",
                m(&c.condition),
                if c.triggered {
                    "triggered"
                } else {
                    "not triggered"
                }
            );
        }
        let _ = writeln!(o, "\n## Timeline (from the trigger)\n");
        let _ = writeln!(o, "| phase | start | duration |");
        let _ = writeln!(o, "|---|---|---|");
        for s in &self.timeline {
            let _ = writeln!(
                o,
                "| {} | +{:.3}s | {:.3}s |",
                m(&s.phase),
                s.start_s,
                s.seconds
            );
        }
        let _ = writeln!(o, "\n## RTO\n");
        let _ = writeln!(o, "{}\n", self.rto_text());
        if let Some(r) = &self.rollback {
            let _ = writeln!(o, "## Rollback\n");
            let _ = writeln!(
                o,
                "{} at +{:.3}s: {} ({})\n",
                m(&r.why),
                r.at_s,
                m(&r.outcome),
                if r.ok { "ok" } else { "FAILED" }
            );
        }
        if let Some(rec) = &self.recording {
            let _ = writeln!(o, "Recording: `{}`\n", rec.replace('`', "'"));
        }
        let _ = writeln!(o, "## Verdict: {}\n", self.verdict);
        for f in &self.failures {
            let _ = writeln!(o, "- {}", m(f));
        }
        o
    }

    /// The RTO in words.
    fn rto_text(&self) -> String {
        let measured = self
            .rto
            .measured_s
            .map_or_else(|| "never in service".to_owned(), |s| format!("{s:.3}s"));
        match (self.rto.expected_s, self.rto.met) {
            (Some(e), Some(met)) => format!(
                "measured {measured} against {e:.3}s expected: {}",
                if met { "met" } else { "MISSED" }
            ),
            (Some(e), None) => format!("measured {measured} against {e:.3}s expected: MISSED"),
            _ => format!("measured {measured} (no --rto given)"),
        }
    }

    /// The report as one self-contained HTML page (no script, no external
    /// resource), the timeline as inline SVG.
    pub fn html(&self) -> String {
        let h = esc;
        let mut o = String::new();
        let colour = if self.verdict == "PASS" {
            "#1a7f37"
        } else {
            "#cf222e"
        };
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>drctl drill report: {v}</title>\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
             table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}\
             .verdict{{color:#fff;background:{colour};padding:.1em .5em;border-radius:.3em}}</style>\
             </head><body>\n<h1>Drill report <span class=\"verdict\">{v}</span></h1>\n",
            v = self.verdict
        );
        let _ = writeln!(
            o,
            "<p>Agent {}, {} (drctl {}){}</p>",
            h(&self.agent),
            h(&self.started),
            self.drctl,
            self.reason
                .as_deref()
                .map(|r| format!(", reason: {}", h(r)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "<p><b>Hypothesis.</b> {}</p>",
            h(&self.hypothesis.statement)
        );
        let _ = writeln!(o, "<h2>Steady state</h2><table><tr><th>check</th><th>site</th><th>telephony</th><th>DN</th><th>gates</th><th>holds</th></tr>");
        for (when, s) in [
            ("before", Some(&self.steady_state_before)),
            ("after", self.steady_state_after.as_ref()),
        ] {
            match s {
                Some(s) => {
                    let _ = writeln!(
                        o,
                        "<tr><td>{when}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        h(&s.site),
                        h(&s.telephony),
                        h(&s.dn),
                        h(&gate_summary(&s.gates)),
                        yes(s.ok)
                    );
                }
                None => {
                    let _ = writeln!(
                        o,
                        "<tr><td>{when}</td><td colspan=\"5\">not reached</td></tr>"
                    );
                }
            }
        }
        let _ = writeln!(o, "</table><h2>Gates</h2><table><tr><th>gate</th><th>outcome</th><th>seconds</th><th>output</th></tr>");
        for s in [
            Some(&self.steady_state_before),
            self.steady_state_after.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            for g in &s.gates {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
                    h(&g.gate),
                    g.outcome,
                    g.seconds,
                    h(&g.output)
                );
            }
        }
        let _ = writeln!(o, "</table><h2>Abort conditions</h2><ul>");
        for c in &self.abort_conditions {
            let _ = writeln!(
                o,
                "<li>{}: {}</li>",
                h(&c.condition),
                if c.triggered {
                    "triggered"
                } else {
                    "not triggered"
                }
            );
        }
        let _ = writeln!(o, "</ul><h2>Timeline</h2>");
        o.push_str(&self.svg());
        let _ = writeln!(o, "<h2>RTO</h2><p>{}</p>", h(&self.rto_text()));
        if let Some(r) = &self.rollback {
            let _ = writeln!(
                o,
                "<h2>Rollback</h2><p>{} at +{:.3}s: {} ({})</p>",
                h(&r.why),
                r.at_s,
                h(&r.outcome),
                if r.ok { "ok" } else { "FAILED" }
            );
        }
        if let Some(rec) = &self.recording {
            let _ = writeln!(o, "<p>Recording: <code>{}</code></p>", h(rec));
        }
        let _ = writeln!(o, "<h2>Verdict: {}</h2><ul>", self.verdict);
        for f in &self.failures {
            let _ = writeln!(o, "<li>{}</li>", h(f));
        }
        o.push_str("</ul></body></html>\n");
        o
    }

    /// The timeline as an SVG Gantt chart: one bar a phase, on a seconds axis.
    pub fn svg(&self) -> String {
        const LEFT: f64 = 180.0;
        const WIDTH: f64 = 560.0;
        const ROW: f64 = 24.0;
        let end = self
            .timeline
            .iter()
            .map(|s| s.start_s + s.seconds)
            .fold(0.0f64, f64::max)
            .max(0.001);
        let height = ROW * (self.timeline.len() as f64 + 1.0) + 10.0;
        let x = |t: f64| LEFT + WIDTH * (t / end);
        let mut o = String::new();
        let _ = writeln!(
            o,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
             viewBox=\"0 0 {w} {height}\" font-family=\"sans-serif\" font-size=\"12\">",
            w = LEFT + WIDTH + 60.0
        );
        for (i, s) in self.timeline.iter().enumerate() {
            let y = ROW * i as f64 + 4.0;
            let (x0, x1) = (x(s.start_s), x(s.start_s + s.seconds));
            let fill = if s.phase.starts_with("return") {
                "#8250df"
            } else {
                "#0969da"
            };
            let _ = writeln!(
                o,
                "<text x=\"4\" y=\"{:.1}\">{}</text><rect x=\"{x0:.1}\" y=\"{y:.1}\" \
                 width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{} {:.3}s</title></rect>",
                y + 14.0,
                esc(&s.phase),
                (x1 - x0).max(1.0),
                ROW - 8.0,
                esc(&s.phase),
                s.seconds
            );
        }
        let axis = ROW * self.timeline.len() as f64 + 8.0;
        let _ = writeln!(
            o,
            "<line x1=\"{LEFT}\" y1=\"{axis:.1}\" x2=\"{:.1}\" y2=\"{axis:.1}\" stroke=\"#555\"/>\
             <text x=\"{LEFT}\" y=\"{:.1}\">+0s</text><text x=\"{:.1}\" y=\"{:.1}\">+{end:.3}s</text>",
            LEFT + WIDTH,
            axis + 14.0,
            LEFT + WIDTH - 20.0,
            axis + 14.0
        );
        if let Some(rto) = self.rto.measured_s {
            let rx = x(rto);
            let _ = writeln!(
                o,
                "<line x1=\"{rx:.1}\" y1=\"0\" x2=\"{rx:.1}\" y2=\"{axis:.1}\" stroke=\"#1a7f37\" \
                 stroke-dasharray=\"4 3\"><title>DN back in service: RTO {rto:.3}s</title></line>"
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

/// `2 passed, 1 skipped` or `none`.
fn gate_summary(gates: &[Outcome]) -> String {
    if gates.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<String> = gates
        .iter()
        .map(|g| format!("{} {}", g.gate, g.outcome))
        .collect();
    names.join(", ")
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

/// Text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Text for a Markdown table cell or line: no pipes, no markup, one line.
fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_every_text_from_outside() {
        let out = Outcome {
            gate: "<script>".into(),
            outcome: "vetoed",
            output: "\"a\" & 'b' </svg>".into(),
            seconds: 0.0,
        };
        let r = DrillReport {
            agent: "a<b".into(),
            started: "now".into(),
            drctl: "0".to_owned(),
            reason: Some("<img src=x>".into()),
            hypothesis: Hypothesis {
                origin: "s1".into(),
                target: "s2".into(),
                rto_s: None,
                statement: "x".into(),
            },
            steady_state_before: SteadyState {
                site: "s1".into(),
                telephony: "on".into(),
                dn: "on".into(),
                gates: vec![out],
                ok: false,
            },
            steady_state_after: None,
            abort_conditions: vec![],
            timeline: vec![Span {
                phase: "</text><script>".into(),
                start_s: 0.0,
                seconds: 1.0,
            }],
            rto: Rto {
                measured_s: None,
                expected_s: None,
                met: None,
            },
            rollback: None,
            recording: None,
            verdict: "FAIL",
            failures: vec![],
        };
        let html = r.html();
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;") && html.contains("&quot;a&quot; &amp; &#39;b&#39;")
        );
        assert_eq!(html.matches("</svg>").count(), 1, "{html}");
        let md = r.markdown();
        assert!(md.contains("\\<script\\>"), "{md}");
    }

    /// A watcher's report, as its client reads it back: what it says
    /// survives; a verdict or gate outcome outside the known words reads
    /// as the failing one.
    #[test]
    fn a_report_reads_back_and_unknown_words_read_as_failing() {
        let text = r#"{"agent":"a","started":"now","drctl":"9.9.9",
            "hypothesis":{"origin":"s1","target":"s2","statement":"x"},
            "steady_state_before":{"site":"s1","telephony":"on","dn":"on","ok":true,
              "gates":[{"gate":"g","outcome":"passed","output":"","seconds":0.5},
                       {"gate":"h","outcome":"maybe","output":"","seconds":0.0}]},
            "abort_conditions":[],"timeline":[],
            "rto":{"measured_s":1.25},"verdict":"PASS","failures":[]}"#;
        let r: DrillReport = serde_json::from_str(text).unwrap();
        assert_eq!(r.verdict, "PASS");
        assert_eq!(r.drctl, "9.9.9");
        assert_eq!(r.rto.measured_s, Some(1.25));
        let gates = &r.steady_state_before.gates;
        assert_eq!((gates[0].outcome, gates[1].outcome), ("passed", "vetoed"));
        let back: DrillReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.verdict, "PASS");
        let odd = text.replace(r#""verdict":"PASS""#, r#""verdict":"pass!""#);
        let r: DrillReport = serde_json::from_str(&odd).unwrap();
        assert_eq!(r.verdict, "FAIL");
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of(Path::new("r.json")).ok(), Some(Format::Json));
        assert_eq!(Format::of(Path::new("r.md")).ok(), Some(Format::Markdown));
        assert_eq!(Format::of(Path::new("r.html")).ok(), Some(Format::Html));
        assert!(Format::of(Path::new("r.txt")).is_err());
    }
}

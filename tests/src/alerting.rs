//! Helpers for the alerting tests (`tests/tests/alerting.rs`): the PromQL of
//! `config/examples/`'s rules and dashboard and the metrics it selects, the
//! metric names of a real scrape, and a real Alertmanager on loopback.

use crate::running::{Running, PATIENCE};
use crate::{free_port, repo, wait_until};
use promql_parser::label::{MatchOp, METRIC_NAME};
use promql_parser::parser::Expr;
use promql_parser::util::{walk_expr, ExprVisitor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One PromQL query of the examples and where it comes from.
#[derive(Debug)]
pub struct Query {
    /// `rule DrctlWatcherDown`, `panel "Agents per site" A`, …
    pub origin: String,
    /// The PromQL, Grafana's variables replaced.
    pub expr: String,
}

/// The `expr` of every rule of a Prometheus rules file.
pub fn rule_queries(path: &Path) -> Vec<Query> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for doc in &docs {
        for group in doc["groups"].as_vec().into_iter().flatten() {
            for rule in group["rules"].as_vec().into_iter().flatten() {
                let name = rule["alert"].as_str().or(rule["record"].as_str());
                let expr = rule["expr"].as_str();
                let (Some(name), Some(expr)) = (name, expr) else {
                    panic!(
                        "{}: a rule without alert/record or expr: {rule:?}",
                        path.display()
                    );
                };
                out.push(Query {
                    origin: format!("rule {name}"),
                    expr: expr.to_owned(),
                });
            }
        }
    }
    out
}

/// Grafana's variables as PromQL can read them: the range ones as
/// durations, `$agent` as "any agent".
fn grafana_vars(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "6h")
        .replace("${agent}", ".*")
        .replace("$agent", ".*")
}

/// Every query of a Grafana dashboard: each panel target's `expr` and each
/// query variable's `label_values(METRIC, LABEL)` (as the selector `METRIC`).
pub fn dashboard_queries(path: &Path) -> Vec<Query> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dash: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let no_panels = Vec::new();
    for panel in dash["panels"].as_array().unwrap_or(&no_panels) {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().unwrap_or(&no_panels) {
            let Some(expr) = target["expr"].as_str() else {
                panic!("panel {title:?}: a target without expr: {target}");
            };
            out.push(Query {
                origin: format!(
                    "panel {title:?} {}",
                    target["refId"].as_str().unwrap_or("?")
                ),
                expr: grafana_vars(expr),
            });
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap_or(&no_panels) {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("?");
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or_else(|| panic!("variable {name}: no query"));
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| {
                panic!("variable {name}: expected label_values(METRIC, LABEL): {query}")
            });
        let metric = inner.split(',').next().unwrap_or_default().trim();
        out.push(Query {
            origin: format!("variable {name}"),
            expr: metric.to_owned(),
        });
    }
    out
}

/// A metric a query selects, with the labels it matches by equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub metric: String,
    /// `label="value"` matchers (not `!=`, `=~`, `!~`).
    pub equal: Vec<(String, String)>,
}

struct Collect(Vec<Selector>);

impl ExprVisitor for Collect {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let vs = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let mut metric = vs.name.clone();
        let mut equal = Vec::new();
        for m in &vs.matchers.matchers {
            if let MatchOp::Equal = m.op {
                if m.name == METRIC_NAME {
                    metric = Some(m.value.clone());
                } else {
                    equal.push((m.name.clone(), m.value.clone()));
                }
            }
        }
        let metric = metric.ok_or_else(|| format!("a selector without a metric name: {vs}"))?;
        self.0.push(Selector { metric, equal });
        Ok(true)
    }
}

/// The selectors of `expr`, or why it is not PromQL.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let ast = promql_parser::parser::parse(expr)?;
    let mut c = Collect(Vec::new());
    walk_expr(&mut c, &ast)?;
    Ok(c.0)
}

/// What a scrape exports: each sample name with its labels and their values.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Sample names, with every label seen on them and its values.
    pub samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Sample names a `# TYPE` line declares (`x` counter: `x_total`;
    /// histogram: `x_bucket`, `x_sum`, `x_count`), with or without samples.
    pub declared: BTreeSet<String>,
}

impl Scrape {
    /// Reads an OpenMetrics (or Prometheus 0.0.4) text exposition.
    pub fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let names: Vec<String> = match kind {
                    "counter" => vec![format!("{}_total", name.trim_end_matches("_total"))],
                    "histogram" | "gaugehistogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .map(|sfx| format!("{name}{sfx}"))
                        .collect(),
                    "summary" => vec![
                        name.to_owned(),
                        format!("{name}_sum"),
                        format!("{name}_count"),
                    ],
                    "info" => vec![format!("{name}_info")],
                    _ => vec![name.to_owned()],
                };
                s.declared.extend(names);
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some((name, labels)) = sample(line) {
                let entry = s.samples.entry(name).or_default();
                for (k, v) in labels {
                    entry.entry(k).or_default().insert(v);
                }
            }
        }
        s
    }

    /// Whether the scrape exports `name` (samples or a declaration).
    pub fn has(&self, name: &str) -> bool {
        self.samples.contains_key(name) || self.declared.contains(name)
    }
}

/// `name{k="v",…} value`: the name and labels, or `None` for a line that is
/// not a sample.
fn sample(line: &str) -> Option<(String, Vec<(String, String)>)> {
    let end = line.find(['{', ' '])?;
    let name = &line[..end];
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if name.is_empty() || !valid {
        return None;
    }
    let mut labels = Vec::new();
    let mut rest = &line[end..];
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim().to_owned(), value));
            rest = &after[close + 1..];
        }
    }
    rest.split_whitespace().next()?;
    Some((name.to_owned(), labels))
}

/// `GET path` on `127.0.0.1:port`: the status and the body, or `None` while
/// nothing answers there. HTTP/1.0, unlike [`crate::service::http`]:
/// Alertmanager answers a larger list of alerts chunked to HTTP/1.1.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The Alertmanager binary: Debian's `prometheus-alertmanager`, else
/// `alertmanager`, from `PATH`.
pub fn alertmanager_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["prometheus-alertmanager", "alertmanager"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// A real Alertmanager on a loopback port: no cluster, a temp storage dir,
/// one receiver that notifies nobody. Killed when dropped.
pub struct Alertmanager {
    bin: PathBuf,
    running: Option<Running>,
    dir: tempfile::TempDir,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

const ALERTMANAGER_CONFIG: &str = "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n";

impl Alertmanager {
    /// Starts `bin` and waits until it is ready.
    pub fn start(bin: &Path) -> Alertmanager {
        let mut am = Alertmanager {
            bin: bin.to_owned(),
            running: None,
            dir: tempfile::tempdir().expect("a temp dir"),
            port: free_port(),
        };
        std::fs::write(am.dir.path().join("alertmanager.yml"), ALERTMANAGER_CONFIG)
            .expect("write alertmanager.yml");
        am.spawn();
        am
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        // A fresh storage dir each time: a restart forgets every alert.
        let storage = tempfile::tempdir_in(dir).expect("a storage dir").keep();
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null());
        self.running = Some(Running::spawn(cmd));
        let port = self.port;
        wait_until("Alertmanager to be ready", PATIENCE, || {
            matches!(http_get(port, "/-/ready"), Some((200, _)))
        });
    }

    /// Stops it and starts a new one on the same port, with no alerts.
    pub fn restart(&mut self) {
        self.running = None;
        self.spawn();
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /api/v2/alerts`: the alerts it holds that are not resolved.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let Some((200, body)) = http_get(self.port, "/api/v2/alerts") else {
            panic!(
                "Alertmanager does not answer GET /api/v2/alerts\n{}",
                self.log()
            );
        };
        match serde_json::from_str(&body) {
            Ok(serde_json::Value::Array(alerts)) => alerts,
            _ => panic!("not a list of alerts: {body}"),
        }
    }

    /// What it has logged.
    pub fn log(&self) -> String {
        self.running
            .as_ref()
            .map(Running::stderr)
            .unwrap_or_default()
    }
}

/// `config/examples/NAME` in the repository.
pub fn example(name: &str) -> PathBuf {
    repo().join("config/examples").join(name)
}

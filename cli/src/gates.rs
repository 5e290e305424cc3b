//! Switchover gates (`[[switch.gates]]`): checks run by the host before a
//! switchover of the kinds they apply to, as orchestrator's pre-failover
//! processes ("failure of any of these processes aborts the recovery").
//!
//! A gate is an exec command (no shell; run like an exec alarm sink: cleared
//! environment, stdin /dev/null, bounded output, its own process group killed
//! at the timeout) or an HTTP GET (no redirects followed, bounded body). A
//! non-zero exit, a non-2xx answer or the timeout is a veto. Gates run one
//! after the other, in config order, and stop at the first veto. The policy
//! engine never runs them: it asks (`Action::CheckGates`) and waits for the
//! verdict (`Event::GateVerdict`), which the host records.

use crate::alarms::exec::{run_bounded, runnable, Captured};
use drctl_config::GateConfig;
use drctl_policy::{GateRefusal, GateVerdict, Reason};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How much of a gate's output a refusal, a decision and a report show.
pub const OUTPUT_LIMIT: usize = 1024;

/// How much of an HTTP gate's body is read (the rest is never read).
const BODY_LIMIT: usize = 4096;

/// Why the gates cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// An exec gate's program cannot run.
    #[error("switch.gates {gate}: {why}")]
    Exec {
        /// The gate.
        gate: String,
        /// Why its program cannot run.
        why: String,
    },
    /// An HTTP gate's client cannot be built.
    #[error("switch.gates {gate}: HTTP client: {source}")]
    Http {
        /// The gate.
        gate: String,
        /// The client's error.
        source: reqwest::Error,
    },
    /// `--skip-gate` names no configured gate.
    #[error("--skip-gate {name}: no such gate; the configured gates are: {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// The configured gates' names.
        known: String,
    },
}

/// What one gate does.
enum Check {
    Exec {
        command: Vec<String>,
        env: BTreeMap<String, String>,
    },
    Http {
        client: reqwest::Client,
        /// The whole URL, credentials included: only for the request.
        url: String,
    },
}

/// One gate, ready to run.
struct Gate {
    name: String,
    check: Check,
    timeout: Duration,
    applies_to: Vec<Reason>,
}

/// The configured gates.
#[derive(Default)]
pub struct Gates {
    gates: Vec<Gate>,
}

/// What a gate is asked about (its exec environment: `DRCTL_*`).
#[derive(Debug, Clone)]
pub struct Ask {
    /// The switchover's reason.
    pub reason: Reason,
    /// The site it leaves.
    pub from: String,
    /// Its target.
    pub to: String,
    /// The agent.
    pub agent: String,
}

/// A word of a fixed set (named so: serde would borrow a `&str` field
/// from the input, and these are read back from a watcher's reply).
pub type Word = &'static str;

/// One gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The gate.
    pub gate: String,
    /// `passed`, `vetoed` or `skipped`.
    #[serde(deserialize_with = "outcome_word")]
    pub outcome: Word,
    /// What it said (bounded, control characters escaped); for a skipped
    /// gate, the operator's reason.
    pub output: String,
    /// How long it took, seconds.
    pub seconds: f64,
}

/// An outcome read back (a watcher's drill report): one of the three words;
/// anything else reads as `vetoed`, the safe side.
fn outcome_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let word = <String as serde::Deserialize>::deserialize(d)?;
    Ok(match word.as_str() {
        "passed" => "passed",
        "skipped" => "skipped",
        _ => "vetoed",
    })
}

impl Outcome {
    /// Whether the gate vetoed.
    pub fn vetoed(&self) -> bool {
        self.outcome == "vetoed"
    }
}

impl Gates {
    /// The gates of `[[switch.gates]]` (already validated by the config):
    /// each exec gate's program must be runnable now.
    pub fn new(configs: &[GateConfig]) -> Result<Gates, GateError> {
        let mut gates = Vec::with_capacity(configs.len());
        for g in configs {
            let check = match &g.http {
                Some(url) => Check::Http {
                    client: reqwest::Client::builder()
                        .timeout(g.timeout)
                        .redirect(reqwest::redirect::Policy::none())
                        .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
                        .build()
                        .map_err(|source| GateError::Http {
                            gate: g.name.clone(),
                            source,
                        })?,
                    url: url.expose().to_owned(),
                },
                None => {
                    runnable(&g.exec, &g.env).map_err(|e| GateError::Exec {
                        gate: g.name.clone(),
                        why: format!("{e:#}"),
                    })?;
                    Check::Exec {
                        command: g.exec.clone(),
                        env: g.env.clone(),
                    }
                }
            };
            gates.push(Gate {
                name: g.name.clone(),
                check,
                timeout: g.timeout,
                applies_to: g.applies_to.clone(),
            });
        }
        Ok(Gates { gates })
    }

    /// The switchover reasons some gate applies to (what the engine waits on).
    pub fn gated(configs: &[GateConfig]) -> Vec<Reason> {
        let mut reasons: Vec<Reason> = configs
            .iter()
            .flat_map(|g| g.applies_to.iter().copied())
            .collect();
        reasons.sort();
        reasons.dedup();
        reasons
    }

    /// The gates' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.gates.iter().map(|g| g.name.clone()).collect()
    }

    /// Runs the gates that apply to `ask.reason`, in order, stopping at the
    /// first veto; those in `skip` are not run (outcome `skipped`, `why` as
    /// their output). Blocking: runs on a thread of its own with its own
    /// runtime, so it may be called from inside or outside one.
    pub fn check(&self, ask: &Ask, skip: &[String], why: Option<&str>) -> Vec<Outcome> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return self.all_vetoed(ask, &format!("cannot start a runtime: {e}")),
                };
                rt.block_on(self.check_async(ask, skip, why))
            })
            .join()
            .unwrap_or_else(|_| self.all_vetoed(ask, "the gate runner panicked"))
        })
    }

    /// A veto by the first applicable gate, when the gates could not run at all.
    fn all_vetoed(&self, ask: &Ask, why: &str) -> Vec<Outcome> {
        self.applicable(ask.reason)
            .take(1)
            .map(|g| Outcome {
                gate: g.name.clone(),
                outcome: "vetoed",
                output: why.to_owned(),
                seconds: 0.0,
            })
            .collect()
    }

    fn applicable(&self, reason: Reason) -> impl Iterator<Item = &Gate> {
        self.gates
            .iter()
            .filter(move |g| g.applies_to.contains(&reason))
    }

    async fn check_async(&self, ask: &Ask, skip: &[String], why: Option<&str>) -> Vec<Outcome> {
        let mut out = Vec::new();
        for gate in self.applicable(ask.reason) {
            if skip.contains(&gate.name) {
                tracing::warn!(
                    "gate {}: skipped (--skip-gate): {}",
                    gate.name,
                    why.unwrap_or_default()
                );
                out.push(Outcome {
                    gate: gate.name.clone(),
                    outcome: "skipped",
                    output: shown(why.unwrap_or_default().as_bytes()),
                    seconds: 0.0,
                });
                continue;
            }
            let began = Instant::now();
            let (passed, output) = gate.run(ask).await;
            let seconds = began.elapsed().as_secs_f64();
            if passed {
                tracing::info!("gate {} passed ({seconds:.3}s)", gate.name);
            } else {
                tracing::warn!("gate {} vetoed the switchover: {output}", gate.name);
            }
            out.push(Outcome {
                gate: gate.name.clone(),
                outcome: if passed { "passed" } else { "vetoed" },
                output,
                seconds,
            });
            if !passed {
                break;
            }
        }
        out
    }
}

/// Checks `--skip-gate` names against the configured gates' `known` names.
pub fn check_skips(known: &[String], skip: &[String]) -> Result<(), GateError> {
    for name in skip {
        if !known.contains(name) {
            return Err(GateError::Unknown {
                name: crate::logging::escape(name).into_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// The verdict the engine gets from `outcomes`.
pub fn verdict(outcomes: &[Outcome], why: Option<&str>) -> GateVerdict {
    let skipped: Vec<String> = outcomes
        .iter()
        .filter(|o| o.outcome == "skipped")
        .map(|o| o.gate.clone())
        .collect();
    GateVerdict {
        refused: outcomes.iter().find(|o| o.vetoed()).map(|o| GateRefusal {
            gate: o.gate.clone(),
            output: o.output.clone(),
        }),
        why: (!skipped.is_empty()).then(|| why.unwrap_or_default().to_owned()),
        skipped,
    }
}

impl Gate {
    /// Runs the gate once: whether it passed, and what it said.
    async fn run(&self, ask: &Ask) -> (bool, String) {
        match &self.check {
            Check::Exec { command, env } => {
                let vars = [
                    ("DRCTL_GATE", self.name.clone()),
                    ("DRCTL_REASON", ask.reason.as_str().to_owned()),
                    ("DRCTL_FROM", ask.from.clone()),
                    ("DRCTL_TO", ask.to.clone()),
                    ("DRCTL_AGENT", ask.agent.clone()),
                ];
                let env = env
                    .clone()
                    .into_iter()
                    .chain(vars.into_iter().map(|(k, v)| (k.to_owned(), v)));
                match run_bounded(command, env, self.timeout).await {
                    Ok(ran) => {
                        let said = joined(&ran.stdout, &ran.stderr);
                        match ran.result {
                            Ok(()) => (true, said),
                            Err(why) if said.is_empty() => (false, why),
                            Err(why) => (false, format!("{why}: {said}")),
                        }
                    }
                    Err(e) => (false, format!("{e:#}")),
                }
            }
            Check::Http { client, url } => http(client, url, self.timeout).await,
        }
    }
}

/// One GET: 2xx passes; anything else (a redirect, an error, the timeout) vetoes.
async fn http(client: &reqwest::Client, url: &str, timeout: Duration) -> (bool, String) {
    let attempt = async {
        let mut response = match client.get(url).send().await {
            Ok(r) => r,
            // The error's own URL would carry the credentials: drop it.
            Err(e) => return (false, format!("{:#}", anyhow::Error::new(e.without_url()))),
        };
        let status = response.status();
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(BODY_LIMIT);
        let said = shown(&body);
        let head = if status.is_redirection() {
            format!("HTTP {status}: redirect not followed")
        } else {
            format!("HTTP {status}")
        };
        let text = if said.is_empty() {
            head
        } else {
            format!("{head}: {said}")
        };
        (status.is_success(), text)
    };
    // reqwest's timeout covers the body too; this bounds the whole attempt regardless.
    tokio::time::timeout(timeout + Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| {
            (
                false,
                format!("no answer within {}", humantime::format_duration(timeout)),
            )
        })
}

/// stdout then stderr, as [`shown`].
fn joined(stdout: &Captured, stderr: &Captured) -> String {
    let mut bytes = stdout.bytes.clone();
    if !stderr.bytes.is_empty() {
        if !bytes.is_empty() {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&stderr.bytes);
    }
    shown(&bytes)
}

/// Output as a refusal shows it: trimmed, lines joined with ` | `, control
/// characters escaped (never obeyed), at most [`OUTPUT_LIMIT`] bytes.
pub fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = String::new();
    for ch in lines.join(" | ").chars() {
        if out.len() >= OUTPUT_LIMIT {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(name: &str, script: &str) -> GateConfig {
        GateConfig {
            name: name.to_owned(),
            exec: vec!["/bin/sh".into(), "-c".into(), script.into()],
            ..GateConfig::default()
        }
    }

    fn ask() -> Ask {
        Ask {
            reason: Reason::Operator,
            from: "site1".into(),
            to: "site2".into(),
            agent: "ann".into(),
        }
    }

    #[test]
    fn gates_run_in_order_and_stop_at_the_first_veto() {
        let gates = Gates::new(&[
            exec("ok", "echo fine"),
            exec(
                "freeze",
                "echo \"change freeze until $DRCTL_TO is patched\" >&2; exit 3",
            ),
            exec("never", "exit 0"),
        ])
        .unwrap();
        let out = gates.check(&ask(), &[], None);
        let names: Vec<_> = out.iter().map(|o| (o.gate.as_str(), o.outcome)).collect();
        assert_eq!(names, [("ok", "passed"), ("freeze", "vetoed")]);
        assert_eq!(
            out[1].output,
            "exited with exit status: 3: change freeze until site2 is patched"
        );
        let v = verdict(&out, None);
        assert_eq!(v.refused.unwrap().gate, "freeze");
    }

    #[test]
    fn a_skipped_gate_is_not_run_and_is_named_with_the_reason() {
        let gates = Gates::new(&[exec("freeze", "exit 1")]).unwrap();
        let out = gates.check(&ask(), &["freeze".into()], Some("INC-7"));
        assert_eq!(out[0].outcome, "skipped");
        let v = verdict(&out, Some("INC-7"));
        assert!(v.refused.is_none());
        assert_eq!(v.skipped, ["freeze"]);
        assert_eq!(v.why.as_deref(), Some("INC-7"));
    }

    #[test]
    fn a_gate_past_its_timeout_is_a_veto_and_only_applicable_gates_run() {
        let mut slow = exec("slow", "sleep 30");
        slow.timeout = Duration::from_millis(200);
        let mut auto_only = exec("auto", "exit 1");
        auto_only.applies_to = vec![Reason::TelephonyTimeout];
        let gates = Gates::new(&[auto_only, slow]).unwrap();
        let out = gates.check(&ask(), &[], None);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].vetoed());
        assert!(out[0].output.starts_with("killed after 200ms"), "{out:?}");
    }

    #[test]
    fn output_is_bounded_and_escaped() {
        let s = shown(b"a\x1b[31m\nb");
        assert_eq!(s, "a\\u{1b}[31m | b");
        let long = vec![b'x'; 10_000];
        assert!(shown(&long).len() <= OUTPUT_LIMIT + '…'.len_utf8());
    }
}

//! What a watcher tells its clients: the typed `status` and switch reports,
//! built by the server (`host/serve.rs`) and read by `drctl status` and
//! `drctl switch`. Printed as JSON through `serde_json::Value`, whose keys are
//! sorted, so `status --output json` keeps its shape and key order.

use serde::{Deserialize, Serialize};

/// Who the watcher is, for `status`.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The agent's login name.
    pub agent: String,
    /// The backend plugin.
    pub backend: String,
    /// When the watcher started (wall clock).
    pub started: std::time::SystemTime,
    /// The watcher's recording (`--record`, `--record-dir`): a drill's report names it.
    pub recording: Option<String>,
}

/// The watcher's state (`drctl status`). Fields a watcher of another drctl
/// version leaves out read as their defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusReport {
    /// The agent's login name.
    pub agent: Option<String>,
    /// The backend plugin.
    pub backend: Option<String>,
    /// The watcher's process id.
    pub pid: u32,
    /// How long the watcher has run, e.g. "1h 2m 3s".
    pub uptime: String,
    /// Session time, nanoseconds.
    pub now: u64,
    /// The engine's phase.
    pub phase: String,
    /// The site connected to.
    pub site: Option<String>,
    /// The agent's preferred site, once read.
    pub preferred_site: Option<String>,
    /// The two sites the watcher knows (a `switch --to` names one of them).
    pub sites: Vec<String>,
    /// The current connection's epoch.
    pub epoch: Option<u64>,
    /// The four listeners.
    pub listeners: Listeners,
    /// Automatic switchovers held (E3).
    pub paused: bool,
    /// Who paused, why and until when (`drctl pause [--for] [--reason]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseRow>,
    /// The alarms up.
    pub alarms: Vec<String>,
    /// Pending timers, soonest first.
    pub timers: Vec<TimerRow>,
    /// The switchover in flight.
    pub switchover: Option<SwitchoverRow>,
    /// The switch scheduled for later (`drctl switch --at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduledRow>,
    /// The drill under way (a `drctl switch` with drill options).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillRow>,
    /// The DR options in force and where each came from (S3), once read.
    pub dr_options: Vec<DrOptionRow>,
    /// The last decision records (SPEC §6); kept as JSON so that a client
    /// shows decisions of a newer watcher it cannot parse by their type.
    pub last_decisions: Vec<serde_json::Value>,
}

/// The listeners' states, as the engine names them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Listeners {
    /// Telephony service.
    pub telephony: String,
    /// Configuration service.
    pub configuration: String,
    /// Statistic service.
    pub statistic: String,
    /// The agent's DN.
    pub dn: String,
}

/// Who paused the watcher's agent, why, and when it resumes by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRow {
    /// The control client, e.g. `uid 1000 (ann)`.
    pub by: String,
    /// `--reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `--for`: time left before it resumes by itself, e.g. `29m 58s`.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub left: Option<String>,
    /// Session time (ns) it resumes at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// One pending timer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TimerRow {
    /// The timer's name.
    pub timer: String,
    /// Time left, e.g. "10s".
    #[serde(rename = "in")]
    pub left: String,
    /// Its deadline in session time, nanoseconds.
    pub at: u64,
}

/// A DR option in force (S3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrOptionRow {
    /// `site-timeout` or `site-sip-register-timeout`.
    pub option: String,
    /// Its value, e.g. "30s"; `None` when set nowhere (off).
    pub value: Option<String>,
    /// `application` (the preferred AIL Application), `local-override` (a
    /// `policy.*` key) or `default` (set nowhere).
    pub source: String,
}

/// The switchover in flight.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchoverRow {
    /// Why.
    pub reason: String,
    /// The site left.
    pub from: String,
    /// The target.
    pub to: String,
}

/// A verified switchover and its per-phase timings (`drctl switch`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchReport {
    /// The site left.
    pub from: String,
    /// The site reached.
    pub to: String,
    /// The timing table, in order.
    pub phases: Vec<PhaseRow>,
}

/// One row of the timing table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseRow {
    /// The phase's name.
    pub phase: String,
    /// How long it took; `None` when it did not happen.
    pub seconds: Option<f64>,
}

impl SwitchReport {
    /// The timing table, on stderr (stdout carries the decisions).
    pub fn print_table(&self) {
        eprintln!("{:<20} {:>12}", "phase", "duration");
        for row in &self.phases {
            let d = row
                .seconds
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.3}s"));
            eprintln!("{:<20} {d:>12}", row.phase);
        }
    }
}

/// A fleet watcher's state (`drctl status` without `--agent`): a summary and
/// a row per agent (the first [`FLEET_ROWS`]; the summary counts them all).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetReport {
    /// The backend plugin.
    pub backend: Option<String>,
    /// The watcher's process id.
    pub pid: u32,
    /// How long the watcher has run, e.g. "1h 2m 3s".
    pub uptime: String,
    /// Session time, nanoseconds.
    pub now: u64,
    /// Counts over every agent.
    pub summary: FleetSummary,
    /// One row per agent, in the configured order.
    pub agents: Vec<AgentRow>,
    /// Agents left out of `agents` (beyond [`FLEET_ROWS`]).
    pub more: usize,
    /// The wave plan in progress (`drctl switch --agents/--wave`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<WaveReport>,
    /// Agents with a switch scheduled (`drctl switch --at --agent`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scheduled: Vec<ScheduledRow>,
    /// Drills under way (`drctl switch --agent A` with drill options).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillRow>,
}

/// A switch scheduled for later (`drctl switch --at`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduledRow {
    /// The agent.
    pub agent: String,
    /// When, RFC 3339 (UTC).
    pub at: String,
    /// Time left, from now, e.g. `29m 58s`.
    #[serde(rename = "in")]
    pub left: String,
    /// The target (`None`: the other site).
    pub to: Option<String>,
    /// Who asked, e.g. `uid 1000 (ann)` (`SO_PEERCRED`).
    pub by: String,
    /// `--reason`.
    pub reason: String,
    /// Gates to skip (`--skip-gate`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skip_gates: Vec<String>,
    /// Due, and waiting for what holds it (a switchover in flight, a drill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// Why a due switch waits, and for how long at most.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Held {
    /// What it waits for, e.g. `phase switching-over`.
    pub by: String,
    /// The most it waits from now before it is refused, e.g. `9m 58s`.
    pub at_most: String,
}

/// A drill the watcher runs (`drctl switch --abort-after/--lifetime/--rto/--report`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillRow {
    /// The agent.
    pub agent: String,
    /// The site it started from (where a rollback returns).
    pub origin: String,
    /// The site it moves to.
    pub target: String,
    /// `gating` (the switchover's gates run), `verifying` (in service at the
    /// target?), `holding` (verified, until `--lifetime` ends), `settling` (a
    /// switchover in flight finishes before the return) or `returning`.
    pub stage: String,
    /// The longest the stage may last from now, e.g. `1m 58s`.
    #[serde(rename = "stage_ends_in")]
    pub ends_in: String,
    /// When the drill started (wall clock, RFC 3339).
    pub started: String,
    /// Who asked (`SO_PEERCRED`).
    pub by: String,
    /// `--reason`.
    pub reason: String,
}

/// A wave plan (`drctl switch --agents 10% --wave 10% --wave-interval 30s`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaveReport {
    /// The target (`None`: each agent's other site).
    pub to: Option<String>,
    /// Who asked.
    pub by: String,
    /// `--reason`.
    pub reason: String,
    /// The agents selected, in the order they move.
    pub selected: usize,
    /// The waves, in order.
    pub waves: Vec<WaveRow>,
    /// The wave under way or next (1-based; `0`: none started yet).
    pub current: usize,
    /// Before the next wave starts, from now, e.g. `25s` (between waves).
    #[serde(rename = "next_in", skip_serializing_if = "Option::is_none")]
    pub next_in: Option<String>,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// Why it stopped (`failed`, `cancelled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One wave of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WaveRow {
    /// Its agents.
    pub agents: Vec<String>,
    /// `pending`, `switching`, `verified`, `failed` or `skipped`.
    pub state: String,
}

/// The most agent rows a fleet status carries (a reply line stays well under
/// the client's 1 MiB limit; `status --agent NAME` shows any one of them).
pub const FLEET_ROWS: usize = 2000;

/// Counts over a fleet's agents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetSummary {
    /// Agents the watcher runs.
    pub agents: usize,
    /// Connected with their listeners subscribed.
    pub watching: usize,
    /// Watching with the DN in service: agents that can take calls.
    pub in_service: usize,
    /// With a switchover in flight.
    pub switching: usize,
    /// With automatic switchovers held (E3).
    pub paused: usize,
    /// With at least one alarm up.
    pub alarmed: usize,
    /// Agents connected at each site, in the configured order.
    pub sites: Vec<SiteCount>,
}

/// Agents connected at one site.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteCount {
    /// The site.
    pub site: String,
    /// How many agents are connected there.
    pub agents: usize,
}

/// One agent of a fleet status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentRow {
    /// The agent's login name.
    pub agent: String,
    /// The engine's phase.
    pub phase: String,
    /// The site connected to.
    pub site: Option<String>,
    /// The DN's state.
    pub dn: String,
    /// Automatic switchovers held (E3).
    pub paused: bool,
    /// The alarms up.
    pub alarms: Vec<String>,
    /// The switchover in flight.
    pub switchover: Option<SwitchoverRow>,
}

/// What the watcher itself decided on an operator's behalf, not its engine:
/// a schedule and a wave plan. Recorded in the history (`type` as below)
/// and streamed to a wave's client as progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Note {
    /// `switch --at`: a switch is scheduled.
    SwitchScheduled {
        /// When, RFC 3339.
        at: String,
        /// The target (`None`: the other site).
        to: Option<String>,
    },
    /// `switch --cancel`: the scheduled switch will not happen.
    SwitchCancelled {
        /// When it was due, RFC 3339.
        at: String,
        /// Its target.
        to: Option<String>,
    },
    /// The scheduled time came: the switch starts (gates apply), or is
    /// refused (`refused` says why).
    SwitchFired {
        /// When it was due, RFC 3339.
        at: String,
        /// Its target.
        to: Option<String>,
        /// Why it did not start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    },
    /// A wave of a plan starts switching.
    WaveStarted {
        /// 1-based.
        wave: usize,
        /// How many waves.
        of: usize,
        /// Its agents.
        agents: Vec<String>,
    },
    /// Every switchover of a wave is verified.
    WaveVerified {
        /// 1-based.
        wave: usize,
        /// How many waves.
        of: usize,
    },
    /// The plan stopped: a wave failed (`failed`) or it was cancelled.
    WavesStopped {
        /// `failed` or `cancelled`.
        state: String,
        /// Why.
        why: String,
    },
    /// A drill run by the watcher returns to its origin (`--abort-after`
    /// fired, `--lifetime` ended), its gates skipped; with or without its client.
    DrillReturn {
        /// `--abort-after 10s`, `--lifetime 30m`.
        why: String,
        /// The origin.
        to: String,
    },
    /// A drill run by the watcher ended: `PASS` or `FAIL` (the first failure).
    DrillEnded {
        /// `PASS` or `FAIL`.
        verdict: String,
        /// The first failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
}

impl Note {
    /// The note in words, e.g. `wave 1/3 verified`.
    pub fn describe(&self) -> String {
        let to = |t: &Option<String>| t.clone().unwrap_or_else(|| "the other site".to_owned());
        match self {
            Note::SwitchScheduled { at, to: t } => format!("switch to {} scheduled at {at}", to(t)),
            Note::SwitchCancelled { at, to: t } => {
                format!("scheduled switch to {} at {at} cancelled", to(t))
            }
            Note::SwitchFired { at, to: t, refused } => match refused {
                None => format!("scheduled switch to {} at {at}: starting", to(t)),
                Some(why) => format!("scheduled switch to {} at {at}: refused: {why}", to(t)),
            },
            Note::WaveStarted { wave, of, agents } => {
                format!("wave {wave}/{of} switching: {}", agents.join(", "))
            }
            Note::WaveVerified { wave, of } => format!("wave {wave}/{of} verified"),
            Note::WavesStopped { state, why } => format!("wave plan {state}: {why}"),
            Note::DrillReturn { why, to } => format!("drill: {why}: switching back to {to}"),
            Note::DrillEnded { verdict, why } => match why {
                None => format!("drill {verdict}"),
                Some(why) => format!("drill {verdict}: {why}"),
            },
        }
    }
}

/// Time left as people read a countdown in `status`: whole seconds from
/// 10 s on (as a clock counts down), milliseconds below (a 100 ms
/// site-timeout still shows).
pub fn time_left(d: std::time::Duration) -> String {
    let shown = if d >= std::time::Duration::from_secs(10) {
        std::time::Duration::from_secs(d.as_secs())
    } else {
        std::time::Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
    };
    humantime::format_duration(shown).to_string()
}

#[cfg(test)]
mod tests {
    use super::time_left;
    use std::time::Duration;

    #[test]
    fn time_left_is_whole_seconds_from_ten_seconds_and_milliseconds_below() {
        assert_eq!(time_left(Duration::from_millis(3_600_000)), "1h");
        assert_eq!(time_left(Duration::from_millis(3_599_988)), "59m 59s");
        assert_eq!(time_left(Duration::from_millis(29_400)), "29s");
        assert_eq!(time_left(Duration::from_millis(9_450)), "9s 450ms");
        assert_eq!(time_left(Duration::from_micros(99_900)), "99ms");
        assert_eq!(time_left(Duration::ZERO), "0s");
    }
}

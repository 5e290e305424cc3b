//! Operator work a watcher carries out over time, in its loop: a switch
//! scheduled for later (`drctl switch --at`), a fleet's wave plan
//! (`drctl switch --agents 10% --wave 10% --wave-interval 30s`) and a drill
//! (`drctl switch --abort-after 2m --lifetime 30m --report r.html`): its
//! deadlines, its return to the origin and its report, built by the same
//! [`Experiment`] as a local drill's; a drill whose client left goes on to
//! its end (the return included) and is recorded in the history.
//!
//! Both are deadlines of the host, like `pause --for`'s end: the sans-IO
//! engine never sees a wall-clock schedule, only the operator switchover
//! when it is due, through the same path as an immediate one (gates apply).
//! Neither survives a restart of the watcher: a schedule lives in its
//! memory (the history keeps that it was scheduled, cancelled or fired).

use crate::control::Reply;
use crate::host::drill::{back_already, no_site_watched, return_intent, Drill, Experiment, Stream};
use crate::host::gate::OperatorIntent;
use crate::host::{Backend, Host, HostError};
use crate::report::{DrillRow, Held, Note, ScheduledRow, WaveReport, WaveRow};
use drctl_policy::{ListenerStatus, PhaseKind, Reason, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::UnboundedSender;

/// What the loop carries out for operators, by deadline.
#[derive(Default)]
pub(crate) struct Plans {
    /// At most one per agent.
    scheduled: Vec<Scheduled>,
    /// At most one plan at a time.
    wave: Option<Wave>,
    /// At most one per agent.
    drills: Vec<DrillRun>,
}

impl Plans {
    /// The earliest time something of theirs is due.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        let scheduled = self.scheduled.iter().map(Scheduled::due).min();
        let wave = self.wave.as_ref().and_then(Wave::deadline);
        let drills = self.drills.iter().map(|d| d.stage.until()).min();
        scheduled.into_iter().chain(wave).chain(drills).min()
    }
}

/// A drill the watcher runs for a client: its switchover, verified within
/// `--abort-after` (else back to the origin), held for `--lifetime` (then
/// back), and ended with the report as the client's last line.
pub(crate) struct DrillRun {
    /// The agent (index in the host).
    agent: usize,
    /// The target (`None`: the other site).
    to: Option<String>,
    /// Gates to skip, and why (`--reason`, required).
    intent: OperatorIntent,
    /// Who asked (`None`: this process, a local drill).
    by: Option<String>,
    /// Whether the client gets the decisions too (a local drill prints its own).
    streams: bool,
    /// The client (gone: the drill goes on to its end).
    client: Option<UnboundedSender<Reply>>,
    /// The report so far.
    exp: Experiment,
    /// The agent before the switchover (the steady state before: once the
    /// switchover starts, its listeners are being reset).
    before: drctl_policy::View,
    /// The drill's own switchover.
    drill: Rc<RefCell<Drill>>,
    /// Where it is.
    stage: Stage,
}

/// Where a watcher's drill is; each stage waits at most until its `until`.
enum Stage {
    /// The switchover's gates run.
    Gating { until: Timestamp },
    /// Started at `trigger` from `from`: in service at the target by `until`?
    Verifying {
        trigger: Timestamp,
        from: String,
        until: Timestamp,
    },
    /// Verified: held until `--lifetime` ends.
    Holding {
        trigger: Timestamp,
        from: String,
        until: Timestamp,
    },
    /// Returning (`why`): a switchover still in flight is let finish first.
    Settling {
        trigger: Timestamp,
        origin: String,
        why: String,
        until: Timestamp,
    },
    /// The return switchover `back`, started at `started`.
    Returning {
        trigger: Timestamp,
        origin: String,
        why: String,
        back: Rc<RefCell<Drill>>,
        started: Timestamp,
        until: Timestamp,
    },
}

impl DrillRun {
    /// Its row for `status`, the stage's time left counted from `now`.
    fn row(&self, now: Timestamp) -> DrillRow {
        let r = &self.exp.report;
        DrillRow {
            agent: r.agent.clone(),
            origin: r.hypothesis.origin.clone(),
            target: r.hypothesis.target.clone(),
            stage: self.stage.name().to_owned(),
            ends_in: left(self.stage.until(), now),
            started: r.started.clone(),
            by: self.by.clone().unwrap_or_default(),
            reason: self.intent.why.clone().unwrap_or_default(),
        }
    }
}

impl Stage {
    /// Its name in `status`.
    fn name(&self) -> &'static str {
        match self {
            Stage::Gating { .. } => "gating",
            Stage::Verifying { .. } => "verifying",
            Stage::Holding { .. } => "holding",
            Stage::Settling { .. } => "settling",
            Stage::Returning { .. } => "returning",
        }
    }

    fn until(&self) -> Timestamp {
        match self {
            Stage::Gating { until }
            | Stage::Verifying { until, .. }
            | Stage::Holding { until, .. }
            | Stage::Settling { until, .. }
            | Stage::Returning { until, .. } => *until,
        }
    }
}

/// What a drill through the watcher is asked to do, and by whom.
pub(crate) struct DrillOrder {
    /// The target (`None`: the other site).
    pub to: Option<String>,
    /// Gates to skip, and why.
    pub intent: OperatorIntent,
    /// Who asked (`None`: this process, a local drill).
    pub by: Option<String>,
    /// `--timeout`, `--abort-after`, `--lifetime`, `--rto`.
    pub limits: crate::host::drill::Limits,
    /// Whether the client gets the decisions too (a local drill prints its own).
    pub streams: bool,
    /// The recording its report names (`None`: the watcher's, if any).
    pub recording: Option<String>,
}

/// A switch due later (`switch --at`).
pub(crate) struct Scheduled {
    /// The agent (index in the host).
    pub agent: usize,
    /// When, session time.
    pub at: Timestamp,
    /// When, as asked (wall clock).
    pub wall: SystemTime,
    /// The target (`None`: the other site).
    pub to: Option<String>,
    /// Gates to skip, and why (`--reason`, required).
    pub intent: OperatorIntent,
    /// Who asked (`SO_PEERCRED`).
    pub by: String,
    /// Due since then, and waiting for what holds its agent (a switchover
    /// in flight, a drill) to end.
    pub held_since: Option<Timestamp>,
}

/// How long a due switch waits for its agent's switchover in flight or
/// drill to end before it is refused. A switchover ends within its own
/// timeouts, far sooner; a drill's `--lifetime` may not, and a switch that
/// long overdue is no longer what the operator planned.
pub(crate) const HOLD_AT_MOST: Duration = Duration::from_secs(600);

impl Scheduled {
    /// When it fires: at its time, or once held, when the hold runs out
    /// (what holds it ending wakes the loop before that).
    fn due(&self) -> Timestamp {
        match self.held_since {
            Some(since) => since + HOLD_AT_MOST,
            None => self.at,
        }
    }

    /// Its row for `status`, the time left counted from `now`.
    pub(crate) fn row(&self, agent: &str, now: Timestamp, holder: Option<String>) -> ScheduledRow {
        ScheduledRow {
            agent: agent.to_owned(),
            at: rfc3339(self.wall),
            left: left(self.at, now),
            to: self.to.clone(),
            by: self.by.clone(),
            reason: self.intent.why.clone().unwrap_or_default(),
            skip_gates: self.intent.skip.clone(),
            held: self.held_since.zip(holder).map(|(_, by)| Held {
                by,
                at_most: left(self.due(), now),
            }),
        }
    }

    fn note_scheduled(&self) -> Note {
        Note::SwitchScheduled {
            at: rfc3339(self.wall),
            to: self.to.clone(),
        }
    }
}

/// A wave plan: the selected agents, wave after wave, each once the
/// previous one is verified and the interval has passed.
pub(crate) struct Wave {
    /// The target (`None`: each agent's other site).
    pub to: Option<String>,
    /// Gates to skip, and why.
    pub intent: OperatorIntent,
    /// Who asked.
    pub by: String,
    /// Between a wave verified and the next one's start.
    pub interval: Duration,
    /// How long a wave's switchovers may take to verify.
    pub timeout: Duration,
    /// The waves: (agent index, name) each.
    pub waves: Vec<Vec<(usize, String)>>,
    /// The wave under way (0-based), if one is.
    current: Option<Running>,
    /// Waves finished (verified).
    verified: usize,
    /// When the next wave starts.
    next_at: Option<Timestamp>,
    /// The client that asked (gone: the plan goes on).
    client: Option<UnboundedSender<Reply>>,
}

/// A switchover a wave started (its drill), or why it did not start.
type Started = Result<Rc<RefCell<Drill>>, String>;

/// What a wave plan is asked to do (`switch --to --reason --skip-gate
/// --wave-interval --timeout`), and by whom.
pub(crate) struct WaveOrder {
    /// The target (`None`: each agent's other site).
    pub to: Option<String>,
    /// Gates to skip, and why.
    pub intent: OperatorIntent,
    /// Who asked.
    pub by: String,
    /// Between a wave verified and the next one's start.
    pub interval: Duration,
    /// How long a wave's switchovers may take to verify.
    pub timeout: Duration,
}

/// The switchovers of the wave under way.
struct Running {
    /// Per agent: index, name, its drill (`None`: refused at once, with why).
    drills: Vec<(usize, String, Started)>,
    /// Verified by then, or the wave fails.
    deadline: Timestamp,
}

impl Wave {
    /// A plan of `waves`, its first wave due at once.
    pub(crate) fn new(
        order: WaveOrder,
        waves: Vec<Vec<(usize, String)>>,
        client: UnboundedSender<Reply>,
        now: Timestamp,
    ) -> Wave {
        let WaveOrder {
            to,
            intent,
            by,
            interval,
            timeout,
        } = order;
        Wave {
            to,
            intent,
            by,
            interval,
            timeout,
            waves,
            current: None,
            verified: 0,
            next_at: Some(now),
            client: Some(client),
        }
    }

    fn deadline(&self) -> Option<Timestamp> {
        match &self.current {
            Some(r) => Some(r.deadline),
            None => self.next_at,
        }
    }

    /// Its report for `status` and the client, as of `now`.
    pub(crate) fn report(&self, state: &str, error: Option<String>, now: Timestamp) -> WaveReport {
        let waves = self
            .waves
            .iter()
            .enumerate()
            .map(|(k, agents)| WaveRow {
                agents: agents.iter().map(|(_, n)| n.clone()).collect(),
                state: if k < self.verified {
                    "verified"
                } else if self.current.is_some() && k == self.verified {
                    if state == "failed" {
                        "failed"
                    } else {
                        "switching"
                    }
                } else if state == "running" {
                    "pending"
                } else {
                    "skipped"
                }
                .to_owned(),
            })
            .collect();
        WaveReport {
            to: self.to.clone(),
            by: self.by.clone(),
            reason: self.intent.why.clone().unwrap_or_default(),
            selected: self.waves.iter().map(Vec::len).sum(),
            waves,
            current: self.verified + usize::from(self.current.is_some() || state == "running"),
            next_in: self
                .next_at
                .filter(|_| self.current.is_none() && state == "running")
                .map(|at| left(at, now)),
            state: state.to_owned(),
            error,
        }
    }

    fn tell(&mut self, reply: Reply) {
        if let Some(c) = &self.client {
            if c.send(reply).is_err() {
                // The client left: the plan goes on without it.
                self.client = None;
            }
        }
    }

    /// Streams `note` to the client as progress.
    fn progress(&mut self, note: &Note) {
        if let Ok(value) = serde_json::to_value(note) {
            self.tell(Reply::progress(value));
        }
    }
}

/// `at` in RFC 3339, UTC, whole seconds.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// From `now` to `at` (nothing once passed), as `status` shows time left.
fn left(at: Timestamp, now: Timestamp) -> String {
    crate::report::time_left(at.saturating_duration_since(now))
}

impl<B: Backend> Host<B> {
    /// Agent `i`'s scheduled switch, if any.
    /// Agent `i`'s scheduled switch, as `status` shows it.
    pub(crate) fn scheduled_row(&self, i: usize, now: Timestamp) -> Option<ScheduledRow> {
        let s = self.plans.scheduled.iter().find(|s| s.agent == i)?;
        Some(self.status_row(s, now))
    }

    /// Every scheduled switch's row for a fleet's `status`.
    pub(crate) fn scheduled_rows(&self, now: Timestamp) -> Vec<ScheduledRow> {
        let rows = self.plans.scheduled.iter();
        rows.map(|s| self.status_row(s, now)).collect()
    }

    /// `s` as `status` shows it: held by what, if it is.
    fn status_row(&self, s: &Scheduled, now: Timestamp) -> ScheduledRow {
        let holder = s.held_since.and_then(|_| self.holder(s.agent, &self.plans));
        s.row(&self.agent_name(s.agent), now, holder)
    }

    /// Agent `i`'s drill under way, as `status` shows it.
    pub(crate) fn drill_row(&self, i: usize, now: Timestamp) -> Option<DrillRow> {
        let run = self.plans.drills.iter().find(|d| d.agent == i)?;
        Some(run.row(now))
    }

    /// The stage of agent `i`'s drill under way (`verifying`, ...).
    pub(crate) fn drill_stage(&self, i: usize) -> Option<&'static str> {
        let run = self.plans.drills.iter().find(|d| d.agent == i)?;
        Some(run.stage.name())
    }

    /// Every drill under way, for a fleet's `status`.
    pub(crate) fn drill_rows(&self, now: Timestamp) -> Vec<DrillRow> {
        self.plans.drills.iter().map(|d| d.row(now)).collect()
    }

    /// Agent `i`'s scheduled switch, if any.
    pub(crate) fn scheduled(&self, i: usize) -> Option<&Scheduled> {
        self.plans.scheduled.iter().find(|s| s.agent == i)
    }

    /// The wave plan in progress, for `status`.
    pub(crate) fn wave_report(&self) -> Option<WaveReport> {
        let now = self.now();
        self.plans
            .wave
            .as_ref()
            .map(|w| w.report("running", None, now))
    }

    /// Whether a wave plan is under way.
    pub(crate) fn wave_running(&self) -> bool {
        self.plans.wave.is_some()
    }

    /// Schedules `s`; refused (why) when agent `s.agent` has one already, or
    /// its time is not within [`crate::schedule::MAX_AHEAD`] from now.
    pub(crate) fn schedule(&mut self, mut s: Scheduled) -> Result<ScheduledRow, String> {
        let name = self.agent_name(s.agent);
        if let Some(old) = self.scheduled(s.agent) {
            return Err(format!(
                "a switch of {name} is scheduled already (at {}, to {}): cancel it first \
                 (drctl switch --cancel)",
                rfc3339(old.wall),
                old.to.as_deref().unwrap_or("the other site")
            ));
        }
        let ahead = s.wall.duration_since(SystemTime::now()).map_err(|_| {
            format!(
                "--at {}: that time has passed (the watcher's clock says {})",
                rfc3339(s.wall),
                rfc3339(SystemTime::now())
            )
        })?;
        if ahead > crate::schedule::MAX_AHEAD {
            return Err(format!(
                "--at {}: more than {} ahead, the furthest a switch is scheduled",
                rfc3339(s.wall),
                humantime::format_duration(crate::schedule::MAX_AHEAD)
            ));
        }
        let now = self.now();
        s.at = now + ahead;
        let row = s.row(&name, now, None);
        tracing::info!(
            "{name}: switch to {} scheduled at {} by {} ({})",
            row.to.as_deref().unwrap_or("the other site"),
            row.at,
            row.by,
            crate::logging::escape(&row.reason)
        );
        self.note(s.agent, now, &s.note_scheduled(), &s.intent, Some(&s.by));
        self.plans.scheduled.push(s);
        Ok(row)
    }

    /// Cancels agent `i`'s scheduled switch; its row, or `None` when none is.
    pub(crate) fn cancel_scheduled(&mut self, i: usize, by: &str) -> Option<ScheduledRow> {
        let k = self.plans.scheduled.iter().position(|s| s.agent == i)?;
        let s = self.plans.scheduled.remove(k);
        let now = self.now();
        let name = self.agent_name(i);
        tracing::info!(
            "{name}: the switch scheduled at {} is cancelled by {by}",
            rfc3339(s.wall)
        );
        let note = Note::SwitchCancelled {
            at: rfc3339(s.wall),
            to: s.to.clone(),
        };
        self.note(i, now, &note, &s.intent, Some(by));
        Some(s.row(&name, now, None))
    }

    /// Starts `wave` (its first wave now).
    pub(crate) fn start_wave(&mut self, wave: Wave) {
        self.plans.wave = Some(wave);
    }

    /// Stops the wave plan: the waves not started are dropped (a wave under
    /// way finishes its switchovers). Its report, or `None` when none runs.
    pub(crate) fn cancel_wave(&mut self, by: &str) -> Option<WaveReport> {
        let wave = self.plans.wave.take()?;
        let why = format!("cancelled by {by} (drctl switch --cancel)");
        let report = wave.report("cancelled", Some(why.clone()), self.now());
        self.end_wave(wave, "cancelled", why, report.clone());
        Some(report)
    }

    /// Agent `i`'s login name.
    fn agent_name(&self, i: usize) -> String {
        self.engine(i)
            .map(|e| e.username().to_owned())
            .unwrap_or_default()
    }

    /// Tells the observers (the history) of `note` for agent `i`.
    fn note(
        &mut self,
        i: usize,
        now: Timestamp,
        note: &Note,
        intent: &OperatorIntent,
        by: Option<&str>,
    ) {
        let Some(session) = self.session(i).map(str::to_owned) else {
            return;
        };
        for o in &mut self.observers {
            o.note(now, &session, note, intent.why.as_deref(), by);
        }
    }

    /// Carries out what is due at `now`: scheduled switches, the wave plan's
    /// next step. Called at the end of each pass at a time.
    pub(super) fn step_plans(&mut self, now: Timestamp) -> Result<(), HostError> {
        // Taken out while stepping: a switch started here runs the loop's
        // own passes (inject), which must not step the plans again.
        let mut plans = std::mem::take(&mut self.plans);
        let result = self.step(&mut plans, now);
        // Anything planned meanwhile (nothing is: control requests are
        // answered between passes) is kept.
        plans.scheduled.append(&mut self.plans.scheduled);
        plans.drills.append(&mut self.plans.drills);
        if plans.wave.is_none() {
            plans.wave = self.plans.wave.take();
        }
        self.plans = plans;
        result
    }

    fn step(&mut self, plans: &mut Plans, now: Timestamp) -> Result<(), HostError> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut plans.scheduled)
            .into_iter()
            .partition(|s| s.at <= now);
        plans.scheduled = later;
        for mut s in due {
            // A switch due while its agent is switching over or in a drill
            // waits for that to end (then starts), not refused at once.
            match self.holder(s.agent, plans) {
                Some(by) if s.held_since.is_none_or(|since| since + HOLD_AT_MOST > now) => {
                    if s.held_since.is_none() {
                        s.held_since = Some(now);
                        tracing::info!(
                            "{}: the switch scheduled at {} is due; it waits for the {by} to end \
                             (at most {})",
                            self.agent_name(s.agent),
                            rfc3339(s.wall),
                            humantime::format_duration(HOLD_AT_MOST)
                        );
                    }
                    plans.scheduled.push(s);
                }
                // Held too long: refused without touching what holds it.
                Some(by) => {
                    let why = format!(
                        "the {by} had not ended {} after the switch was due",
                        humantime::format_duration(HOLD_AT_MOST)
                    );
                    self.fire(s, now, Some(why))?;
                }
                None => self.fire(s, now, None)?,
            }
        }
        if let Some(wave) = plans.wave.take() {
            plans.wave = self.step_wave(wave, now)?;
        }
        for run in std::mem::take(&mut plans.drills) {
            if let Some(run) = self.step_drill(run, now)? {
                plans.drills.push(run);
            }
        }
        Ok(())
    }

    /// What holds agent `i` from starting a switch now: its switchover in
    /// flight (any phase but watching) or its drill.
    fn holder(&self, i: usize, plans: &Plans) -> Option<String> {
        if plans.drills.iter().any(|d| d.agent == i) {
            return Some("drill".to_owned());
        }
        let phase = self.engine(i)?.view().phase;
        (phase != PhaseKind::Watching).then(|| format!("phase {}", phase.as_str()))
    }

    /// A scheduled switch is due: started as an immediate one would be,
    /// unless already `refused`.
    fn fire(
        &mut self,
        s: Scheduled,
        now: Timestamp,
        refused: Option<String>,
    ) -> Result<(), HostError> {
        let name = self.agent_name(s.agent);
        let refused = match refused {
            Some(why) => Some(why),
            None => self
                .begin_switch(
                    s.agent,
                    s.to.clone(),
                    s.intent.clone(),
                    Some(&s.by),
                    None,
                    Stream::Named(name.clone()),
                )?
                .err(),
        };
        match &refused {
            None => tracing::info!("{name}: the switch scheduled at {} starts", rfc3339(s.wall)),
            Some(why) => tracing::warn!(
                "{name}: the switch scheduled at {} was refused: {why}",
                rfc3339(s.wall)
            ),
        }
        let note = Note::SwitchFired {
            at: rfc3339(s.wall),
            to: s.to.clone(),
            refused,
        };
        self.note(s.agent, now, &note, &s.intent, Some(&s.by));
        Ok(())
    }

    /// The plan's next step; `None` once it has ended (the client told).
    fn step_wave(&mut self, mut wave: Wave, now: Timestamp) -> Result<Option<Wave>, HostError> {
        let of = wave.waves.len();
        loop {
            if let Some(running) = &wave.current {
                match self.wave_verdict(running, wave.timeout, now) {
                    Err(why) => {
                        let k = wave.verified + 1;
                        let why = format!(
                            "wave {k}/{of} failed: {why}; the {} later wave(s) were not started",
                            of - k
                        );
                        let report = wave.report("failed", Some(why.clone()), now);
                        self.end_wave(wave, "failed", why, report);
                        return Ok(None);
                    }
                    Ok(false) => return Ok(Some(wave)),
                    Ok(true) => {}
                }
                wave.current = None;
                wave.verified += 1;
                wave.progress(&Note::WaveVerified {
                    wave: wave.verified,
                    of,
                });
                if wave.verified == of {
                    let report = wave.report("done", None, now);
                    tracing::info!("wave plan done: {} agents in {of} waves", report.selected);
                    wave.tell(Reply {
                        wave: Some(report),
                        ..Reply::ok()
                    });
                    return Ok(None);
                }
                wave.next_at = Some(now + wave.interval);
            }
            if wave.next_at.is_none_or(|t| t > now) {
                return Ok(Some(wave));
            }
            wave.next_at = None;
            let agents = wave.waves[wave.verified].clone();
            let note = Note::WaveStarted {
                wave: wave.verified + 1,
                of,
                agents: agents.iter().map(|(_, n)| n.clone()).collect(),
            };
            tracing::info!("{}", note.describe());
            wave.progress(&note);
            if let Some((first, _)) = agents.first() {
                self.note(*first, now, &note, &wave.intent, Some(&wave.by));
            }
            let mut drills = Vec::with_capacity(agents.len());
            for (i, name) in agents {
                let drill = self.begin_switch(
                    i,
                    wave.to.clone(),
                    wave.intent.clone(),
                    Some(&wave.by),
                    wave.client.clone(),
                    Stream::Named(name.clone()),
                )?;
                drills.push((i, name, drill));
            }
            wave.current = Some(Running {
                drills,
                deadline: now + wave.timeout,
            });
            // Looked at again at once: refused at once, or verified in the
            // same instant (the mock's virtual clock).
        }
    }

    /// Whether every switchover of the wave under way is verified (`Ok(false)`:
    /// not yet), or why the wave failed.
    fn wave_verdict(
        &self,
        running: &Running,
        timeout: Duration,
        now: Timestamp,
    ) -> Result<bool, String> {
        let mut verified = true;
        for (i, name, drill) in &running.drills {
            let d = match drill {
                Ok(d) => d.borrow(),
                Err(why) => return Err(format!("{name}: {why}")),
            };
            let verdict = match d.refused_why() {
                Some(why) => Some(Err(why)),
                None => self
                    .engine(*i)
                    .and_then(|e| d.verdict(e))
                    .map(|v| v.map(|_| ())),
            };
            match verdict {
                Some(Ok(())) => {}
                Some(Err(why)) => return Err(format!("{name}: {why}")),
                None if now >= running.deadline => {
                    return Err(format!(
                    "{name}: not verified within {} (telephony ON, DN in service at the target)",
                    humantime::format_duration(timeout)
                ))
                }
                None => verified = false,
            }
        }
        Ok(verified)
    }

    /// Ends `wave` (`state`: failed, cancelled), recorded and told.
    fn end_wave(&mut self, mut wave: Wave, state: &str, why: String, report: WaveReport) {
        tracing::warn!("wave plan {state}: {why}");
        let note = Note::WavesStopped {
            state: state.to_owned(),
            why: why.clone(),
        };
        if let Some((first, _)) = wave.waves.first().and_then(|w| w.first()) {
            self.note(*first, self.now(), &note, &wave.intent, Some(&wave.by));
        }
        wave.tell(Reply {
            wave: Some(report),
            ..Reply::error(why)
        });
    }
}

impl DrillRun {
    /// Streams `note` to the client as progress (gone: the drill goes on
    /// without it).
    fn progress(&mut self, note: &Note) {
        let Ok(value) = serde_json::to_value(note) else {
            return;
        };
        if let Some(c) = &self.client {
            if c.send(Reply::progress(value)).is_err() {
                self.client = None;
            }
        }
    }
}

impl<B: Backend> Host<B> {
    /// Whether agent `i` has a drill under way.
    pub(crate) fn drill_running(&self, i: usize) -> bool {
        self.plans.drills.iter().any(|d| d.agent == i)
    }

    /// Starts a drill of agent `i` for `client`: the steady state before,
    /// then the switchover (its gates apply). The reply when it ended at
    /// once (the origin unhealthy, the switchover refused); `None` when the
    /// drill answers later, with its report.
    pub(crate) fn start_drill(
        &mut self,
        i: usize,
        order: DrillOrder,
        client: UnboundedSender<Reply>,
    ) -> Result<Option<Reply>, HostError> {
        let name = self.agent_name(i);
        if self.drill_running(i) {
            return Ok(Some(Reply::error(format!(
                "a drill of {name} is under way: wait for its end (drctl status)"
            ))));
        }
        let Some(engine) = self.engine(i) else {
            return Ok(Some(Reply::error(format!("no agent #{i}"))));
        };
        let view = engine.view();
        let origin = view.site.as_deref().unwrap_or_default().to_owned();
        let target = order.to.clone().unwrap_or_else(|| {
            engine
                .config()
                .sites
                .iter()
                .map(|s| s.name.to_string())
                .find(|s| *s != origin)
                .unwrap_or_default()
        });
        let mut exp = Experiment::new(
            name.clone(),
            order.intent.why.clone(),
            (&origin, &target),
            &view,
            order.limits,
            order
                .recording
                .clone()
                .or_else(|| self.identity.as_ref().and_then(|id| id.recording.clone())),
        );
        tracing::info!(
            "{name}: drill to {target} for {} ({})",
            order.by.as_deref().unwrap_or("this process"),
            crate::logging::escape(order.intent.why.as_deref().unwrap_or("-"))
        );
        if !exp.origin_healthy(&view) {
            return Ok(Some(self.drill_ended_at_once(i, exp, origin, &order)));
        }
        let started = self.begin_switch(
            i,
            order.to.clone(),
            order.intent.clone(),
            order.by.as_deref(),
            order.streams.then(|| client.clone()),
            Stream::Decisions,
        )?;
        let drill = match started {
            Ok(drill) => drill,
            Err(why) => {
                exp.before(&view, Vec::new(), Some(why));
                return Ok(Some(self.drill_ended_at_once(i, exp, origin, &order)));
            }
        };
        let now = self.now();
        let run = DrillRun {
            agent: i,
            to: order.to,
            intent: order.intent,
            by: order.by,
            streams: order.streams,
            client: Some(client),
            exp,
            before: view,
            drill,
            stage: Stage::Gating {
                until: now + order.limits.timeout,
            },
        };
        // Looked at in this pass already: the gates may have passed and
        // the switchover started in the same instant.
        if let Some(run) = self.step_drill(run, now)? {
            self.plans.drills.push(run);
        }
        Ok(None)
    }

    /// The drill's next step at `now`; `None` once it has ended (the client told).
    fn step_drill(
        &mut self,
        mut run: DrillRun,
        now: Timestamp,
    ) -> Result<Option<DrillRun>, HostError> {
        let i = run.agent;
        let limits = run.exp.limits;
        loop {
            let view = match self.engine(i) {
                Some(e) => e.view(),
                None => return Ok(None),
            };
            // Each stage waits for its event until its deadline.
            if self.drill_waits(&run, &view) && now < run.stage.until() {
                return Ok(Some(run));
            }
            let next = match std::mem::replace(&mut run.stage, Stage::Gating { until: now }) {
                Stage::Gating { .. } => {
                    let (refused, gates, started) = {
                        let d = run.drill.borrow();
                        let t = d.times.borrow();
                        (t.refused.clone(), t.gates.clone(), t.started)
                    };
                    match (refused, started) {
                        (Some(why), _) => {
                            run.exp.before(&run.before, gates, Some(why));
                            return Ok(self.end_drill(run, false));
                        }
                        (None, Some(trigger)) => {
                            run.exp.before(&run.before, gates, None);
                            let from = run.drill.borrow().origin();
                            Stage::Verifying {
                                trigger,
                                from,
                                until: trigger + limits.verify_for(),
                            }
                        }
                        (None, None) => {
                            run.exp.before(
                                &run.before,
                                gates,
                                Some(format!(
                                    "the switchover's gates did not answer within {}",
                                    humantime::format_duration(limits.timeout)
                                )),
                            );
                            return Ok(self.end_drill(run, false));
                        }
                    }
                }
                Stage::Verifying { trigger, from, .. } => {
                    let in_service = self
                        .engine(i)
                        .is_some_and(|e| run.drill.borrow().in_service(e));
                    let verified = in_service && run.drill.borrow().verdict_ok(run.to.as_deref());
                    let dn_back = run.drill.borrow().times.borrow().dn_back;
                    if let Some(dn_back) = dn_back.filter(|_| verified) {
                        run.exp.measured(trigger, dn_back);
                    }
                    if !verified {
                        match run.exp.not_verified(&from, &view) {
                            Some(why) => Stage::Settling {
                                trigger,
                                origin: from,
                                why,
                                until: now + limits.timeout,
                            },
                            None => return Ok(self.end_drill_at(run, trigger)),
                        }
                    } else {
                        let landed = view.site.as_deref().unwrap_or_default().to_owned();
                        let gates =
                            self.gates_now(i, Reason::Operator, &from, &landed, &run.intent);
                        run.exp.after(&landed, &view, gates);
                        match limits.lifetime {
                            Some(lifetime) => Stage::Holding {
                                trigger,
                                from,
                                until: trigger + lifetime,
                            },
                            None => return Ok(self.end_drill_at(run, trigger)),
                        }
                    }
                }
                Stage::Holding { trigger, from, .. } => match run.exp.lifetime_ended() {
                    Some(why) => Stage::Settling {
                        trigger,
                        origin: from,
                        why,
                        until: now + limits.timeout,
                    },
                    None => return Ok(self.end_drill_at(run, trigger)),
                },
                Stage::Settling {
                    trigger,
                    origin,
                    why,
                    ..
                } => {
                    let watching = view.phase == PhaseKind::Watching;
                    let at_s = now.saturating_duration_since(trigger).as_secs_f64();
                    let here = view.site.as_deref().unwrap_or_default().to_owned();
                    if here == origin {
                        let ok = view.telephony == ListenerStatus::On;
                        let outcome = back_already(&origin, &view);
                        run.exp.returned_without_switch(&why, at_s, outcome, ok);
                        return Ok(self.end_drill_at(run, trigger));
                    }
                    if !watching {
                        let outcome = no_site_watched(limits.timeout);
                        run.exp.returned_without_switch(&why, at_s, outcome, false);
                        return Ok(self.end_drill_at(run, trigger));
                    }
                    tracing::info!(
                        "{}: drill: {why}: switching back to {origin}",
                        self.agent_name(i)
                    );
                    let note = Note::DrillReturn {
                        why: why.clone(),
                        to: origin.clone(),
                    };
                    run.progress(&note);
                    self.note(i, now, &note, &run.intent, run.by.as_deref());
                    run.drill.borrow_mut().mute();
                    let intent = return_intent(self.gate_names(), &why);
                    let back = self.begin_switch(
                        i,
                        Some(origin.clone()),
                        intent,
                        run.by.as_deref(),
                        run.client.clone().filter(|_| run.streams),
                        Stream::Decisions,
                    )?;
                    match back {
                        Ok(back) => {
                            let started = back.borrow().times.borrow().started.unwrap_or(now);
                            Stage::Returning {
                                trigger,
                                origin,
                                why,
                                back,
                                started,
                                until: started + limits.timeout,
                            }
                        }
                        Err(refused) => {
                            let outcome = format!("refused: {refused}");
                            run.exp.returned_without_switch(&why, at_s, outcome, false);
                            return Ok(self.end_drill_at(run, trigger));
                        }
                    }
                }
                Stage::Returning {
                    trigger,
                    origin,
                    why,
                    back,
                    started,
                    ..
                } => {
                    let in_service = self.engine(i).is_some_and(|e| back.borrow().in_service(e));
                    let ok = in_service && back.borrow().verdict_ok(Some(&origin));
                    run.exp
                        .returned(&why, &origin, trigger, started, &back.borrow(), ok);
                    back.borrow_mut().close();
                    return Ok(self.end_drill_at(run, trigger));
                }
            };
            run.stage = next;
            // Looked at again at once: the next stage may be due already
            // (verified in the same instant on the mock's virtual clock).
        }
    }

    /// Whether `run`'s stage still waits for its event: the gates' verdict
    /// (or the switchover's start), the agent in service at the target,
    /// `--lifetime`'s end (only its deadline ends it), the switchover in
    /// flight to finish, the return in service at the origin.
    fn drill_waits(&self, run: &DrillRun, view: &drctl_policy::View) -> bool {
        let i = run.agent;
        match &run.stage {
            Stage::Gating { .. } => {
                let d = run.drill.borrow();
                let t = d.times.borrow();
                t.refused.is_none() && t.started.is_none()
            }
            Stage::Verifying { .. } => !self
                .engine(i)
                .is_some_and(|e| run.drill.borrow().in_service(e)),
            Stage::Holding { .. } => true,
            Stage::Settling { .. } => view.phase != PhaseKind::Watching,
            Stage::Returning { back, .. } => {
                !self.engine(i).is_some_and(|e| back.borrow().in_service(e))
            }
        }
    }

    /// Ends `run` after its switchover started at `trigger`: its phases go
    /// first on the timeline; the verdict is a pass when nothing failed.
    fn end_drill_at(&mut self, mut run: DrillRun, trigger: Timestamp) -> Option<DrillRun> {
        run.exp.timeline(&run.drill.borrow(), trigger);
        let pass = run.exp.report.failures.is_empty();
        self.end_drill(run, pass)
    }

    /// Ends `run` with its verdict: recorded, and the report told to the
    /// client (if it is still there). Always `None`: the drill is over.
    fn end_drill(&mut self, run: DrillRun, pass: bool) -> Option<DrillRun> {
        let table = run.drill.borrow().table();
        run.drill.borrow_mut().close();
        let DrillRun {
            agent,
            intent,
            by,
            client,
            exp,
            ..
        } = run;
        let reply = self.drill_reply(agent, exp, pass, table, &intent, by.as_deref());
        if let Some(c) = client {
            // Gone: the verdict is in the history all the same.
            let _ = c.send(reply);
        }
        None
    }

    /// The drill's last line: the report, `ok` by the verdict, the first
    /// failure as the error; the verdict is recorded in the history.
    /// The reply of a drill that ended before its switchover started (the
    /// origin unhealthy, the switchover refused): FAIL, nothing switched.
    fn drill_ended_at_once(
        &mut self,
        i: usize,
        exp: Experiment,
        origin: String,
        order: &DrillOrder,
    ) -> Reply {
        let table = crate::report::SwitchReport {
            from: origin,
            ..Default::default()
        };
        self.drill_reply(i, exp, false, table, &order.intent, order.by.as_deref())
    }

    fn drill_reply(
        &mut self,
        i: usize,
        exp: Experiment,
        pass: bool,
        table: crate::report::SwitchReport,
        intent: &OperatorIntent,
        by: Option<&str>,
    ) -> Reply {
        let (report, first) = exp.finish(pass);
        let name = self.agent_name(i);
        match &first {
            None => tracing::info!("{name}: drill {}", report.verdict),
            Some(why) => tracing::warn!("{name}: drill {}: {why}", report.verdict),
        }
        let note = Note::DrillEnded {
            verdict: report.verdict.to_owned(),
            why: first.clone(),
        };
        self.note(i, self.now(), &note, intent, by);
        let mut reply = match first {
            None => Reply::ok(),
            Some(why) => Reply::error(format!("drill FAIL: {why}")),
        };
        reply.switched = Some(table);
        reply.drill = Some(Box::new(report));
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::observe::{Observer, Shared};
    use crate::host::tests::Silent;
    use crate::host::Clock;
    use drctl_plugin_api::messages::Password;
    use drctl_policy::{Engine, EngineConfig, Event};
    use std::sync::Arc;

    /// The switch notes the host gave its observers.
    #[derive(Default)]
    struct Notes(Vec<Note>);

    impl Observer for Notes {
        fn note(
            &mut self,
            _t: Timestamp,
            _agent: &str,
            note: &Note,
            _why: Option<&str>,
            _by: Option<&str>,
        ) {
            self.0.push(note.clone());
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn a_due_switch_waits_while_its_agent_is_not_watching_and_is_refused_after_the_hold() {
        let engine = Engine::new(EngineConfig::two_sites("ann")).unwrap();
        let wake = Arc::new(tokio::sync::Notify::new());
        let agents = vec![("s-ann".to_owned(), Password::new(""), engine)];
        let mut host = Host::fleet(agents, Silent, Clock::virtual_at_zero(), wake);
        let notes = Rc::new(RefCell::new(Notes::default()));
        host.observe(Box::new(Shared(notes.clone())));
        // Starting up, never answered: not watching, so not switchable.
        host.inject(0, Event::Start).unwrap();
        host.plans.scheduled.push(Scheduled {
            agent: 0,
            at: at(1),
            wall: SystemTime::UNIX_EPOCH,
            to: Some("site2".to_owned()),
            intent: OperatorIntent {
                skip: Vec::new(),
                why: Some("CHG-1".to_owned()),
            },
            by: "uid 0 (root)".to_owned(),
            held_since: None,
        });
        assert_eq!(host.plans.deadline(), Some(at(1)));

        // Due: held, its deadline the end of the hold, shown in status.
        host.clock = Clock::Virtual { now: at(2) };
        host.step_plans(at(2)).unwrap();
        let row = host.scheduled_row(0, at(2)).expect("still scheduled");
        let held = row.held.expect("held");
        assert!(held.by.starts_with("phase "), "{held:?}");
        assert_eq!(held.at_most, "10m");
        assert_eq!(host.plans.deadline(), Some(at(2) + HOLD_AT_MOST));
        assert!(notes.borrow().0.is_empty());

        // Still not watching when the hold ends: refused, naming why; gone.
        let end = at(2) + HOLD_AT_MOST;
        host.clock = Clock::Virtual { now: end };
        host.step_plans(end).unwrap();
        assert!(host.scheduled_row(0, end).is_none());
        let notes = notes.borrow();
        let [Note::SwitchFired {
            refused: Some(why), ..
        }] = notes.0.as_slice()
        else {
            panic!("{:?}", notes.0);
        };
        assert!(why.starts_with("the phase "), "{why}");
        assert!(
            why.ends_with(" had not ended 10m after the switch was due"),
            "{why}"
        );
    }
}

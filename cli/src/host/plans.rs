//! Operator work a watcher carries out over time, in its loop: a switch
//! scheduled for later (`drctl switch --at`) and a fleet's wave plan
//! (`drctl switch --agents 10% --wave 10% --wave-interval 30s`).
//!
//! Both are deadlines of the host, like `pause --for`'s end: the sans-IO
//! engine never sees a wall-clock schedule, only the operator switchover
//! when it is due, through the same path as an immediate one (gates apply).
//! Neither survives a restart of the watcher: a schedule lives in its
//! memory (the history keeps that it was scheduled, cancelled or fired).

use crate::control::Reply;
use crate::host::drill::Drill;
use crate::host::gate::OperatorIntent;
use crate::host::{Backend, Host, HostError};
use crate::report::{Note, ScheduledRow, WaveReport, WaveRow};
use drctl_policy::Timestamp;
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
}

impl Plans {
    /// The earliest time something of theirs is due.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        let scheduled = self.scheduled.iter().map(|s| s.at).min();
        let wave = self.wave.as_ref().and_then(Wave::deadline);
        scheduled.into_iter().chain(wave).min()
    }
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
}

impl Scheduled {
    /// Its row for `status`, the time left counted from `now`.
    pub(crate) fn row(&self, agent: &str, now: Timestamp) -> ScheduledRow {
        ScheduledRow {
            agent: agent.to_owned(),
            at: rfc3339(self.wall),
            left: left(self.at, now),
            to: self.to.clone(),
            by: self.by.clone(),
            reason: self.intent.why.clone().unwrap_or_default(),
            skip_gates: self.intent.skip.clone(),
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

/// From `now` to `at` (nothing once passed), whole milliseconds, e.g. `29m 58s`.
fn left(at: Timestamp, now: Timestamp) -> String {
    let d = at.saturating_duration_since(now);
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

impl<B: Backend> Host<B> {
    /// Agent `i`'s scheduled switch, if any.
    pub(crate) fn scheduled(&self, i: usize) -> Option<&Scheduled> {
        self.plans.scheduled.iter().find(|s| s.agent == i)
    }

    /// Every scheduled switch, with its agent's name.
    pub(crate) fn all_scheduled(&self) -> impl Iterator<Item = (&str, &Scheduled)> {
        self.plans.scheduled.iter().filter_map(|s| {
            self.engine(s.agent)
                .map(|e| (e.config().username.as_str(), s))
        })
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
        let row = s.row(&name, now);
        tracing::info!(
            "{name}: switch to {} scheduled at {} by {} ({})",
            row.to.as_deref().unwrap_or("the other site"),
            row.at,
            row.by,
            crate::logging::escape(&row.reason)
        );
        self.note(s.agent, now, &s.note_scheduled(), &s.intent, &s.by);
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
        self.note(i, now, &note, &s.intent, by);
        Some(s.row(&name, now))
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
            .map(|e| e.config().username.clone())
            .unwrap_or_default()
    }

    /// Tells the observers (the history) of `note` for agent `i`.
    fn note(&mut self, i: usize, now: Timestamp, note: &Note, intent: &OperatorIntent, by: &str) {
        let Some(session) = self.session(i).map(str::to_owned) else {
            return;
        };
        for o in &mut self.observers {
            o.note(now, &session, note, intent.why.as_deref(), Some(by));
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
        for s in due {
            self.fire(s, now)?;
        }
        if let Some(wave) = plans.wave.take() {
            plans.wave = self.step_wave(wave, now)?;
        }
        Ok(())
    }

    /// A scheduled switch is due: started as an immediate one would be.
    fn fire(&mut self, s: Scheduled, now: Timestamp) -> Result<(), HostError> {
        let name = self.agent_name(s.agent);
        let started = self.begin_switch(
            s.agent,
            s.to.clone(),
            s.intent.clone(),
            &s.by,
            None,
            Some(name.clone()),
        )?;
        let refused = started.err();
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
        self.note(s.agent, now, &note, &s.intent, &s.by);
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
                self.note(*first, now, &note, &wave.intent, &wave.by);
            }
            let mut drills = Vec::with_capacity(agents.len());
            for (i, name) in agents {
                let drill = self.begin_switch(
                    i,
                    wave.to.clone(),
                    wave.intent.clone(),
                    &wave.by,
                    wave.client.clone(),
                    Some(name.clone()),
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
            self.note(*first, self.now(), &note, &wave.intent, &wave.by);
        }
        wave.tell(Reply {
            wave: Some(report),
            ..Reply::error(why)
        });
    }
}

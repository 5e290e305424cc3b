//! For `drctl replay`: reading a recording's host-side records (the scan
//! before a replay, operator inputs, recorded decisions) and comparing
//! today's decisions with the recorded ones, all streaming.

use crate::host::observe::{describe, DecisionRecord, Observer};
use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Event, Timestamp};
use drctl_protocol::memo::ParseMemo;
use drctl_protocol::recording::{Kind, OperatorAction, RawRecord, RecordReader, RecordingError};
use serde::de::IgnoredAny;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// What a full read of a recording found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// `t` of the last record (where a replay ends).
    pub last_t: u64,
    /// The line cut by a crash, if the file ends mid-line.
    pub truncated: Option<u64>,
    /// Whether the session's end (an operator `shutdown`) was recorded; a
    /// recording without it was cut short (a killed watcher).
    pub ended: bool,
}

/// Reads every record once, each parsed as its kind, so that a bad recording
/// is refused (naming the line) before the replay prints anything.
pub fn scan(path: &Path) -> Result<Summary, RecordingError> {
    let (_, mut reader) = RecordReader::open(path)?;
    let mut checks = Validation::default();
    while let Some(rec) = reader.next_record()? {
        let line = rec.line;
        if let Err(e) = checks.record(&rec, true) {
            return Err(reader.corrupt(line, e));
        }
    }
    checks.summary.truncated = reader.truncated();
    Ok(checks.summary)
}

/// The checks of [`scan`], one record at a time.
#[derive(Debug)]
struct Validation {
    summary: Summary,
    /// Event records seen.
    events: u64,
    /// Decisions by their bytes: a replay's repeat themselves (SPEC §8).
    decisions: ParseMemo<Decision>,
    /// Events by their bytes, when they are parsed here.
    outputs: ParseMemo<Output>,
}

/// How many distinct recorded decisions or events a memo keeps.
const MEMO_ENTRIES: usize = 256;
/// The longest line a memo keeps (a recorded decision is about 100 bytes).
const MEMO_LONGEST: usize = 1024;

impl Default for Validation {
    fn default() -> Self {
        Validation {
            summary: Summary::default(),
            events: 0,
            decisions: ParseMemo::new(MEMO_ENTRIES, MEMO_LONGEST),
            outputs: ParseMemo::new(MEMO_ENTRIES, MEMO_LONGEST),
        }
    }
}

impl Validation {
    /// Checks one record: parsed as its kind (an event only with
    /// `parse_events`), its time not before the last one's. A decision
    /// comes back parsed.
    fn record(
        &mut self,
        rec: &RawRecord<'_>,
        parse_events: bool,
    ) -> Result<Option<Decision>, String> {
        let t = rec.t;
        let mut decision = None;
        let body = rec.body.as_bytes();
        let parsed = match rec.kind {
            Kind::Event => {
                self.events += 1;
                if parse_events {
                    self.outputs
                        .get_or_parse(body, |b| serde_json::from_slice::<Output>(b))
                        .map(drop)
                } else {
                    Ok(())
                }
            }
            Kind::Result => serde_json::from_str::<Output>(rec.body).map(drop),
            Kind::Command => serde_json::from_str::<Input>(rec.body).map(drop),
            Kind::Decision => self
                .decisions
                .get_or_parse(body, |b| serde_json::from_slice::<Decision>(b))
                .map(|d| {
                    decision = Some(d);
                }),
            Kind::Operator => serde_json::from_str::<OperatorAction>(rec.body).map(|a| {
                self.summary.ended |= a == OperatorAction::Shutdown;
            }),
            Kind::Other => serde_json::from_str::<IgnoredAny>(rec.body).map(drop),
        };
        parsed.map_err(|e| e.to_string())?;
        if t < self.summary.last_t {
            return Err(format!(
                "t = {t} goes back in time (the line before has {})",
                self.summary.last_t
            ));
        }
        self.summary.last_t = t;
        Ok(decision)
    }
}

/// What the end of a recording says, read from its last 64 KiB only: the
/// last whole record's time, whether the session's end was recorded, whether
/// the last line is cut. `None` when the tail cannot tell (a huge last line,
/// a short file): then [`scan`] decides.
pub fn tail_summary(path: &Path) -> Option<Summary> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len <= TAIL {
        return None;
    }
    file.seek(SeekFrom::Start(len - TAIL)).ok()?;
    let mut tail = Vec::with_capacity(TAIL as usize);
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    // The first line is (probably) partial: skip it.
    let mut lines: Vec<&str> = text.split('\n').skip(1).collect();
    let cut = match lines.pop() {
        Some("") => false,
        Some(last) => serde_json::from_str::<serde_json::Value>(last).is_err(),
        None => return None,
    };
    let mut s = Summary::default();
    let mut whole = 0;
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        s.last_t = v.get("t")?.as_u64()?;
        s.ended |= v.get("kind") == Some(&"operator".into())
            && v.get("action") == Some(&"shutdown".into());
        whole += 1;
    }
    // No session's end in the tail: a killed watcher, or a fleet's end
    // followed by every agent's shutdown command and result (more than the
    // tail holds): only the full scan tells which.
    if whole == 0 || !s.ended {
        return None;
    }
    // The exact line number comes from the full scan; here only that it is cut.
    s.truncated = cut.then_some(0);
    Some(s)
}

/// An operator input: when, for which session (`None`: every agent), what.
type OperatorInput = (Timestamp, Option<String>, Event);

/// The recording's operator inputs, in order, one ahead.
///
/// Shared with a [`Checker`] ([`OperatorInputs::shared`]), they are found by
/// its reader on its way through the recorded decisions, so that a replay
/// reads the file once on the host's side: looking for the next input, the
/// checker reads ahead a window of recorded decisions (at most
/// [`AHEAD`]), which today's replay then takes. When it does not take them
/// (today's decisions differ), the inputs go on with a reader of their own.
pub struct OperatorInputs {
    /// The checker whose reader finds the inputs, until they go on alone.
    shared: Option<Rc<RefCell<Checker>>>,
    /// Their own reader, taking the records after line `.1` (those before
    /// were the checker's to find).
    own: Option<(RecordReader, u64)>,
    path: std::path::PathBuf,
    /// The sessions replayed (`None`: all); others' inputs are skipped.
    sessions: Option<HashSet<String>>,
    /// The next input.
    next: Option<OperatorInput>,
    /// No input before this time (shared: the checker read that far).
    horizon: Option<Timestamp>,
    done: bool,
}

impl OperatorInputs {
    /// The inputs of `path` (already [`scan`]ned, or checked on the way by
    /// `checker`) for `sessions` (and those for every agent; `None`: every
    /// input), found by `checker`'s reader (one pass over the file).
    pub fn shared(
        checker: Rc<RefCell<Checker>>,
        path: &Path,
        sessions: Option<HashSet<String>>,
    ) -> Self {
        checker.borrow_mut().collect_inputs(sessions.clone());
        OperatorInputs {
            shared: Some(checker),
            own: None,
            path: path.to_owned(),
            sessions,
            next: None,
            horizon: None,
            done: false,
        }
    }

    /// How far the replay may run before asking again: the time of the next
    /// operator input, or (shared) a time before which there is none; `None`
    /// when no input is left.
    pub fn next_at(&mut self) -> Result<Option<Timestamp>, RecordingError> {
        if let Some((t, _, _)) = &self.next {
            return Ok(Some(*t));
        }
        if let Some(t) = self.horizon {
            return Ok(Some(t));
        }
        if self.done {
            return Ok(None);
        }
        if let Some(checker) = &self.shared {
            match checker.borrow_mut().input_ahead()? {
                Lookahead::Input(input) => {
                    let t = input.0;
                    self.next = Some(input);
                    return Ok(Some(t));
                }
                Lookahead::Horizon(t) => {
                    self.horizon = Some(t);
                    return Ok(Some(t));
                }
                Lookahead::End => {
                    self.done = true;
                    return Ok(None);
                }
                Lookahead::Alone(through) => {
                    let (_, reader) = RecordReader::open(&self.path)?;
                    self.own = Some((reader.only(&[Kind::Operator]), through));
                }
            }
            self.shared = None;
        }
        let Some((reader, through)) = &mut self.own else {
            self.done = true;
            return Ok(None);
        };
        while self.next.is_none() {
            let Some(rec) = reader.next_record()? else {
                self.done = true;
                break;
            };
            if rec.line <= *through {
                continue;
            }
            let line = rec.line;
            match operator_input(&rec, self.sessions.as_ref()) {
                Ok(Some(input)) => self.next = Some(input),
                Ok(None) => {}
                Err(e) => return Err(reader.corrupt(line, e)),
            }
        }
        Ok(self.next.as_ref().map(|(t, _, _)| *t))
    }

    /// The next input if it is due at `now`, with the session it is for
    /// (`None`: every agent; always `None` in one agent's recording).
    pub fn take_due(
        &mut self,
        now: Timestamp,
    ) -> Result<Option<(Option<String>, Event)>, RecordingError> {
        // Reached: look further.
        if self.horizon.is_some_and(|h| h <= now) {
            self.horizon = None;
        }
        match self.next_at()? {
            Some(t) if t <= now => Ok(self.next.take().map(|(_, s, e)| (s, e))),
            _ => Ok(None),
        }
    }
}

/// An operator record as the input it feeds, if it is for one of `sessions`
/// (or for every agent); `None` for another agent's.
fn operator_input(
    rec: &RawRecord<'_>,
    sessions: Option<&HashSet<String>>,
) -> Result<Option<OperatorInput>, String> {
    let session = rec.session().map(|s| s.into_owned());
    if let (Some(only), Some(s)) = (sessions, &session) {
        if !only.contains(s) {
            return Ok(None);
        }
    }
    let action: OperatorAction = serde_json::from_str(rec.body).map_err(|e| e.to_string())?;
    let event = match action {
        OperatorAction::Switch { to } => Event::OperatorSwitch {
            to: to.map(Into::into),
        },
        OperatorAction::Pause => Event::Pause,
        OperatorAction::Resume => Event::Resume,
        OperatorAction::Shutdown => Event::Shutdown,
        OperatorAction::Gates { verdict } => Event::GateVerdict(verdict),
    };
    Ok(Some((Timestamp::from_nanos(rec.t), session, event)))
}

/// What [`Checker::input_ahead`] found.
enum Lookahead {
    /// The next operator input.
    Input(OperatorInput),
    /// None before this time (the last record read).
    Horizon(Timestamp),
    /// None left.
    End,
    /// Not looking further: the inputs after this line are for a reader of their own.
    Alone(u64),
}

/// How many recorded decisions the checker reads ahead of today's replay
/// while looking for the next operator input.
const AHEAD: usize = 4096;

/// Operator inputs a [`Checker`] collects for [`OperatorInputs`].
struct Inputs {
    /// The sessions replayed (`None`: all).
    sessions: Option<HashSet<String>>,
    /// Found and not taken yet.
    queue: VecDeque<OperatorInput>,
}

/// A decision with its time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// When.
    pub t: Timestamp,
    /// What.
    pub decision: Decision,
}

/// The first place where today's decisions differ from the recorded ones.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// 1-based index of the decision (in a fleet recording: among its agent's).
    pub index: u64,
    /// The agent (session) whose decisions differ: fleet recordings only.
    pub agent: Option<String>,
    /// The recorded decision's line: fleet recordings only.
    pub line: Option<u64>,
    /// The recorded decision there (`None`: the recording has no more).
    pub recorded: Option<Timed>,
    /// Today's decision there (`None`: today's replay made no more).
    pub now: Option<Timed>,
}

/// Compares today's decisions with the recorded ones, pair by pair, as they come.
///
/// Two decisions agree when they are equal and their times differ by at most
/// `tolerance` (zero for a virtual-clock recording; a real clock records the
/// few milliseconds a timer fired late, which a virtual replay does not repeat).
pub struct Checker {
    reader: RecordReader,
    /// Checking every record on the way ([`Checker::validating`]).
    checks: Option<Validation>,
    /// Events the host took from the backend.
    events_now: u64,
    tolerance: Duration,
    compared: u64,
    now_count: u64,
    /// The last few agreeing decisions, shown before a mismatch.
    context: VecDeque<Timed>,
    mismatch: Option<Mismatch>,
    divergences: u64,
    fault: Option<RecordingError>,
    /// Where a crash cut the recording (its last whole record's time).
    cut: Option<Timestamp>,
    /// Today's decisions at or after the cut, past the recorded ones.
    uncompared: u64,
    /// Recorded decisions past the cut (`--until`), not compared.
    recorded_uncompared: u64,
    /// A fleet recording's per-agent comparison.
    fleet: Option<Fleet>,
    /// Recorded decisions by their bytes (without [`Checker::validating`]'s checks).
    decisions: ParseMemo<Decision>,
    /// Recorded decisions read ahead, looking for the next operator input
    /// ([`Checker::input_ahead`]), with their line and session.
    ahead: VecDeque<(u64, Option<String>, Timed)>,
    /// Operator inputs found on the way ([`OperatorInputs::shared`]).
    inputs: Option<Inputs>,
    /// The line and time of the last record read.
    read: (u64, Timestamp),
}

/// A fleet recording's decisions, compared agent by agent: each agent's
/// decisions today against its recorded ones, in order. The recording holds
/// them in time order, all agents mixed; it is read no further ahead than
/// today's decisions (plus the tolerance), so what waits for comparison is
/// a moment's worth of decisions whatever the recording's size.
#[derive(Default)]
struct Fleet {
    /// The sessions replayed (`None`: all); others' decisions are skipped.
    sessions: Option<HashSet<String>>,
    /// Per session: its recorded decisions read and not yet compared (line, decision).
    queues: HashMap<String, VecDeque<(u64, Timed)>>,
    /// Each non-empty queue's first: (time, line, session), oldest first.
    fronts: BTreeSet<(Timestamp, u64, String)>,
    /// Per session: today's decisions, recorded decisions compared.
    counts: HashMap<String, (u64, u64)>,
    /// Per session: its last agreeing decisions.
    contexts: HashMap<String, VecDeque<Timed>>,
    /// Recorded decisions read.
    read: u64,
    /// The time of the last recorded decision read.
    last_read: Timestamp,
    eof: bool,
}

/// How many agreeing decisions a diff shows before the first mismatch.
const CONTEXT: usize = 3;
/// How many command divergences are logged one by one.
const LOGGED_DIVERGENCES: u64 = 10;

impl Checker {
    /// A checker reading the recorded decisions of `path`; `cut` is the time of
    /// the last whole record of a recording cut by a crash: what today's replay
    /// decides from then on, past the recorded decisions, cannot be compared.
    pub fn open(
        path: &Path,
        tolerance: Duration,
        cut: Option<Timestamp>,
    ) -> Result<Self, RecordingError> {
        let (_, reader) = RecordReader::open(path)?;
        Ok(Checker {
            // Operator records too: the inputs may be found on the way.
            reader: reader.only(&[Kind::Decision, Kind::Operator]),
            checks: None,
            events_now: 0,
            tolerance,
            compared: 0,
            now_count: 0,
            context: VecDeque::with_capacity(CONTEXT + 1),
            mismatch: None,
            divergences: 0,
            fault: None,
            cut,
            uncompared: 0,
            recorded_uncompared: 0,
            fleet: None,
            decisions: ParseMemo::new(MEMO_ENTRIES, MEMO_LONGEST),
            ahead: VecDeque::new(),
            inputs: None,
            read: (1, Timestamp::ZERO),
        })
    }

    /// Compares agent by agent, as a fleet recording needs (its decisions
    /// name their session); `sessions` limits it to some agents (`--agent`).
    pub fn fleet(mut self, sessions: Option<HashSet<String>>) -> Self {
        self.fleet = Some(Fleet {
            sessions,
            ..Fleet::default()
        });
        self
    }

    /// A checker that also checks every record of the recording as [`scan`]
    /// does, in the one pass that reads the recorded decisions, so that a
    /// `--check` replay reads the file once here (and once in the backend).
    /// Events are only counted: the replay backend hands them to the host as
    /// recorded, which parses each; [`Checker::all_checked`] says whether it
    /// took them all. [`Checker::finish`] refuses a bad line by its number.
    pub fn validating(
        path: &Path,
        tolerance: Duration,
        cut: Option<Timestamp>,
    ) -> Result<Self, RecordingError> {
        let mut checker = Checker::open(path, tolerance, cut)?;
        let (_, reader) = RecordReader::open(path)?;
        checker.reader = reader;
        checker.checks = Some(Validation::default());
        Ok(checker)
    }

    /// After [`Checker::finish`] of a [`Checker::validating`] checker: what
    /// the full read found, when every line was checked (each recorded event
    /// reached the host, which parsed it); `None` otherwise (a replay that
    /// stopped early, `--until`): then only [`scan`] can tell.
    pub fn all_checked(&self) -> Option<Summary> {
        let checks = self.checks.as_ref()?;
        (checks.events == self.events_now).then(|| Summary {
            truncated: self.reader.truncated(),
            ..checks.summary.clone()
        })
    }

    fn next_recorded(&mut self) -> Result<Option<Timed>, RecordingError> {
        Ok(self.next_recorded_of()?.map(|(_, _, timed)| timed))
    }

    /// The next recorded decision with its line and session (`None` in one
    /// agent's recording); in a fleet's, of the sessions replayed only.
    #[allow(clippy::type_complexity)]
    fn next_recorded_of(&mut self) -> Result<Option<(u64, Option<String>, Timed)>, RecordingError> {
        if let Some(ahead) = self.ahead.pop_front() {
            return Ok(Some(ahead));
        }
        self.read_recorded()
    }

    /// Reads on to the next recorded decision, handing the operator inputs
    /// met on the way to [`Checker::inputs`].
    #[allow(clippy::type_complexity)]
    fn read_recorded(&mut self) -> Result<Option<(u64, Option<String>, Timed)>, RecordingError> {
        while let Some(rec) = self.reader.next_record()? {
            let (line, t) = (rec.line, Timestamp::from_nanos(rec.t));
            self.read = (line, t);
            let decision = match &mut self.checks {
                Some(checks) => checks.record(&rec, false),
                None if rec.kind != Kind::Decision => Ok(None),
                None => self
                    .decisions
                    .get_or_parse(rec.body.as_bytes(), |b| {
                        serde_json::from_slice::<Decision>(b)
                    })
                    .map(Some)
                    .map_err(|e| e.to_string()),
            };
            if let (Kind::Operator, Some(inputs), Ok(_)) = (rec.kind, &mut self.inputs, &decision) {
                match operator_input(&rec, inputs.sessions.as_ref()) {
                    Ok(Some(input)) => inputs.queue.push_back(input),
                    Ok(None) => {}
                    Err(e) => return Err(self.reader.corrupt(line, e)),
                }
            }
            match decision {
                Ok(Some(decision)) => {
                    // Only a fleet's decisions name their session (and a
                    // body without one would be parsed again to find out).
                    let session = match self.fleet {
                        Some(_) => rec.session().map(|s| s.into_owned()),
                        None => None,
                    };
                    let only = self.fleet.as_ref().and_then(|f| f.sessions.as_ref());
                    if only.is_some_and(|o| session.as_ref().is_none_or(|s| !o.contains(s))) {
                        continue;
                    }
                    return Ok(Some((line, session, Timed { t, decision })));
                }
                Ok(None) => {}
                Err(e) => return Err(self.reader.corrupt(line, e)),
            }
        }
        Ok(None)
    }

    /// Collect the operator inputs (for `sessions`; `None`: all) met on the way.
    fn collect_inputs(&mut self, sessions: Option<HashSet<String>>) {
        self.inputs = Some(Inputs {
            sessions,
            queue: VecDeque::new(),
        });
    }

    /// Looks for the next operator input, reading recorded decisions ahead
    /// of today's replay (at most [`AHEAD`]). When the last window was not
    /// taken (today's decisions differ from them), it stops collecting
    /// inputs: they are for a reader of their own from here.
    fn input_ahead(&mut self) -> Result<Lookahead, RecordingError> {
        let Some(inputs) = &mut self.inputs else {
            return Ok(Lookahead::Alone(self.read.0));
        };
        if let Some(input) = inputs.queue.pop_front() {
            return Ok(Lookahead::Input(input));
        }
        if self.ahead.len() >= AHEAD {
            self.inputs = None;
            return Ok(Lookahead::Alone(self.read.0));
        }
        loop {
            if self.ahead.len() >= AHEAD {
                return Ok(Lookahead::Horizon(self.read.1));
            }
            let read = self.read_recorded()?;
            if let Some(input) = self.inputs.as_mut().and_then(|i| i.queue.pop_front()) {
                if let Some(d) = read {
                    self.ahead.push_back(d);
                }
                return Ok(Lookahead::Input(input));
            }
            match read {
                Some(d) => self.ahead.push_back(d),
                None => return Ok(Lookahead::End),
            }
        }
    }

    /// Fleet: reads recorded decisions into their agents' queues until
    /// `agent` has one waiting and nothing read is older than `t` (less the
    /// tolerance), or the recording is past `t` (plus the tolerance).
    fn fill(&mut self, agent: &str, t: Timestamp) -> Result<(), RecordingError> {
        let tolerance = self.tolerance;
        loop {
            let Some(f) = &self.fleet else { return Ok(()) };
            let waiting = f.queues.get(agent).is_some_and(|q| !q.is_empty());
            let behind = f.last_read + tolerance < t;
            if f.eof || (waiting && !behind) || (f.read > 0 && f.last_read > t + tolerance) {
                return Ok(());
            }
            let next = self.next_recorded_of()?;
            let Some(f) = &mut self.fleet else {
                return Ok(());
            };
            let Some((line, session, timed)) = next else {
                f.eof = true;
                return Ok(());
            };
            f.read += 1;
            f.last_read = timed.t;
            let session = session.unwrap_or_default();
            let queue = f.queues.entry(session.clone()).or_default();
            if queue.is_empty() {
                f.fronts.insert((timed.t, line, session));
            }
            queue.push_back((line, timed));
        }
    }

    /// Fleet: the first recorded decision waiting for `agent`.
    fn pop(&mut self, agent: &str) -> Option<(u64, Timed)> {
        let f = self.fleet.as_mut()?;
        let queue = f.queues.get_mut(agent)?;
        let (line, timed) = queue.pop_front()?;
        f.fronts.remove(&(timed.t, line, agent.to_owned()));
        if let Some((l, next)) = queue.front() {
            f.fronts.insert((next.t, *l, agent.to_owned()));
        }
        f.counts.entry(agent.to_owned()).or_default().1 += 1;
        Some((line, timed))
    }

    /// Fleet: the oldest recorded decision waiting, of any agent.
    fn oldest(&self) -> Option<(Timestamp, u64, String)> {
        self.fleet.as_ref()?.fronts.first().cloned()
    }

    /// Fleet: a mismatch for `agent` at its recorded decision `index`; from
    /// then on nothing is compared (the waiting decisions are only counted).
    fn fleet_mismatch(
        &mut self,
        agent: &str,
        index: u64,
        recorded: Option<(u64, Timed)>,
        now: Option<Timed>,
    ) {
        let Some(f) = &mut self.fleet else { return };
        let context = f.contexts.remove(agent).unwrap_or_default();
        self.context = context;
        self.mismatch = Some(Mismatch {
            index,
            agent: Some(agent.to_owned()),
            line: recorded.as_ref().map(|(l, _)| *l),
            recorded: recorded.map(|(_, d)| d),
            now,
        });
    }

    /// Fleet: compares today's decision `d` of `agent` at `t`.
    fn fleet_decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let Some(f) = &mut self.fleet else { return };
        let counts = f.counts.entry(agent.to_owned()).or_default();
        counts.0 += 1;
        let index = counts.0;
        if self.mismatch.is_some() || self.fault.is_some() {
            return;
        }
        if let Err(e) = self.fill(agent, t) {
            self.fault = Some(e);
            return;
        }
        let now = Timed {
            t,
            decision: d.clone(),
        };
        // Another agent's recorded decision that today's replay is past:
        // that agent did not make it (in time).
        if let Some((old_t, _, who)) = self.oldest() {
            if who != agent && old_t + self.tolerance < t {
                let done = self.fleet.as_ref().and_then(|f| f.counts.get(&who));
                let index = done.map_or(0, |c| c.1) + 1;
                let recorded = self.pop(&who);
                self.fleet_mismatch(&who, index, recorded, None);
                return;
            }
        }
        match self.pop(agent) {
            Some((_, r)) if self.agree(&r, &now) => {
                let Some(f) = &mut self.fleet else { return };
                let context = f.contexts.entry(agent.to_owned()).or_default();
                if context.len() == CONTEXT {
                    context.pop_front();
                }
                context.push_back(now);
            }
            Some(r) => self.fleet_mismatch(agent, index, Some(r), Some(now)),
            None if self.cut.is_some_and(|cut| t + self.tolerance >= cut) => self.uncompared += 1,
            None => {
                // Its next recorded decision, if any, is later: found by reading on.
                let recorded = loop {
                    match self.next_recorded_of() {
                        Ok(Some((line, s, timed))) => {
                            if let Some(f) = &mut self.fleet {
                                f.read += 1;
                            }
                            if s.as_deref() == Some(agent) {
                                break Some((line, timed));
                            }
                        }
                        Ok(None) => {
                            if let Some(f) = &mut self.fleet {
                                f.eof = true;
                            }
                            break None;
                        }
                        Err(e) => {
                            self.fault = Some(e);
                            return;
                        }
                    }
                };
                self.fleet_mismatch(agent, index, recorded, Some(now));
            }
        }
    }

    /// Fleet: the rest of the recorded decisions, once today's are all in.
    fn fleet_finish(&mut self) -> Result<u64, RecordingError> {
        while let Some((line, session, timed)) = self.next_recorded_of()? {
            let Some(f) = &mut self.fleet else { break };
            f.read += 1;
            // Past a mismatch only counted, so memory stays flat.
            if self.mismatch.is_some() {
                continue;
            }
            let session = session.unwrap_or_default();
            let queue = f.queues.entry(session.clone()).or_default();
            if queue.is_empty() {
                f.fronts.insert((timed.t, line, session));
            }
            queue.push_back((line, timed));
        }
        // What waits is what today's replay did not decide, oldest first.
        while let Some((t, _, who)) = self.oldest() {
            let index = self
                .fleet
                .as_ref()
                .and_then(|f| f.counts.get(&who))
                .map_or(0, |c| c.1)
                + 1;
            let Some(recorded) = self.pop(&who) else {
                break;
            };
            if self.cut.is_some_and(|cut| t > cut + self.tolerance) {
                self.recorded_uncompared += 1;
            } else if self.mismatch.is_none() {
                self.fleet_mismatch(&who, index, Some(recorded), None);
            }
        }
        Ok(self.fleet.as_ref().map_or(0, |f| f.read))
    }

    fn agree(&self, a: &Timed, b: &Timed) -> bool {
        let dt = if a.t >= b.t { a.t - b.t } else { b.t - a.t };
        a.decision == b.decision && dt <= self.tolerance
    }

    /// Reads the rest of the recorded decisions; then the verdict.
    pub fn finish(&mut self) -> Result<Verdict, RecordingError> {
        // The replay is over: no input is taken any more.
        self.inputs = None;
        if let Some(e) = self.fault.take() {
            return Err(e);
        }
        let mut recorded = self.compared;
        if self.fleet.is_some() {
            recorded = self.fleet_finish()?;
        }
        while let Some(rest) = self.next_recorded()? {
            recorded += 1;
            // Recorded after the cut (`--until`): not today's to match.
            let past_cut = self.cut.is_some_and(|cut| rest.t > cut + self.tolerance);
            if past_cut {
                self.recorded_uncompared += 1;
            } else if self.mismatch.is_none() {
                self.mismatch = Some(Mismatch {
                    index: recorded,
                    agent: None,
                    line: None,
                    recorded: Some(rest),
                    now: None,
                });
            }
        }
        Ok(Verdict {
            recorded,
            now: self.now_count,
            mismatch: self.mismatch.take(),
            context: self.context.drain(..).collect(),
            divergences: self.divergences,
            cut: self.cut,
            uncompared: self.uncompared,
            recorded_uncompared: self.recorded_uncompared,
        })
    }
}

impl Observer for Checker {
    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        if self.fleet.is_some() {
            self.now_count += 1;
            return self.fleet_decision(t, agent, d);
        }
        self.now_count += 1;
        let now = Timed {
            t,
            decision: d.clone(),
        };
        if self.mismatch.is_some() || self.fault.is_some() {
            return;
        }
        let recorded = match self.next_recorded() {
            Ok(r) => r,
            Err(e) => {
                self.fault = Some(e);
                return;
            }
        };
        if recorded.is_some() {
            self.compared += 1;
        }
        match recorded {
            // Past the cut (within the tolerance: a real clock recorded its timers late).
            None if self.cut.is_some_and(|cut| t + self.tolerance >= cut) => self.uncompared += 1,
            Some(r) if self.agree(&r, &now) => {
                if self.context.len() == CONTEXT {
                    self.context.pop_front();
                }
                self.context.push_back(now);
            }
            recorded => {
                self.mismatch = Some(Mismatch {
                    index: self.now_count,
                    agent: None,
                    line: None,
                    recorded,
                    now: Some(now),
                })
            }
        }
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        if let Output::Event { .. } = output {
            self.events_now += 1;
            return;
        }
        let Output::Divergence { sent, recorded, .. } = output else {
            return;
        };
        self.divergences += 1;
        if self.divergences <= LOGGED_DIVERGENCES {
            let recorded = match recorded {
                Some(r) => format!(
                    "{} (line {}, recorded at {})",
                    r.command.type_name(),
                    r.line,
                    Timestamp::from_nanos(r.t)
                ),
                None => "no command left".to_owned(),
            };
            tracing::warn!(
                "{t}: the policy sent {} where the recording has {recorded}; answered with an error",
                sent.type_name()
            );
        } else if self.divergences == LOGGED_DIVERGENCES + 1 {
            tracing::warn!("more command divergences follow; counting them only");
        }
    }
}

/// The outcome of a replay against its recording.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Decisions in the recording.
    pub recorded: u64,
    /// Decisions today.
    pub now: u64,
    /// The first difference, if any.
    pub mismatch: Option<Mismatch>,
    /// Agreeing decisions just before it.
    pub context: Vec<Timed>,
    /// Commands the recording did not have next.
    pub divergences: u64,
    /// Where a crash cut the recording.
    pub cut: Option<Timestamp>,
    /// Today's decisions past the cut, not compared.
    pub uncompared: u64,
    /// Recorded decisions past the cut (`--until`), not compared.
    pub recorded_uncompared: u64,
}

impl Verdict {
    /// Whether today's decisions are the recorded ones.
    pub fn identical(&self) -> bool {
        self.mismatch.is_none()
    }

    /// The verdict for people: the first divergence with a little context.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let Some(m) = &self.mismatch else {
            let _ = write!(
                out,
                "identical: {} decisions, as recorded",
                self.recorded - self.recorded_uncompared
            );
            match self.cut {
                Some(cut) if self.recorded_uncompared > 0 => {
                    let _ = write!(
                        out,
                        " (replayed up to {cut}; {} later recorded decision(s) not compared)",
                        self.recorded_uncompared
                    );
                }
                Some(cut) => {
                    let _ = write!(
                        out,
                        " (the recording is cut at {cut}; {} later decision(s) not compared)",
                        self.uncompared
                    );
                }
                None => {}
            }
            out.push('\n');
            return out;
        };
        let first_t = [&m.recorded, &m.now]
            .into_iter()
            .flatten()
            .map(|d| d.t)
            .min()
            .unwrap_or(Timestamp::ZERO);
        match &m.agent {
            Some(agent) => {
                let _ = write!(
                    out,
                    "differs: first divergence at {first_t}, agent {agent}, decision {}",
                    m.index
                );
                let _ = match m.line {
                    Some(line) => writeln!(out, " (line {line})"),
                    None => writeln!(out, " (the recording has no more of its decisions)"),
                };
            }
            None => {
                let _ = writeln!(
                    out,
                    "differs: first divergence at {first_t}, decision {}",
                    m.index
                );
            }
        }
        let line = |d: &Option<Timed>| match d {
            Some(d) => describe(d.t, &d.decision),
            None => format!("{:>12}  (no decision)", "-"),
        };
        let _ = writeln!(out, "  recorded {}", line(&m.recorded));
        let _ = writeln!(out, "  now      {}", line(&m.now));
        if !self.context.is_empty() {
            let _ = writeln!(out, "identical before it:");
            for d in &self.context {
                let _ = writeln!(out, "           {}", describe(d.t, &d.decision));
            }
        }
        let _ = writeln!(
            out,
            "decisions: {} recorded, {} now; {} command divergence(s)",
            self.recorded, self.now, self.divergences
        );
        out
    }

    /// The verdict as one JSON object.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            check: &'static str,
            recorded: u64,
            now: u64,
            divergences: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            cut: Option<u64>,
            uncompared: u64,
            recorded_uncompared: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            first: Option<First<'a>>,
        }
        #[derive(Serialize)]
        struct First<'a> {
            index: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            agent: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            line: Option<u64>,
            recorded: Option<DecisionRecord<'a>>,
            now: Option<DecisionRecord<'a>>,
        }
        fn record<'a>(d: &'a Option<Timed>, agent: Option<&'a str>) -> Option<DecisionRecord<'a>> {
            d.as_ref().map(|d| DecisionRecord {
                agent,
                t: d.t.as_nanos(),
                decision: &d.decision,
            })
        }
        let json = Json {
            check: if self.identical() {
                "identical"
            } else {
                "differs"
            },
            recorded: self.recorded,
            now: self.now,
            divergences: self.divergences,
            cut: self.cut.map(Timestamp::as_nanos),
            uncompared: self.uncompared,
            recorded_uncompared: self.recorded_uncompared,
            first: self.mismatch.as_ref().map(|m| First {
                index: m.index,
                agent: m.agent.as_deref(),
                line: m.line,
                recorded: record(&m.recorded, m.agent.as_deref()),
                now: record(&m.now, m.agent.as_deref()),
            }),
        };
        serde_json::to_string(&json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drctl_policy::Alarm;
    use drctl_protocol::recording::{Header, RecordWriter, FORMAT, VERSION};
    use std::io::Write;

    const MS: u64 = 1_000_000;
    /// Past two windows of decisions read ahead.
    const DECISIONS: u64 = 2 * AHEAD as u64 + 100;

    fn raised(i: u64) -> Decision {
        let alarm = if i % 2 == 0 {
            Alarm::StatisticServiceDown
        } else {
            Alarm::TelephonyServiceDown
        };
        Decision::AlarmRaised {
            alarm,
            deadline: None,
        }
    }

    /// Decision i at i ms, then a pause, then the session's end.
    fn recording() -> tempfile::NamedTempFile {
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            drctl: "0.1.0".into(),
            backend: "mock".into(),
            started: "2026-11-24T19:00:00Z".into(),
            command: "watch".into(),
            clock: "virtual".into(),
            session: "agent-1".into(),
            config: serde_json::json!({}),
            cached_preferred: None,
            agents: Vec::new(),
        };
        let mut w = RecordWriter::new(Vec::new(), &header).unwrap();
        for i in 1..=DECISIONS {
            w.decision(i * MS, &raised(i)).unwrap();
        }
        w.operator((DECISIONS + 1) * MS, &OperatorAction::Pause)
            .unwrap();
        w.operator((DECISIONS + 2) * MS, &OperatorAction::Shutdown)
            .unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&w.into_inner()).unwrap();
        file
    }

    /// Runs the inputs' loop as `drctl replay` does, today's decisions
    /// being the recorded ones up to `today` (none after it): the inputs
    /// fed, and whether they were found by the checker's reader alone.
    fn replay(today: u64) -> (Vec<(Timestamp, Event)>, bool, Verdict) {
        let file = recording();
        let checker = Checker::validating(file.path(), Duration::ZERO, None).unwrap();
        let checker = Rc::new(RefCell::new(checker));
        let mut inputs = OperatorInputs::shared(checker.clone(), file.path(), None);
        let (mut fed, mut decided) = (Vec::new(), 0);
        for _ in 0..100 {
            let Some(until) = inputs.next_at().unwrap() else {
                break;
            };
            assert!(checker.borrow().ahead.len() <= AHEAD);
            while decided < today && Timestamp::from_nanos((decided + 1) * MS) <= until {
                decided += 1;
                let t = Timestamp::from_nanos(decided * MS);
                checker
                    .borrow_mut()
                    .decision(t, "agent-1", &raised(decided));
            }
            while let Some((_, event)) = inputs.take_due(until).unwrap() {
                fed.push((until, event));
            }
        }
        let shared = inputs.shared.is_some();
        let verdict = checker.borrow_mut().finish().unwrap();
        (fed, shared, verdict)
    }

    #[test]
    fn the_checkers_reader_finds_the_inputs_through_windows_of_decisions() {
        let (fed, shared, verdict) = replay(DECISIONS);
        let at = |ms| Timestamp::from_nanos(ms * MS);
        assert_eq!(
            fed,
            [
                (at(DECISIONS + 1), Event::Pause),
                (at(DECISIONS + 2), Event::Shutdown)
            ]
        );
        assert!(shared, "the inputs went on alone");
        assert!(verdict.identical());
        assert_eq!(verdict.recorded, DECISIONS);
    }

    #[test]
    fn when_todays_decisions_stop_the_inputs_go_on_alone_and_the_verdict_counts_all() {
        let (fed, shared, verdict) = replay(10);
        let at = |ms| Timestamp::from_nanos(ms * MS);
        assert_eq!(
            fed,
            [
                (at(DECISIONS + 1), Event::Pause),
                (at(DECISIONS + 2), Event::Shutdown)
            ]
        );
        assert!(!shared, "a window not taken is not read past");
        let m = verdict.mismatch.expect("today's decisions stop at 10");
        assert_eq!(
            (m.index, verdict.recorded, verdict.now),
            (11, DECISIONS, 10)
        );
    }
}

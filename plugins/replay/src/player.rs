//! The playback itself, free of the ABI: events by time, commands by order.

use drctl_plugin_api::messages::{
    Command, CommandError, CommandResult, Input, Output, RecordedCommand,
};
use drctl_protocol::recording::{Kind, RawRecord, RecordReader, RecordingError};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// How many recorded commands the shared command cursor may hold for other
/// agents while it looks ahead for one agent's next command or result;
/// past it, that agent reads the file on its own cursor from there.
const SHARED_AHEAD: usize = 4096;

/// How many recorded events the shared reader may hold while it reads
/// ahead for a command or result; past it, the commands go on with a reader
/// of their own from there.
const EVENTS_AHEAD: usize = 1024;

/// How many agents may have a cursor of their own (each holds a 64 KiB
/// buffer); past it they look ahead on the shared one, whatever it holds.
const OWN_CURSORS: usize = 64;

/// Plays a recording back to a host (see the crate docs for the rules).
pub struct Player {
    events: EventCursor,
    commands: CommandCursor,
    /// Answers to send: keyed by (due, recorded line, sequence) so that
    /// outputs due at the same time come out in the recording's order.
    scheduled: BTreeMap<(u64, u64, u64), Output>,
    seq: u64,
    fault: Option<RecordingError>,
}

impl Player {
    /// Opens the recording (one reader for events, commands and results) and checks its header.
    pub fn open(path: &Path) -> Result<Player, RecordingError> {
        Player::open_for(path, None)
    }

    /// [`Player::open`] playing only the records of these sessions (some
    /// agents of a fleet recording); `None`: every session.
    pub fn open_for(
        path: &Path,
        sessions: Option<HashSet<String>>,
    ) -> Result<Player, RecordingError> {
        let (_, reader) = RecordReader::open(path)?;
        Ok(Player {
            events: EventCursor {
                reader: reader.only(&[Kind::Event, Kind::Command, Kind::Result]),
                sessions: sessions.clone(),
                pending: VecDeque::new(),
                passed: VecDeque::new(),
                following: true,
                followed: 1,
                done: false,
            },
            commands: CommandCursor {
                path: path.to_owned(),
                shared: None,
                sessions,
                queues: HashMap::new(),
                buffered: 0,
                own_cursors: 0,
                done: false,
            },
            scheduled: BTreeMap::new(),
            seq: 0,
            fault: None,
        })
    }

    /// The first error met reading the recording, if any (playback stops there).
    pub fn fault(&self) -> Option<&RecordingError> {
        self.fault.as_ref()
    }

    /// Takes one host input: matches a command and schedules its answer.
    pub fn handle(&mut self, now: u64, input: Input) {
        let Input::Command {
            session,
            id,
            command,
        } = input;
        let sent = command.redacted();
        let matched = match self.commands.front(&session, &mut self.events) {
            Ok(next) => next.is_some_and(|r| r.command == sent),
            Err(e) => {
                self.fail(e);
                false
            }
        };
        if matched {
            match self.commands.take_front(&session, &mut self.events) {
                Ok(Some((_, Some(result)))) => {
                    let due = now.saturating_add(result.t.saturating_sub(result.sent_at));
                    self.schedule(
                        due,
                        result.line,
                        Output::Result {
                            session,
                            id,
                            result: result.result,
                        },
                    );
                }
                // Recorded without an answer: the recording ended first.
                Ok(_) => {}
                Err(e) => self.fail(e),
            }
            return;
        }
        let recorded = self
            .commands
            .front(&session, &mut self.events)
            .ok()
            .flatten()
            .map(|r| RecordedCommand {
                t: r.t,
                line: r.line,
                command: r.command.clone(),
            });
        let message = match &recorded {
            Some(r) => format!(
                "replay: diverged: the recording has {} next (line {}), not {}",
                describe(&r.command),
                r.line,
                describe(&sent)
            ),
            None => format!(
                "replay: diverged: the recording has no command left for {}",
                describe(&sent)
            ),
        };
        self.schedule(
            now,
            0,
            Output::Divergence {
                session: session.clone(),
                id,
                sent,
                recorded,
            },
        );
        self.schedule(
            now,
            0,
            Output::Result {
                session,
                id,
                result: Err(CommandError::new(message)),
            },
        );
    }

    /// The next output due at `now`, answers and events merged in recorded order.
    pub fn poll_output(&mut self, now: u64) -> Option<Output> {
        match self.next_due(now)? {
            Due::Answer => self.scheduled.pop_first().map(|(_, out)| out),
            Due::Event => match self.events.take() {
                Ok(out) => out,
                Err(e) => {
                    self.fail(e);
                    None
                }
            },
        }
    }

    /// [`Player::poll_output`] as JSON, appended to `out`: `false` when
    /// nothing is due. A recorded event goes out as the recording has it,
    /// unparsed (its line is the event's JSON): whoever reads it checks it,
    /// as `drctl replay` checks every line of the recording.
    pub fn poll_output_json(&mut self, now: u64, out: &mut Vec<u8>) -> Result<bool, String> {
        match self.next_due(now) {
            None => Ok(false),
            Some(Due::Answer) => match self.scheduled.pop_first() {
                Some((_, output)) => serde_json::to_writer(out, &output)
                    .map(|()| true)
                    .map_err(|e| format!("cannot serialize output: {e}")),
                None => Ok(false),
            },
            Some(Due::Event) => Ok(self.events.take_json(out)),
        }
    }

    /// What is due next at `now`: the first scheduled answer, or the event cursor's next event.
    fn next_due(&mut self, now: u64) -> Option<Due> {
        let event = match self.events.peek() {
            Ok(e) => e,
            Err(e) => {
                self.fail(e);
                None
            }
        };
        let answer = self
            .scheduled
            .keys()
            .next()
            .map(|&(due, line, _)| (due, line));
        match (answer, event) {
            (Some(a), e) if a.0 <= now && e.is_none_or(|e| a <= e) => Some(Due::Answer),
            (_, Some(e)) if e.0 <= now => Some(Due::Event),
            _ => None,
        }
    }

    /// When the next answer or event is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        let answer = self.scheduled.keys().next().map(|k| k.0);
        let event = self.events.pending.front().map(|e| e.0);
        match (answer, event) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    fn schedule(&mut self, due: u64, line: u64, output: Output) {
        self.seq += 1;
        self.scheduled.insert((due, line, self.seq), output);
    }

    fn fail(&mut self, e: RecordingError) {
        self.events.done = true;
        self.commands.done = true;
        self.fault.get_or_insert(e);
    }
}

/// A command for messages: `connect site2`, `kill_factory`.
fn describe(c: &Command) -> String {
    match c {
        Command::Connect { site, .. } => format!("connect {site}"),
        Command::Subscribe { epoch, .. } => format!("subscribe epoch {epoch}"),
        Command::ReadApplication { app_name } => format!("read_application {app_name}"),
        other => other.type_name().to_owned(),
    }
}

/// What [`Player::next_due`] found.
enum Due {
    /// The first scheduled answer.
    Answer,
    /// The event cursor's next event.
    Event,
}

/// The one reader of the recording: events, one ahead (more while the
/// commands look further), as their recorded JSON; the commands and
/// results it passes are kept for the [`CommandCursor`] while it follows.
struct EventCursor {
    reader: RecordReader,
    /// The sessions played (`None`: all); the others' events are skipped.
    sessions: Option<HashSet<String>>,
    /// Events read and not played yet: time, line, JSON.
    pending: VecDeque<(u64, u64, Vec<u8>)>,
    /// Commands and results read and not taken by the command cursor yet.
    passed: VecDeque<Passed>,
    /// Whether the command cursor takes its records from here (else it
    /// has a reader of its own, after the last line passed).
    following: bool,
    /// The line of the last record read while following.
    followed: u64,
    done: bool,
}

/// A command or result record the event cursor read.
struct Passed {
    line: u64,
    t: u64,
    kind: Kind,
    body: String,
}

impl Passed {
    fn raw(&self) -> RawRecord<'_> {
        RawRecord {
            line: self.line,
            t: self.t,
            kind: self.kind,
            body: &self.body,
        }
    }
}

/// Whether `rec` is of one of `sessions` (`None`: every session is played).
fn played(sessions: &Option<HashSet<String>>, rec: &RawRecord<'_>) -> bool {
    sessions
        .as_ref()
        .is_none_or(|s| rec.session().is_some_and(|x| s.contains(x.as_ref())))
}

impl EventCursor {
    fn peek(&mut self) -> Result<Option<(u64, u64)>, RecordingError> {
        while self.pending.is_empty() && self.read_one()? {}
        Ok(self.pending.front().map(|&(t, line, _)| (t, line)))
    }

    /// Reads one more record: `false` at the end. An event played goes to
    /// `pending`; a command or result to `passed` while the command cursor
    /// follows (when it holds too much, the command cursor reads on alone).
    fn read_one(&mut self) -> Result<bool, RecordingError> {
        if self.done {
            return Ok(false);
        }
        let Some(rec) = self.reader.next_record()? else {
            self.done = true;
            return Ok(false);
        };
        if self.following {
            self.followed = rec.line;
        }
        match rec.kind {
            Kind::Event if played(&self.sessions, &rec) => {
                self.pending
                    .push_back((rec.t, rec.line, rec.body.as_bytes().to_vec()));
            }
            Kind::Command | Kind::Result if self.following => {
                self.passed.push_back(Passed {
                    line: rec.line,
                    t: rec.t,
                    kind: rec.kind,
                    body: rec.body.to_owned(),
                });
                if self.passed.len() > SHARED_AHEAD {
                    self.following = false;
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// Stops passing commands and results on: the line through which it
    /// did (the command cursor's own reader takes those after it).
    fn stop_following(&mut self) -> u64 {
        if self.following {
            self.following = false;
            self.followed = self.reader.line();
        }
        self.followed
    }

    /// Appends the next event's JSON to `out`: `false` when there is none.
    fn take_json(&mut self, out: &mut Vec<u8>) -> bool {
        match self.pending.pop_front() {
            Some((_, _, json)) => {
                out.extend_from_slice(&json);
                true
            }
            None => false,
        }
    }

    /// The next event, parsed.
    fn take(&mut self) -> Result<Option<Output>, RecordingError> {
        let Some((_, line, json)) = self.pending.pop_front() else {
            return Ok(None);
        };
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| self.reader.corrupt(line, format!("event: {e}")))
    }
}

/// A recorded command, with its result once the cursor has read that far.
struct Pending {
    t: u64,
    line: u64,
    id: u64,
    command: Command,
    result: Option<Answer>,
}

/// A recorded result.
struct Answer {
    /// When its command was sent.
    sent_at: u64,
    t: u64,
    line: u64,
    result: CommandResult,
}

/// The recorded commands not yet matched, per session, in order, with
/// their results: each agent's commands are matched by order among its own.
///
/// One shared stream of records serves every agent, handing each record
/// to its session's queue: it takes them from the [`EventCursor`] (one
/// reader of the file for both), or, once it had to look too far ahead of
/// the events or they of it, from a reader of its own. While while today's agents follow the recording this
/// holds a few records. When an agent's next command or result lies further
/// ahead than [`SHARED_AHEAD`] others' (a what-if where it diverges), that
/// agent goes on with a cursor of its own from there, so memory stays bounded.
struct CommandCursor {
    path: PathBuf,
    /// The shared stream's own reader, after the line given, once it stopped
    /// following the [`EventCursor`] (`None`: it follows).
    shared: Option<(RecordReader, u64)>,
    /// The sessions played (`None`: all); the others' records are skipped.
    sessions: Option<HashSet<String>>,
    queues: HashMap<String, Queue>,
    /// Pending commands in all queues.
    buffered: usize,
    /// Queues reading on a cursor of their own.
    own_cursors: usize,
    done: bool,
}

/// One session's unmatched commands.
#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    /// Its own cursor, reading the session's records after `from` only.
    own: Option<(RecordReader, u64)>,
    own_done: bool,
}

impl CommandCursor {
    /// The session's next unmatched recorded command.
    fn front(
        &mut self,
        session: &str,
        events: &mut EventCursor,
    ) -> Result<Option<&Pending>, RecordingError> {
        while self
            .queues
            .get(session)
            .is_none_or(|q| q.pending.is_empty())
            && self.read_one(session, events)?
        {}
        Ok(self.queues.get(session).and_then(|q| q.pending.front()))
    }

    /// Pops the session's next command with its result (reading on until
    /// the result appears or the recording ends).
    #[allow(clippy::type_complexity)]
    fn take_front(
        &mut self,
        session: &str,
        events: &mut EventCursor,
    ) -> Result<Option<(Command, Option<Answer>)>, RecordingError> {
        if self.front(session, events)?.is_none() {
            return Ok(None);
        }
        while self
            .queues
            .get(session)
            .and_then(|q| q.pending.front())
            .is_some_and(|p| p.result.is_none())
            && self.read_one(session, events)?
        {}
        let popped = self
            .queues
            .get_mut(session)
            .and_then(|q| q.pending.pop_front());
        if popped.is_some() {
            self.buffered = self.buffered.saturating_sub(1);
        }
        Ok(popped.map(|p| (p.command, p.result)))
    }

    /// Reads up to the next command or result for `session` (from its own
    /// cursor if it has one, else the shared one, which hands the records
    /// of others to their queues); `false` at the end.
    fn read_one(
        &mut self,
        session: &str,
        events: &mut EventCursor,
    ) -> Result<bool, RecordingError> {
        if let Some(queue) = self.queues.get_mut(session) {
            if let Some((reader, from)) = &mut queue.own {
                if queue.own_done {
                    return Ok(false);
                }
                loop {
                    let Some(rec) = reader.next_record()? else {
                        queue.own_done = true;
                        return Ok(false);
                    };
                    if rec.line <= *from || rec.session().as_deref() != Some(session) {
                        continue;
                    }
                    let added = take_record(&self.path, &rec, &mut queue.pending)?;
                    self.buffered += usize::from(added);
                    return Ok(true);
                }
            }
        }
        loop {
            if self.done {
                return Ok(false);
            }
            let passed;
            let rec = match &mut self.shared {
                None => match events.passed.pop_front() {
                    Some(p) => {
                        passed = p;
                        passed.raw()
                    }
                    None if !events.following || events.pending.len() >= EVENTS_AHEAD => {
                        // On alone, after what the events' reader read.
                        let (_, reader) = RecordReader::open(&self.path)?;
                        let reader = reader.only(&[Kind::Command, Kind::Result]);
                        self.shared = Some((reader, events.stop_following()));
                        continue;
                    }
                    None => {
                        if !events.read_one()? {
                            self.done = true;
                            return Ok(false);
                        }
                        continue;
                    }
                },
                Some((reader, after)) => match reader.next_record()? {
                    Some(rec) if rec.line <= *after => continue,
                    Some(rec) => rec,
                    None => {
                        self.done = true;
                        return Ok(false);
                    }
                },
            };
            if !played(&self.sessions, &rec) {
                continue;
            }
            let line = rec.line;
            let Some(owner) = rec.session() else {
                return Err(corrupt(
                    &self.path,
                    line,
                    "a command or result names no session",
                ));
            };
            let queue = self.queues.entry(owner.into_owned()).or_default();
            // A session on its own cursor reads its records there.
            if queue.own.is_some() {
                continue;
            }
            let added = take_record(&self.path, &rec, &mut queue.pending)?;
            self.buffered += usize::from(added);
            if self.buffered > SHARED_AHEAD && self.own_cursors < OWN_CURSORS {
                self.own_cursor(session, line)?;
            }
            return Ok(true);
        }
    }

    /// `session` reads on with a cursor of its own, after `line` (what the
    /// shared cursor read up to).
    fn own_cursor(&mut self, session: &str, line: u64) -> Result<(), RecordingError> {
        let (_, reader) = RecordReader::open(&self.path)?;
        let queue = self.queues.entry(session.to_owned()).or_default();
        queue.own = Some((reader.only(&[Kind::Command, Kind::Result]), line));
        self.own_cursors += 1;
        Ok(())
    }
}

/// Adds a command or result record to its session's `pending`: whether it
/// was a command (a result is attached to its command, or skipped when
/// that was matched long ago or never recorded).
fn take_record(
    path: &Path,
    rec: &RawRecord<'_>,
    pending: &mut VecDeque<Pending>,
) -> Result<bool, RecordingError> {
    let (t, line) = (rec.t, rec.line);
    match rec.kind {
        Kind::Command => {
            let input: Input = serde_json::from_str(rec.body)
                .map_err(|e| corrupt(path, line, format!("command: {e}")))?;
            let Input::Command { id, command, .. } = input;
            pending.push_back(Pending {
                t,
                line,
                id,
                command,
                result: None,
            });
            Ok(true)
        }
        Kind::Result => {
            let output: Output = serde_json::from_str(rec.body)
                .map_err(|e| corrupt(path, line, format!("result: {e}")))?;
            let Output::Result { id, result, .. } = output else {
                return Err(corrupt(path, line, "expected a result"));
            };
            if let Some(p) = pending
                .iter_mut()
                .find(|p| p.id == id && p.result.is_none())
            {
                p.result = Some(Answer {
                    sent_at: p.t,
                    t,
                    line,
                    result,
                });
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// A bad record at `line` of the recording at `path`.
fn corrupt(path: &Path, line: u64, message: impl std::fmt::Display) -> RecordingError {
    RecordingError::Corrupt {
        path: path.to_owned(),
        line,
        message: message.to_string(),
    }
}

//! The playback itself, free of the ABI: events by time, commands by order.

use drctl_plugin_api::messages::{
    Command, CommandError, CommandResult, Input, Output, RecordedCommand,
};
use drctl_protocol::recording::{Kind, RecordReader, RecordingError};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

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
    /// Opens the recording (two cursors over it) and checks its header.
    pub fn open(path: &Path) -> Result<Player, RecordingError> {
        let (_, events) = RecordReader::open(path)?;
        let (_, commands) = RecordReader::open(path)?;
        Ok(Player {
            events: EventCursor {
                reader: events.only(&[Kind::Event]),
                next: None,
                json: Vec::new(),
                done: false,
            },
            commands: CommandCursor {
                reader: commands.only(&[Kind::Command, Kind::Result]),
                pending: VecDeque::new(),
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
        let matched = match self.commands.front() {
            Ok(next) => next.is_some_and(|r| r.command == sent),
            Err(e) => {
                self.fail(e);
                false
            }
        };
        if matched {
            match self.commands.take_front() {
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
            .front()
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
        let event = self.events.next.map(|e| e.0);
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

/// The recorded events, one ahead, as their recorded JSON.
struct EventCursor {
    reader: RecordReader,
    /// The next event's time and line; its JSON is in `json`.
    next: Option<(u64, u64)>,
    json: Vec<u8>,
    done: bool,
}

impl EventCursor {
    fn peek(&mut self) -> Result<Option<(u64, u64)>, RecordingError> {
        if self.next.is_none() && !self.done {
            match self.reader.next_record()? {
                Some(rec) => {
                    self.json.clear();
                    self.json.extend_from_slice(rec.body.as_bytes());
                    self.next = Some((rec.t, rec.line));
                }
                None => self.done = true,
            }
        }
        Ok(self.next)
    }

    /// Appends the next event's JSON to `out`: `false` when there is none.
    fn take_json(&mut self, out: &mut Vec<u8>) -> bool {
        let taken = self.next.take().is_some();
        if taken {
            out.extend_from_slice(&self.json);
        }
        taken
    }

    /// The next event, parsed.
    fn take(&mut self) -> Result<Option<Output>, RecordingError> {
        let Some((_, line)) = self.next.take() else {
            return Ok(None);
        };
        serde_json::from_slice(&self.json)
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

/// The recorded commands not yet matched, in order, with their results.
struct CommandCursor {
    reader: RecordReader,
    pending: VecDeque<Pending>,
    done: bool,
}

impl CommandCursor {
    /// The next unmatched recorded command.
    fn front(&mut self) -> Result<Option<&Pending>, RecordingError> {
        while self.pending.is_empty() && self.read_one()? {}
        Ok(self.pending.front())
    }

    /// Pops the next command with its result (reading on until the result
    /// appears or the recording ends).
    #[allow(clippy::type_complexity)]
    fn take_front(&mut self) -> Result<Option<(Command, Option<Answer>)>, RecordingError> {
        if self.front()?.is_none() {
            return Ok(None);
        }
        while self.pending.front().is_some_and(|p| p.result.is_none()) && self.read_one()? {}
        Ok(self.pending.pop_front().map(|p| (p.command, p.result)))
    }

    /// Reads up to the next command or result; `false` at the end.
    fn read_one(&mut self) -> Result<bool, RecordingError> {
        loop {
            if self.done {
                return Ok(false);
            }
            let Some(rec) = self.reader.next_record()? else {
                self.done = true;
                return Ok(false);
            };
            let (t, line) = (rec.t, rec.line);
            match rec.kind {
                Kind::Command => {
                    let input: Input = serde_json::from_str(rec.body)
                        .map_err(|e| self.reader.corrupt(line, format!("command: {e}")))?;
                    let Input::Command { id, command, .. } = input;
                    self.pending.push_back(Pending {
                        t,
                        line,
                        id,
                        command,
                        result: None,
                    });
                    return Ok(true);
                }
                Kind::Result => {
                    let output: Output = serde_json::from_str(rec.body)
                        .map_err(|e| self.reader.corrupt(line, format!("result: {e}")))?;
                    let Output::Result { id, result, .. } = output else {
                        return Err(self.reader.corrupt(line, "expected a result"));
                    };
                    // A result whose command was matched long ago, or never recorded: skip.
                    if let Some(p) = self
                        .pending
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
                    return Ok(true);
                }
                _ => {}
            }
        }
    }
}

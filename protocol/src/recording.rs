//! Recordings (SPEC §6): JSON Lines. Line 1 is a [`Header`]; then one record
//! a line, each an object with `t` (ns since the session start) and `kind`:
//!
//! ```json
//! {"format":"drctl-recording","version":1,"drctl":"0.1.0","backend":"mock",...}
//! {"t":0,"kind":"command","session":"agent-1","id":1,"command":{"type":"connect",...}}
//! {"t":200000000,"kind":"result","session":"agent-1","id":1,"result":{"type":"connected","epoch":1}}
//! {"t":200000000,"kind":"event","session":"agent-1","epoch":1,"event":{"type":"service_status",...}}
//! {"t":40200000000,"kind":"decision","type":"switchover-started","reason":"telephony-timeout","from":"site1","to":"site2"}
//! {"t":300000000000,"kind":"operator","action":"shutdown"}
//! ```
//!
//! `command`, `result` and `event` records are the plugin messages of
//! [`crate::messages`] with `t` in front; `decision` records are the decision
//! lines of `--output json` with `kind` added. drctl adds one kind to the four
//! of SPEC §6: `operator`, what the host itself fed the engine (a forced
//! switch, pause, resume, the final shutdown), so that a replay can feed it
//! again at the same time. Readers skip kinds they do not know.
//!
//! The reader streams: it holds one line at a time, whatever the file's size,
//! and refuses a line longer than [`MAX_LINE`] (the header: [`MAX_HEADER`])
//! without reading the rest of it, so memory stays bounded by the limit.
//! A last line without its newline (a crash mid-write) that does not parse is
//! reported by [`RecordReader::truncated`], not as an error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::messages::{Input, Output};

/// The header's `format`.
pub const FORMAT: &str = "drctl-recording";
/// The format version of a single agent's recording, as written since the
/// first drctl: what this crate writes for one agent.
pub const VERSION: u32 = 1;
/// The format version of a fleet recording ([`Header::agents`] set, every
/// decision and per-agent operator record naming its session): a drctl that
/// reads only version 1 refuses it by version instead of replaying a fleet
/// as one agent.
pub const FLEET_VERSION: u32 = 2;
/// The newest format version this crate reads; a newer one is refused.
pub const NEWEST: u32 = FLEET_VERSION;
/// The longest record line read, 1 MiB (a record is a few hundred bytes).
pub const MAX_LINE: usize = 1 << 20;
/// The longest header line read, 1 MiB (the header holds the effective config).
pub const MAX_HEADER: usize = 1 << 20;

/// Line 1 of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this crate.
    pub version: u32,
    /// The drctl version that wrote it.
    pub drctl: String,
    /// The backend plugin that ran (`mock`, `ail-bridge`, …).
    pub backend: String,
    /// Wall-clock start, RFC 3339.
    pub started: String,
    /// The subcommand that ran: `watch`, `startup` or `switch`.
    pub command: String,
    /// The clock: `real` or `virtual`.
    pub clock: String,
    /// The agent session id the records carry; empty in a fleet recording,
    /// whose records each name theirs ([`Header::agents`]).
    pub session: String,
    /// The effective config, secrets redacted (what the engine ran with).
    pub config: serde_json::Value,
    /// S5: the preferred site read from the cache at start (tried first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_preferred: Option<String>,
    /// A fleet recording's agents, in the host's order; empty (and not
    /// written) for one agent's, so that it stays as it always was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<RecordedAgent>,
}

impl Header {
    /// Whether this is a fleet recording (many agents, each record naming its session).
    pub fn is_fleet(&self) -> bool {
        !self.agents.is_empty()
    }
}

/// One agent of a fleet recording: what its engine was started with beyond
/// the recorded config (whose `[[agents]]` entry of that `username`, else
/// `[agent]`, is the agent's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedAgent {
    /// The session id its records carry.
    pub session: String,
    /// Its username (the `[[agents]]` entry it ran).
    pub username: String,
    /// Its engine's RNG seed (E4 jitter, backoff), as the fleet derived it.
    pub seed: u64,
    /// S5: the preferred site read from its cache at start (tried first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_preferred: Option<String>,
}

/// What the host itself fed the engine, recorded as `kind: "operator"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum OperatorAction {
    /// A forced switchover, to a named site or the other one.
    Switch {
        /// The target site; `None` is the other site.
        to: Option<String>,
    },
    /// E3: hold automatic switchovers.
    Pause,
    /// E3: release them.
    Resume,
    /// The session ends (end of the command, SIGINT/SIGTERM).
    Shutdown,
    /// The host's verdict on the switchover gates the engine waited for.
    Gates {
        /// What the gates said.
        #[serde(flatten)]
        verdict: crate::decision::GateVerdict,
    },
}

/// The `kind` of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A backend event (an [`Output::Event`]).
    Event,
    /// A command sent to the backend (an [`Input::Command`], passwords redacted).
    Command,
    /// A command's result (an [`Output::Result`]).
    Result,
    /// A decision of the engine.
    Decision,
    /// An [`OperatorAction`].
    Operator,
    /// A kind this version does not know; readers skip it.
    Other,
}

impl Kind {
    /// Every kind, as a mask of [`Kind::bit`]s.
    const EVERY: u8 = 0b11_1111;

    fn from_tag(tag: &[u8]) -> Kind {
        match tag {
            b"event" => Kind::Event,
            b"command" => Kind::Command,
            b"result" => Kind::Result,
            b"decision" => Kind::Decision,
            b"operator" => Kind::Operator,
            _ => Kind::Other,
        }
    }

    /// This kind's bit in a reader's mask of the kinds it returns.
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The recording.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Line 1 is not a drctl recording header.
    #[error("{path}:1: not a drctl recording: {message}")]
    Header {
        /// The recording.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The recording was written in a newer format.
    #[error(
        "{path}: recording format version {found} is newer than this drctl reads (version {NEWEST}); \
         it was written by drctl {writer}: replay it with that version or later"
    )]
    Newer {
        /// The recording.
        path: PathBuf,
        /// Its format version.
        found: u64,
        /// The drctl version that wrote it.
        writer: String,
    },
    /// A line longer than its limit ([`MAX_LINE`], [`MAX_HEADER`] for line 1).
    #[error(
        "{path}:{line}: line longer than {limit} bytes, the limit for a recording {what} line"
    )]
    LineTooLong {
        /// The recording.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The limit in bytes.
        limit: usize,
        /// `header` or `record`.
        what: &'static str,
    },
    /// A line that is not a record.
    #[error("{path}:{line}: corrupt record: {message}")]
    Corrupt {
        /// The recording.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// One record as read: `body` is the record's JSON object without `t`, so it
/// parses directly as the message of its kind (e.g. an [`Output`]).
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// 1-based line number.
    pub line: u64,
    /// Nanoseconds since the session start.
    pub t: u64,
    /// The record's kind.
    pub kind: Kind,
    /// The object without `t`: `{"kind":...,...}`.
    pub body: &'a str,
}

impl<'a> RawRecord<'a> {
    /// The session the record names (`session`), if any: every command,
    /// result and event names one; a decision or operator record only in a
    /// fleet recording (an operator record without one is for every agent).
    /// Read from our layout's prefix when it can be (`{"kind":"K","session":"S"`),
    /// else from the whole body; `None` for a body that does not parse.
    pub fn session(&self) -> Option<std::borrow::Cow<'a, str>> {
        let body: &'a str = self.body;
        if let Some(rest) = body
            .strip_prefix("{\"kind\":\"")
            .and_then(|r| r.split_once('"'))
            .and_then(|(_, r)| r.strip_prefix(",\"session\":\""))
        {
            if let Some(end) = rest.find(['"', '\\']) {
                if rest.as_bytes()[end] == b'"' {
                    return Some(std::borrow::Cow::Borrowed(&rest[..end]));
                }
            }
        }
        #[derive(Deserialize)]
        struct Session<'b> {
            #[serde(borrow)]
            session: Option<std::borrow::Cow<'b, str>>,
        }
        serde_json::from_str::<Session<'a>>(body).ok()?.session
    }
}

/// Streams the records of a recording, one line in memory at a time.
///
/// The reader keeps its own buffer and hands out each record's body in
/// place (no copy); a record of a kind the reader was not asked for
/// ([`RecordReader::only`]) is skipped on its tag alone.
pub struct RecordReader<R = File> {
    input: R,
    path: PathBuf,
    line: u64,
    /// Bytes read and not yet taken: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `buf[start..scanned]` holds no newline (where the search resumes).
    scanned: usize,
    eof: bool,
    /// The body of a record in another layout than ours (rewritten).
    body: String,
    validate: bool,
    /// The kinds returned ([`Kind::bit`]); the others are skipped.
    only: u8,
    truncated: Option<u64>,
    done: bool,
}

/// What the buffer holds next.
enum Line {
    /// A line (without its newline) at this range of the buffer.
    Whole(usize, usize),
    /// The last line, without a newline (maybe cut mid-write).
    Last(usize, usize),
    /// A line longer than the limit: nothing more of it is read.
    TooLong,
    /// The end of the input.
    End,
}

/// How much the reader asks of its input at a time (the buffer only grows
/// past it for a line that long, up to the limit).
const CHUNK: usize = 64 * 1024;

impl RecordReader {
    /// Opens `path` and reads its header. Refuses another format, a newer version,
    /// and a header it cannot read.
    pub fn open(path: &Path) -> Result<(Header, RecordReader), RecordingError> {
        let file = File::open(path).map_err(|source| RecordingError::Io {
            path: path.to_owned(),
            source,
        })?;
        RecordReader::new(file, path)
    }
}

impl<R: Read> RecordReader<R> {
    /// Reads the header from `input`; `path` names the recording in errors.
    pub fn new(input: R, path: &Path) -> Result<(Header, Self), RecordingError> {
        let mut reader = RecordReader {
            input,
            path: path.to_owned(),
            line: 1,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            body: String::new(),
            validate: false,
            only: Kind::EVERY,
            truncated: None,
            done: false,
        };
        let first = match reader.next_line(MAX_HEADER).map_err(|e| reader.io(e))? {
            Line::Whole(s, e) | Line::Last(s, e) => s..e,
            Line::End => 0..0,
            Line::TooLong => {
                return Err(RecordingError::LineTooLong {
                    path: path.to_owned(),
                    line: 1,
                    limit: MAX_HEADER,
                    what: "header",
                })
            }
        };
        let header = parse_header(&reader.buf[first], path)?;
        Ok((header, reader))
    }

    /// Also check that lines of every kind are well-formed JSON, not only
    /// that they have `t` and `kind` (the consumer parses the kinds it takes).
    pub fn validate_all(mut self, on: bool) -> Self {
        self.validate = on;
        self
    }

    /// Returns only records of these kinds: the others are skipped on their
    /// tag alone, unchecked (so a reader that checks the file takes every kind).
    pub fn only(mut self, kinds: &[Kind]) -> Self {
        self.only = kinds.iter().fold(0, |mask, k| mask | k.bit());
        self
    }

    /// The line number of a last line cut mid-write (a crash), once the reader reached it.
    pub fn truncated(&self) -> Option<u64> {
        self.truncated
    }

    /// The number of the last line read (1: the header), skipped ones included.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The recording's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about `line` of this recording.
    pub fn corrupt(&self, line: u64, message: impl std::fmt::Display) -> RecordingError {
        RecordingError::Corrupt {
            path: self.path.clone(),
            line,
            message: message.to_string(),
        }
    }

    fn io(&self, source: io::Error) -> RecordingError {
        RecordingError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The next record, or `None` at the end (or at a cut last line).
    pub fn next_record(&mut self) -> Result<Option<RawRecord<'_>>, RecordingError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let (s, e, whole) = match self.next_line(MAX_LINE).map_err(|e| self.io(e))? {
                Line::Whole(s, e) => (s, e, true),
                Line::Last(s, e) => (s, e, false),
                Line::End => {
                    self.done = true;
                    return Ok(None);
                }
                Line::TooLong => {
                    self.line += 1;
                    self.done = true;
                    return Err(RecordingError::LineTooLong {
                        path: self.path.clone(),
                        line: self.line,
                        limit: MAX_LINE,
                        what: "record",
                    });
                }
            };
            self.line += 1;
            let e = if e > s && self.buf[e - 1] == b'\r' {
                e - 1
            } else {
                e
            };
            if s == e {
                continue;
            }
            // Not asked for: skipped on the tag (a last line without its
            // newline is judged whole, so that a cut one is reported).
            let fast = fast_prefix(&self.buf[s..e]);
            if let Some((kind, _, _)) = fast {
                if whole && self.only & kind.bit() == 0 {
                    continue;
                }
            }
            let split = match fast {
                Some((kind, digits, rest)) => {
                    let t = prefix_t(&self.buf[s..e], digits);
                    // `{"t":N,"kind":...` -> `{"kind":...`, in place.
                    let open = s + rest - 1;
                    self.buf[open] = b'{';
                    Ok((t, kind, Some(open..e)))
                }
                None => split_record(&self.buf[s..e], &mut self.body).map(|(t, k)| (t, k, None)),
            };
            let (t, kind, range) = match split {
                Ok(split) => split,
                Err(message) => return self.bad(message, whole),
            };
            if self.only & kind.bit() == 0 {
                continue;
            }
            let body = match range {
                Some(r) => match std::str::from_utf8(&self.buf[r]) {
                    Ok(body) => body,
                    Err(e) => {
                        let message = format!("not UTF-8: {e}");
                        let line = self.line;
                        let (truncated, done) = (&mut self.truncated, &mut self.done);
                        return cut_or_corrupt(&self.path, line, truncated, done, message, whole);
                    }
                },
                // Parsed whole already.
                None => self.body.as_str(),
            };
            // A last line without its newline may be cut mid-record: check it whole.
            if self.validate || !whole {
                if let Err(e) = serde_json::from_str::<IgnoredAny>(body) {
                    let line = self.line;
                    let (truncated, done) = (&mut self.truncated, &mut self.done);
                    return cut_or_corrupt(&self.path, line, truncated, done, e.to_string(), whole);
                }
            }
            return Ok(Some(RawRecord {
                line: self.line,
                t,
                kind,
                body,
            }));
        }
    }

    /// A line that is not a record: an error, or the end of the records
    /// when it is a last line without its newline (a crash cut it mid-write:
    /// the replay goes up to the line before).
    fn bad<T>(&mut self, message: String, whole: bool) -> Result<Option<T>, RecordingError> {
        let line = self.line;
        cut_or_corrupt(
            &self.path,
            line,
            &mut self.truncated,
            &mut self.done,
            message,
            whole,
        )
    }

    /// The next line of at most `limit` bytes before its newline, reading
    /// more as needed; a longer one is [`Line::TooLong`], read no further.
    fn next_line(&mut self, limit: usize) -> io::Result<Line> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let (s, nl) = (self.start, self.scanned + i);
                self.start = nl + 1;
                self.scanned = self.start;
                if nl - s > limit {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Whole(s, nl));
            }
            self.scanned = self.end;
            if self.end - self.start > limit {
                return Ok(Line::TooLong);
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(Line::End);
                }
                let s = self.start;
                self.start = self.end;
                return Ok(Line::Last(s, self.end));
            }
            self.fill(limit)?;
        }
    }

    /// Reads more input after what is buffered (moved to the front first);
    /// the buffer grows only for a line longer than it, to `limit + 1` bytes.
    fn fill(&mut self, limit: usize) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(limit + 1).max(self.end + 1);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// See [`RecordReader::bad`] (on the reader's fields, so that a body it
/// lends out stays borrowed).
fn cut_or_corrupt<T>(
    path: &Path,
    line: u64,
    truncated: &mut Option<u64>,
    done: &mut bool,
    message: String,
    whole: bool,
) -> Result<Option<T>, RecordingError> {
    if whole {
        return Err(RecordingError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        });
    }
    *truncated = Some(line);
    *done = true;
    Ok(None)
}

/// The line without its `\n` (and a `\r` before it).
fn trim_line(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// Reads the header line, version first so a newer file says so before anything else.
fn parse_header(line: &[u8], path: &Path) -> Result<Header, RecordingError> {
    let bad = |message: String| RecordingError::Header {
        path: path.to_owned(),
        message,
    };
    let text = trim_line(line);
    if text.is_empty() {
        return Err(bad("empty: expected a header line like \
             {\"format\":\"drctl-recording\",\"version\":1,...}"
            .to_owned()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| bad(format!("line 1 is not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(bad(format!(
            "expected \"format\":\"{FORMAT}\" in the header, found {}",
            value
                .get("format")
                .map_or_else(|| "no format".to_owned(), |f| f.to_string())
        )));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("expected a numeric \"version\" in the header".to_owned()))?;
    if version > u64::from(NEWEST) {
        return Err(RecordingError::Newer {
            path: path.to_owned(),
            found: version,
            writer: value
                .get("drctl")
                .and_then(|v| v.as_str())
                .unwrap_or("(unknown)")
                .to_owned(),
        });
    }
    serde_json::from_value(value).map_err(|e| bad(format!("header: {e}")))
}

/// Splits a record line in another layout than ours into `t`, `kind` and
/// the body without `t` (rewritten into `body`, the kind tag first).
fn split_record(line: &[u8], body: &mut String) -> Result<(u64, Kind), String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("expected a JSON object: {e}"))?;
    let t = object
        .remove("t")
        .ok_or("missing \"t\" (ns since the start)")?
        .as_u64()
        .ok_or("\"t\" must be a whole number of ns")?;
    let kind = match object.get("kind") {
        Some(serde_json::Value::String(k)) => Kind::from_tag(k.as_bytes()),
        _ => return Err("missing \"kind\" (event, command, result, decision)".to_owned()),
    };
    // The kind tag first, as the fast message readers expect it.
    let mut ordered = serde_json::Map::new();
    if let Some(k) = object.remove("kind") {
        ordered.insert("kind".to_owned(), k);
    }
    ordered.extend(object);
    *body = serde_json::Value::Object(ordered).to_string();
    Ok((t, kind))
}

/// Our layout, `{"t":123,"kind":"event",...`: `(Kind::Event, 3 (the
/// digits of t), where "kind" starts)`; `None` for any other (then the line
/// is parsed whole). Every line of a recording goes through it in each
/// reader, most of them to be skipped on their kind: no search, and `t` is
/// read only for the lines kept ([`prefix_t`]).
fn fast_prefix(line: &[u8]) -> Option<(Kind, usize, usize)> {
    const KIND: &[u8] = b",\"kind\":\"";
    let rest = line.strip_prefix(T_PREFIX)?;
    let digits = rest
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    // Any 19 digits fit a u64; past u64 is not ours (the whole parse says why).
    if digits == 0 || (digits > 19 && checked_t(&rest[..digits]).is_none()) {
        return None;
    }
    let tag = rest[digits..].strip_prefix(KIND)?;
    // On the tag's first byte: one comparison per line, not one per kind.
    let (name, kind): (&[u8], Kind) = match tag.first()? {
        b'e' => (b"event\"", Kind::Event),
        b'd' => (b"decision\"", Kind::Decision),
        b'c' => (b"command\"", Kind::Command),
        b'r' => (b"result\"", Kind::Result),
        b'o' => (b"operator\"", Kind::Operator),
        _ => (b"", Kind::Other),
    };
    let kind = if !name.is_empty() && tag.starts_with(name) {
        kind
    } else {
        memchr::memchr(b'"', tag).map(|_| Kind::Other)?
    };
    Some((kind, digits, T_PREFIX.len() + digits + 1))
}

/// How a record of our layout starts.
const T_PREFIX: &[u8] = b"{\"t\":";

/// `t` of a line [`fast_prefix`] took, which has `digits` digits after [`T_PREFIX`].
fn prefix_t(line: &[u8], digits: usize) -> u64 {
    let d = &line[T_PREFIX.len()..T_PREFIX.len() + digits];
    if digits > 19 {
        // Checked by fast_prefix: it fits.
        return checked_t(d).unwrap_or(u64::MAX);
    }
    d.iter().fold(0u64, |t, &c| t * 10 + u64::from(c - b'0'))
}

/// ASCII digits as a u64, `None` past it.
fn checked_t(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |t, &c| {
        t.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Writes a recording: a header, then records, one line each.
///
/// Write errors are returned to the caller (who decides whether the session
/// goes on without its recording); nothing here panics.
pub struct RecordWriter<W: Write> {
    out: W,
    scratch: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    /// Writes `header` as line 1; one longer than a reader takes ([`MAX_HEADER`],
    /// e.g. a fleet of many thousand `[[agents]]`) is refused, nothing written.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        let line = serde_json::to_vec(header)?;
        if line.len() > MAX_HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the recording's header would be {} bytes, past the {MAX_HEADER} a recording \
                     header may hold (the effective config and {} agent(s))",
                    line.len(),
                    header.agents.len().max(1)
                ),
            ));
        }
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        Ok(RecordWriter {
            out,
            scratch: Vec::with_capacity(256),
        })
    }

    /// A backend output (`event` or `result`; other kinds are written as they are).
    pub fn output(&mut self, t: u64, output: &Output) -> io::Result<()> {
        self.record(t, None, None, output)
    }

    /// A command sent to the backend, passwords redacted.
    pub fn command(&mut self, t: u64, input: &Input) -> io::Result<()> {
        self.record(t, None, None, &input.redacted())
    }

    /// A decision: any object tagged `type`.
    pub fn decision<D: Serialize>(&mut self, t: u64, decision: &D) -> io::Result<()> {
        self.record(t, Some("decision"), None, decision)
    }

    /// A decision of one agent of a fleet: `"session"` after the kind.
    pub fn fleet_decision<D: Serialize>(
        &mut self,
        t: u64,
        session: &str,
        decision: &D,
    ) -> io::Result<()> {
        self.record(t, Some("decision"), Some(session), decision)
    }

    /// What the host fed the engine.
    pub fn operator(&mut self, t: u64, action: &OperatorAction) -> io::Result<()> {
        self.record(t, Some("operator"), None, action)
    }

    /// What the host fed one agent of a fleet (`Some(session)`) or every
    /// agent (`None`, as [`RecordWriter::operator`]).
    pub fn fleet_operator(
        &mut self,
        t: u64,
        session: Option<&str>,
        action: &OperatorAction,
    ) -> io::Result<()> {
        self.record(t, Some("operator"), session, action)
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// `{"t":N,` [`"kind":"K",` [`"session":"S",`]] then the message's own fields.
    fn record<M: Serialize>(
        &mut self,
        t: u64,
        kind: Option<&str>,
        session: Option<&str>,
        message: &M,
    ) -> io::Result<()> {
        self.scratch.clear();
        record_body(&mut self.scratch, kind, session, message)?;
        // The body without its `{`, after `t`: what a reader lends out as the
        // body is then exactly `record_body`'s (`decision_body` relies on it).
        write!(self.out, "{{\"t\":{t},")?;
        self.out.write_all(&self.scratch[1..])?;
        self.out.write_all(b"\n")
    }
}

/// Appends the body of a decision record as [`RecordWriter`] writes it
/// and [`RecordReader`] lends it out (`{"kind":"decision",...}`, with
/// `"session"` after the kind for a fleet's): a recorded decision with
/// exactly these bytes is this decision, so a replay that compares
/// decisions need not parse the ones that agree.
pub fn decision_body<D: Serialize>(
    out: &mut Vec<u8>,
    session: Option<&str>,
    decision: &D,
) -> io::Result<()> {
    record_body(out, Some("decision"), session, decision)
}

/// Appends `{` [`"kind":"K",` [`"session":"S",`]] then the message's own
/// fields; nothing on an error.
fn record_body<M: Serialize>(
    out: &mut Vec<u8>,
    kind: Option<&str>,
    session: Option<&str>,
    message: &M,
) -> io::Result<()> {
    let start = out.len();
    let written = (|| {
        if let Some(kind) = kind {
            out.extend_from_slice(b"{\"kind\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.push(b'"');
            if let Some(session) = session {
                out.extend_from_slice(b",\"session\":");
                serde_json::to_writer(&mut *out, session)?;
            }
        }
        let fields = out.len();
        serde_json::to_writer(&mut *out, message)?;
        if out.get(fields) != Some(&b'{') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a record must serialize as a JSON object",
            ));
        }
        // The message's `{` goes: its fields follow the kind's.
        if kind.is_some() {
            if out.len() - fields > 2 {
                out[fields] = b',';
            } else {
                out.remove(fields);
            }
        }
        Ok(())
    })();
    if written.is_err() {
        out.truncate(start);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Command, Event, Password, Reply, Service, ServiceState};

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            drctl: "0.1.0".into(),
            backend: "mock".into(),
            started: "2026-11-24T19:00:00Z".into(),
            command: "watch".into(),
            clock: "virtual".into(),
            session: "agent-1".into(),
            config: serde_json::json!({"policy": {"seed": 0}}),
            cached_preferred: None,
            agents: Vec::new(),
        }
    }

    fn write_sample() -> Vec<u8> {
        let mut w = RecordWriter::new(Vec::new(), &header()).unwrap();
        w.command(
            0,
            &Input::Command {
                session: "agent-1".into(),
                id: 1,
                command: Command::Connect {
                    site: "site1".into(),
                    cs_proxy: "csp1:7000".into(),
                    app_name: "AIL_site1".into(),
                    username: "agent".into(),
                    password: Password::new("hunter2-secret"),
                    on_demand_loading: false,
                },
            },
        )
        .unwrap();
        w.output(
            200,
            &Output::Result {
                session: "agent-1".into(),
                id: 1,
                result: Ok(Reply::Connected { epoch: 1 }),
            },
        )
        .unwrap();
        w.output(
            300,
            &Output::Event {
                session: "agent-1".into(),
                epoch: 1,
                event: Event::ServiceStatus {
                    service: Service::Telephony,
                    status: ServiceState::Off,
                },
            },
        )
        .unwrap();
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "kebab-case")]
        enum Decision {
            AlarmRaised { alarm: &'static str },
        }
        w.decision(
            400,
            &Decision::AlarmRaised {
                alarm: "statistic-service-down",
            },
        )
        .unwrap();
        w.operator(500, &OperatorAction::Shutdown).unwrap();
        w.out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(u64, u64, Kind, String)>, RecordingError> {
        let (_, mut r) = RecordReader::new(bytes, Path::new("rec.jsonl"))?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push((rec.line, rec.t, rec.kind, rec.body.to_owned()));
        }
        Ok(out)
    }

    #[test]
    fn round_trip_keeps_kinds_times_and_messages() {
        let bytes = write_sample();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("{\"t\":0,\"kind\":\"command\""));
        assert!(text.contains("{\"t\":400,\"kind\":\"decision\",\"type\":\"alarm-raised\""));
        assert!(text.contains("{\"t\":500,\"kind\":\"operator\",\"action\":\"shutdown\"}"));
        let records = read_all(&bytes).unwrap();
        let kinds: Vec<_> = records.iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(
            kinds,
            [
                (2, 0, Kind::Command),
                (3, 200, Kind::Result),
                (4, 300, Kind::Event),
                (5, 400, Kind::Decision),
                (6, 500, Kind::Operator)
            ]
        );
        let event: Output = serde_json::from_str(&records[2].3).unwrap();
        assert!(matches!(event, Output::Event { epoch: 1, .. }));
        let op: OperatorAction = serde_json::from_str(&records[4].3).unwrap();
        assert_eq!(op, OperatorAction::Shutdown);
    }

    #[test]
    fn a_single_agents_header_has_no_agents_and_version_1() {
        let bytes = RecordWriter::new(Vec::new(), &header())
            .unwrap()
            .into_inner();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "{\"format\":\"drctl-recording\",\"version\":1,\"drctl\":\"0.1.0\",\"backend\":\"mock\",\
             \"started\":\"2026-11-24T19:00:00Z\",\"command\":\"watch\",\"clock\":\"virtual\",\
             \"session\":\"agent-1\",\"config\":{\"policy\":{\"seed\":0}}}\n"
        );
    }

    #[test]
    fn a_fleet_recording_names_the_session_of_each_decision_and_operator_input() {
        let mut h = header();
        h.version = FLEET_VERSION;
        h.session = String::new();
        h.agents = ["ann", "b\"ob"]
            .iter()
            .enumerate()
            .map(|(i, name)| RecordedAgent {
                session: (*name).into(),
                username: (*name).into(),
                seed: i as u64,
                cached_preferred: None,
            })
            .collect();
        let mut w = RecordWriter::new(Vec::new(), &h).unwrap();
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "kebab-case")]
        enum Decision {
            StartupConnected { site: &'static str },
        }
        let d = Decision::StartupConnected { site: "site1" };
        w.fleet_decision(1, "ann", &d).unwrap();
        w.fleet_decision(2, "b\"ob", &d).unwrap();
        w.fleet_operator(3, Some("ann"), &OperatorAction::Pause)
            .unwrap();
        w.fleet_operator(4, None, &OperatorAction::Shutdown)
            .unwrap();
        let bytes = w.into_inner();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "{\"t\":1,\"kind\":\"decision\",\"session\":\"ann\",\"type\":\"startup-connected\",\"site\":\"site1\"}"
        );
        assert_eq!(
            lines[4],
            "{\"t\":4,\"kind\":\"operator\",\"action\":\"shutdown\"}"
        );
        let (read, mut r) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        assert_eq!(read, h);
        assert!(read.is_fleet());
        let mut sessions = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            sessions.push(rec.session().map(|s| s.into_owned()));
            if rec.kind == Kind::Operator {
                let _: OperatorAction = serde_json::from_str(rec.body).unwrap();
            }
        }
        assert_eq!(
            sessions,
            [
                Some("ann".to_owned()),
                Some("b\"ob".to_owned()),
                Some("ann".to_owned()),
                None
            ]
        );
    }

    #[test]
    fn a_decision_body_is_what_the_reader_lends_for_that_decision() {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "kebab-case")]
        enum Decision {
            AlarmRaised { alarm: &'static str },
            Ended {},
        }
        let d = Decision::AlarmRaised { alarm: "a\"b" };
        let mut w = RecordWriter::new(Vec::new(), &header()).unwrap();
        w.decision(7, &d).unwrap();
        w.fleet_decision(8, "b\"ob", &d).unwrap();
        w.decision(9, &Decision::Ended {}).unwrap();
        let bytes = w.into_inner();
        let (_, mut r) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        let mut body = Vec::new();
        for (session, d) in [(None, &d), (Some("b\"ob"), &d), (None, &Decision::Ended {})] {
            body.clear();
            decision_body(&mut body, session, d).unwrap();
            let rec = r.next_record().unwrap().unwrap();
            assert_eq!(rec.body.as_bytes(), body, "{}", rec.body);
        }
        // Not an object: nothing appended.
        body.clear();
        assert!(decision_body(&mut body, None, &3).is_err());
        assert!(body.is_empty());
    }

    #[test]
    fn the_session_of_records_in_another_layout_is_read_whole() {
        let mut bytes = serde_json::to_vec(&header()).unwrap();
        bytes.extend_from_slice(
            b"\n{\"t\":7,\"kind\":\"event\",\"epoch\":2,\"session\":\"a\",\"event\":{\"type\":\"disconnected\"}}\n\
              {\"t\":8,\"kind\":\"decision\",\"type\":\"alarm-raised\",\"alarm\":\"x\"}\n",
        );
        let (_, mut r) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        let first = r.next_record().unwrap().unwrap();
        assert_eq!(first.session().as_deref(), Some("a"));
        let second = r.next_record().unwrap().unwrap();
        assert_eq!(second.session(), None);
    }

    #[test]
    fn a_header_past_the_readers_limit_is_refused_when_written() {
        let mut h = header();
        h.config = serde_json::json!({ "pad": "x".repeat(MAX_HEADER) });
        let err = RecordWriter::new(Vec::new(), &h).err().unwrap().to_string();
        assert!(
            err.contains("past the 1048576 a recording header may hold"),
            "{err}"
        );
    }

    #[test]
    fn other_key_orders_read_the_same() {
        let mut bytes = serde_json::to_vec(&header()).unwrap();
        bytes.extend_from_slice(
            b"\n{ \"kind\": \"event\", \"session\":\"a\", \"epoch\": 2, \"t\": 7, \
              \"event\": {\"type\":\"disconnected\"} }\n",
        );
        let records = read_all(&bytes).unwrap();
        assert_eq!((records[0].1, records[0].2), (7, Kind::Event));
        let out: Output = serde_json::from_str(&records[0].3).unwrap();
        assert_eq!(
            out,
            Output::Event {
                session: "a".into(),
                epoch: 2,
                event: Event::Disconnected
            }
        );
    }

    #[test]
    fn only_returns_the_kinds_asked_for_and_skips_the_others_unchecked() {
        let mut bytes = write_sample();
        // Not a record at all, but of a kind not asked for: skipped on its tag.
        bytes.extend_from_slice(b"{\"t\":600,\"kind\":\"decision\",oops\xff}\n");
        bytes.extend_from_slice(b"{\"t\":700,\"kind\":\"event\",\"session\":\"a\"}\r\n");
        let (_, r) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        let mut r = r.only(&[Kind::Event, Kind::Operator]);
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            got.push((rec.line, rec.kind, rec.body.to_owned()));
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (4, Kind::Event));
        assert_eq!((got[1].0, got[1].1), (6, Kind::Operator));
        assert_eq!(
            got[2],
            (
                8,
                Kind::Event,
                "{\"kind\":\"event\",\"session\":\"a\"}".into()
            )
        );
        // Every kind: the bad line is an error naming it.
        let err = read_all(&bytes).unwrap_err().to_string();
        assert!(
            err.starts_with("rec.jsonl:7: corrupt record: not UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn lines_longer_than_the_buffer_read_whole() {
        let mut bytes = write_sample();
        let long = format!(
            "{{\"t\":600,\"kind\":\"event\",\"pad\":\"{}\"}}\n",
            "x".repeat(3 * CHUNK)
        );
        for _ in 0..3 {
            bytes.extend_from_slice(long.as_bytes());
        }
        let records = read_all(&bytes).unwrap();
        assert_eq!(records.len(), 8);
        assert!(records[5..].iter().all(|r| r.3.len() == long.len() - 9));
    }

    #[test]
    fn times_up_to_u64_max_read_and_past_it_are_refused() {
        let mut bytes = write_sample();
        bytes.extend_from_slice(b"{\"t\":18446744073709551615,\"kind\":\"other\"}\n");
        bytes.extend_from_slice(b"{\"t\":9999999999999999999,\"kind\":\"other\"}\n");
        let records = read_all(&bytes).unwrap();
        assert_eq!(records[5].1, u64::MAX);
        assert_eq!(records[6].1, 9_999_999_999_999_999_999);
        bytes.extend_from_slice(b"{\"t\":18446744073709551616,\"kind\":\"other\"}\n");
        let err = read_all(&bytes).unwrap_err().to_string();
        assert!(err.contains(":9: corrupt record"), "{err}");
    }

    #[test]
    fn a_cut_last_line_ends_the_records_without_error() {
        let mut bytes = write_sample();
        bytes.extend_from_slice(b"{\"t\":600,\"kind\":\"ev");
        let (_, mut r) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        let mut n = 0;
        while r.next_record().unwrap().is_some() {
            n += 1;
        }
        assert_eq!((n, r.truncated()), (5, Some(7)));
    }

    #[test]
    fn a_corrupt_line_names_its_number() {
        let mut bytes = write_sample();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[3] = "{\"t\":300,\"kind\":\"event\",\"session\":";
        bytes = (lines.join("\n") + "\n").into_bytes();
        let err = read_all_validated(&bytes).unwrap_err().to_string();
        assert!(err.starts_with("rec.jsonl:4: corrupt record:"), "{err}");
        let mut no_t = write_sample();
        no_t.extend_from_slice(b"{\"kind\":\"event\"}\n");
        let err = read_all(&no_t).unwrap_err().to_string();
        assert!(err.contains(":7: corrupt record: missing \"t\""), "{err}");
    }

    #[test]
    fn lines_past_the_limit_are_refused_by_number_without_reading_them() {
        use std::io::Read;
        // 1 GiB of `a` after a good record: never read past the limit.
        let huge = io::repeat(b'a').take(1 << 30);
        let mut bytes = write_sample();
        bytes.truncate(bytes.len() - 1);
        let input = io::BufReader::new(bytes.as_slice().chain(&b"\n"[..]).chain(huge));
        let (_, mut r) = RecordReader::new(input, Path::new("rec.jsonl")).unwrap();
        let mut n = 0;
        let err = loop {
            match r.next_record() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("the long line was not refused"),
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(n, 5);
        assert_eq!(
            err,
            "rec.jsonl:7: line longer than 1048576 bytes, the limit for a recording record line"
        );
        assert!(r.next_record().unwrap().is_none());
        // Exactly at the limit is still read (and then judged as a record).
        let mut at_limit = write_sample();
        let record = b"{\"t\":600,\"kind\":\"other\"";
        at_limit.extend_from_slice(record);
        at_limit.extend(std::iter::repeat_n(b' ', MAX_LINE - record.len() - 1));
        at_limit.extend_from_slice(b"}\n");
        assert_eq!(read_all(&at_limit).unwrap().len(), 6);
        let header = io::BufReader::new(io::repeat(b'{').take(1 << 30));
        let err = RecordReader::new(header, Path::new("rec.jsonl"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "rec.jsonl:1: line longer than 1048576 bytes, the limit for a recording header line"
        );
    }

    fn read_all_validated(bytes: &[u8]) -> Result<usize, RecordingError> {
        let (_, r) = RecordReader::new(bytes, Path::new("rec.jsonl"))?;
        let mut r = r.validate_all(true);
        let mut n = 0;
        while r.next_record()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Found by `fuzz/` (target `recording`): serde_json's default float
    /// parser may miss the closest f64 by one ulp for 17-digit numbers, so a
    /// replay ran with another config than the one recorded.
    #[test]
    fn header_floats_read_back_exactly() {
        let mut h = header();
        h.config = serde_json::json!({"startup": {"backoff": {
            "factor": 1.000_000_000_000_000_7,
            "jitter": 6.666_666_666_666_668e108,
        }}});
        let bytes = RecordWriter::new(Vec::new(), &h).unwrap().into_inner();
        let (read, _) = RecordReader::new(&bytes[..], Path::new("rec.jsonl")).unwrap();
        assert_eq!(read, h, "{}", String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn headers_of_another_format_or_a_newer_version_are_refused() {
        let newer = br#"{"format":"drctl-recording","version":3,"drctl":"9.0.0"}
"#;
        let err = read_all(newer).unwrap_err().to_string();
        assert!(
            err.contains("version 3 is newer than this drctl reads (version 2)")
                && err.contains("drctl 9.0.0"),
            "{err}"
        );
        let other = b"{\"t\":0,\"kind\":\"event\"}\n";
        let err = read_all(other).unwrap_err().to_string();
        assert!(
            err.starts_with("rec.jsonl:1: not a drctl recording"),
            "{err}"
        );
        let err = read_all(b"").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }
}

//! Tracing to stderr, as text or JSON; `RUST_LOG` wins over `-v`/`-q`.
//!
//! Text logs escape control characters in every field and message (a logout
//! reason from the backend could otherwise forge a log line with `\n`, or
//! drive the terminal with ESC); JSON escapes them already.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// The level for a verbosity (`-v` minus `-q` count); 0 is `info`.
fn level(verbosity: i16) -> &'static str {
    match verbosity {
        i16::MIN..=-3 => "off",
        -2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    }
}

/// Installs the global subscriber; logs go to stderr, never stdout.
pub fn init(format: LogFormat, verbosity: i16) {
    let default = level(verbosity);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={}: {e}", escape(&spec));
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for people at a terminal, never ESC bytes in a journal or file.
        .with_ansi(colours(&std::io::stderr()));
    // A subscriber already installed (tests) is not an error.
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Whether to write colours to `stream`: only to a terminal (each stream is
/// asked on its own: logs on stderr, decisions on stdout), never with
/// `NO_COLOR` set or `TERM=dumb`; `CLICOLOR_FORCE` forces them (anstream's
/// rules, the ones clap's own help follows).
pub fn colours(stream: &impl anstream::stream::RawStream) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// Whether `c` must not reach a log line or a terminal as it is: C0 and C1
/// controls, DEL, and the Unicode line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `s` with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`, ...),
/// for free text (a backend's reason or error) printed on one line.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let _ = Escaping(&mut out).write_str(s);
    Cow::Owned(out)
}

/// A `fmt::Write` that escapes control characters on the way through.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(is_unsafe) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// The text format's fields (`message key=value ...`), values and message
/// with control characters escaped.
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl FieldVisitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Metadata of `log` records, already shown by the formatter.
        if name.starts_with("log.") {
            return;
        }
        let pad = if self.first { "" } else { " " };
        self.first = false;
        let mut out = Escaping(&mut self.writer);
        self.result = match name {
            "message" => write!(out, "{pad}{value}"),
            name => write!(out, "{pad}{}={value}", name.trim_start_matches("r#")),
        };
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain reason"), "plain reason");
        assert_eq!(
            escape("a\nb\rc\td\u{1b}[31me\u{7f}\u{85}\u{2028}"),
            "a\\nb\\rc\\td\\u{1b}[31me\\u{7f}\\u{85}\\u{2028}"
        );
    }

    #[test]
    fn text_logs_escape_messages_and_values() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let evil = "x\n2026-01-01T00:00:00Z ERROR forged\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(reason = evil, shown = %evil, r#type = "t", "reason {evil}");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        let escaped = "x\\n2026-01-01T00:00:00Z ERROR forged\\u{1b}[2J";
        assert!(text.contains(&format!("reason {escaped} ")), "{text}");
        assert!(text.contains(&format!("shown={escaped} ")), "{text}");
        assert!(text.contains(" type=\"t\""), "{text}");
    }
}

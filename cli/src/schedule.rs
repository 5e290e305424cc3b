//! The pure parts of scheduled and fleet switches: `switch --at TIME` read
//! against the wall clock, and which agents `--agents 10%` and `--wave 10%`
//! move, and in which order.
//!
//! Selection is deterministic: the candidates sorted by login name, the
//! first ones taken. A share is of the whole fleet (`--agents 10%` of 50
//! agents is 5, whether or not some are already at the target), rounded up;
//! a wave's share is of the agents selected, rounded up, at least one.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// The furthest ahead a switch can be scheduled: a week (a change window is
/// planned days ahead, not months; a typo in a year is refused).
pub const MAX_AHEAD: Duration = Duration::from_secs(7 * 86_400);

/// Why a `--at` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtError {
    /// Neither `+DURATION` nor RFC 3339.
    #[error("--at {value}: expected an RFC 3339 time (2026-03-01T22:00:00+01:00) or +DURATION (+30m): {why}")]
    Unreadable {
        /// The value as given.
        value: String,
        /// The parser's complaint.
        why: String,
    },
    /// Not in the future.
    #[error("--at {value}: that time has passed (it is {now} now)")]
    Past {
        /// The value as given.
        value: String,
        /// Now, RFC 3339 (UTC).
        now: String,
    },
    /// Too far ahead.
    #[error(
        "--at {value}: more than {} ahead, the furthest a switch is scheduled",
        humantime::format_duration(MAX_AHEAD)
    )]
    TooFar {
        /// The value as given.
        value: String,
    },
}

/// Reads `--at`: `+DURATION` from `now`, or an RFC 3339 time (any offset);
/// refused when it is not after `now` or more than [`MAX_AHEAD`] after it.
pub fn parse_at(value: &str, now: SystemTime) -> Result<SystemTime, AtError> {
    let unreadable = |why: String| AtError::Unreadable {
        value: crate::logging::escape(value).into_owned(),
        why,
    };
    let at = match value.strip_prefix('+') {
        Some(d) => {
            let d = drctl_plugin_api::duration::parse(d).map_err(|e| unreadable(e.to_string()))?;
            now.checked_add(d).ok_or_else(|| AtError::TooFar {
                value: value.to_owned(),
            })?
        }
        None => {
            let t = chrono::DateTime::parse_from_rfc3339(value)
                .map_err(|e| unreadable(e.to_string()))?;
            let ms = t.timestamp_millis();
            let since = Duration::from_millis(ms.unsigned_abs());
            let at = if ms >= 0 {
                SystemTime::UNIX_EPOCH.checked_add(since)
            } else {
                SystemTime::UNIX_EPOCH.checked_sub(since)
            };
            at.ok_or_else(|| unreadable("out of range".to_owned()))?
        }
    };
    let value = crate::logging::escape(value).into_owned();
    match at.duration_since(now) {
        Err(_) | Ok(Duration::ZERO) => Err(AtError::Past {
            value,
            now: humantime::format_rfc3339_seconds(now).to_string(),
        }),
        Ok(ahead) if ahead > MAX_AHEAD => Err(AtError::TooFar { value }),
        Ok(_) => Ok(at),
    }
}

/// Milliseconds since the Unix epoch (the control protocol's wall times).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The wall time `ms` milliseconds after the Unix epoch (`None`: beyond
/// what the system's clock represents).
pub fn from_unix_ms(ms: u64) -> Option<SystemTime> {
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// The longest `--wave-interval` and per-wave `--timeout` a watcher takes
/// from a client (the CLI bounds its durations; the socket may not).
pub const MAX_WAVE_WAIT: Duration = Duration::from_secs(86_400);

/// The most agents a count names (bounds what a request asks for).
const MAX_COUNT: u32 = 10_000_000;

/// A share of agents: `10%` or a count (`25`).
///
/// Read from the control socket through the same bounds as `--agents`
/// (a client other than drctl may send `{"percent": 250}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawShare", into = "RawShare")]
pub enum Share {
    /// 1 to 100 percent.
    Percent(u8),
    /// This many.
    Count(u32),
}

/// [`Share`] on the wire, before its bounds are checked.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawShare {
    Percent(u8),
    Count(u32),
}

impl TryFrom<RawShare> for Share {
    type Error = String;

    fn try_from(raw: RawShare) -> Result<Share, String> {
        match raw {
            RawShare::Percent(p @ 1..=100) => Ok(Share::Percent(p)),
            RawShare::Count(n @ 1..=MAX_COUNT) => Ok(Share::Count(n)),
            RawShare::Percent(p) => Err(format!("{p}%: expected a percentage from 1% to 100%")),
            RawShare::Count(n) => Err(format!(
                "{n}: expected a number of agents from 1 to {MAX_COUNT}"
            )),
        }
    }
}

impl From<Share> for RawShare {
    fn from(share: Share) -> RawShare {
        match share {
            Share::Percent(p) => RawShare::Percent(p),
            Share::Count(n) => RawShare::Count(n),
        }
    }
}

impl Share {
    /// Reads `10%` (1 to 100) or `25` (at least 1).
    pub fn parse(s: &str) -> Result<Share, String> {
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p @ 1..=100) => Ok(Share::Percent(p)),
                _ => Err(format!(
                    "{}: expected a percentage from 1% to 100%",
                    crate::logging::escape(s)
                )),
            },
            None => match s.parse::<u32>() {
                Ok(n @ 1..=MAX_COUNT) => Ok(Share::Count(n)),
                _ => Err(format!(
                    "{}: expected a percentage (10%) or a number of agents from 1 to {MAX_COUNT}",
                    crate::logging::escape(s)
                )),
            },
        }
    }

    /// How many of `n`: a percentage rounded up (so 10% of 5 is 1), a count
    /// at most `n`.
    pub fn of(self, n: usize) -> usize {
        match self {
            Share::Percent(p) => n.saturating_mul(usize::from(p)).div_ceil(100),
            Share::Count(c) => usize::try_from(c).unwrap_or(usize::MAX).min(n),
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Share::Percent(p) => write!(f, "{p}%"),
            Share::Count(c) => write!(f, "{c}"),
        }
    }
}

/// The agents `--agents SHARE` moves, in the order they move: `candidates`
/// (index, login name; those that can move) sorted by name, the first
/// `share` of a fleet of `fleet` agents (all of them without a share).
pub fn select(
    mut candidates: Vec<(usize, String)>,
    fleet: usize,
    share: Option<Share>,
) -> Vec<(usize, String)> {
    candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let n = share.map_or(candidates.len(), |s| s.of(fleet));
    candidates.truncate(n);
    candidates
}

/// `selected` cut into waves of `wave` of them (rounded up, at least one);
/// one wave without `wave`.
pub fn waves<T>(selected: Vec<T>, wave: Option<Share>) -> Vec<Vec<T>> {
    let size = wave.map_or(selected.len(), |w| w.of(selected.len())).max(1);
    let mut out = Vec::new();
    let mut rest = selected.into_iter().peekable();
    while rest.peek().is_some() {
        out.push(rest.by_ref().take(size).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_from_the_socket_keeps_the_bounds_of_the_flag() {
        for ok in [r#"{"percent":10}"#, r#"{"count":25}"#] {
            let share: Share = serde_json::from_str(ok).unwrap();
            assert_eq!(serde_json::to_string(&share).unwrap(), ok);
        }
        for bad in [
            r#"{"percent":0}"#,
            r#"{"percent":250}"#,
            r#"{"count":0}"#,
            r#"{"count":4000000000}"#,
        ] {
            let err = serde_json::from_str::<Share>(bad).unwrap_err().to_string();
            assert!(err.contains("expected a"), "{bad}: {err}");
        }
    }

    fn now() -> SystemTime {
        // 2026-03-01T12:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400)
    }

    #[test]
    fn at_reads_a_relative_duration_and_rfc3339_with_any_offset() {
        let now = now();
        assert_eq!(parse_at("+90s", now), Ok(now + Duration::from_secs(90)));
        assert_eq!(
            parse_at("2026-03-01T13:30:00+01:00", now),
            Ok(now + Duration::from_secs(30 * 60))
        );
        assert_eq!(
            parse_at("2026-03-01T12:00:05.5Z", now),
            Ok(now + Duration::from_millis(5500))
        );
    }

    #[test]
    fn at_refuses_the_past_now_and_beyond_a_week_naming_the_value() {
        let now = now();
        let e = parse_at("2026-03-01T11:59:59Z", now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--at 2026-03-01T11:59:59Z: that time has passed (it is 2026-03-01T12:00:00Z now)"
        );
        assert!(matches!(parse_at("+0s", now), Err(AtError::Past { .. })));
        assert!(parse_at("+7days", now).is_ok());
        let e = parse_at("+7days 1s", now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--at +7days 1s: more than 7days ahead, the furthest a switch is scheduled"
        );
        assert!(matches!(
            parse_at("2027-03-01T12:00:00Z", now),
            Err(AtError::TooFar { .. })
        ));
        let e = parse_at("tomorrow", now).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--at tomorrow: expected an RFC 3339 time"),
            "{e}"
        );
        assert!(matches!(
            parse_at("+soon", now),
            Err(AtError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_share_is_a_percentage_rounded_up_or_a_count() {
        assert_eq!(Share::parse("10%"), Ok(Share::Percent(10)));
        assert_eq!(Share::parse("25"), Ok(Share::Count(25)));
        for bad in ["0%", "101%", "0", "-1", "ten", "%"] {
            assert!(Share::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Share::Percent(10).of(10), 1);
        assert_eq!(Share::Percent(10).of(5), 1);
        assert_eq!(Share::Percent(10).of(11), 2);
        assert_eq!(Share::Percent(100).of(7), 7);
        assert_eq!(Share::Percent(10).of(0), 0);
        assert_eq!(Share::Count(3).of(2), 2);
    }

    #[test]
    fn agents_are_selected_by_name_and_cut_into_waves() {
        let names = ["dan", "ann", "cat", "bob", "eve"];
        let candidates: Vec<(usize, String)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.to_string()))
            .collect();
        let picked = select(candidates.clone(), 10, Some(Share::Percent(20)));
        assert_eq!(picked, [(1, "ann".to_owned()), (3, "bob".to_owned())]);
        let all = select(candidates, 5, None);
        let order: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(order, ["ann", "bob", "cat", "dan", "eve"]);
        let w = waves(order.clone(), Some(Share::Percent(40)));
        assert_eq!(w, [vec!["ann", "bob"], vec!["cat", "dan"], vec!["eve"]]);
        assert_eq!(waves(order.clone(), None), std::slice::from_ref(&order));
        // A tiny share still moves one agent a wave.
        assert_eq!(
            waves(vec![1, 2], Some(Share::Percent(1))),
            [vec![1], vec![2]]
        );
        assert!(waves(Vec::<u8>::new(), Some(Share::Count(2))).is_empty());
    }
}

//! Durations as people write them (config keys, scenario keys, command-line
//! flags): humantime text such as `"30s"` or `"1500ms"`, bounded by [`MAX`].
//!
//! Time on the ABI and in the engine is u64 nanoseconds since the session
//! start, which ends after about 584 years: a longer duration, or a session
//! time plus one, would saturate and read as a spurious fault. [`MAX`] keeps
//! every such sum far inside that range.

use std::time::Duration;

/// The longest duration drctl takes anywhere: 100 years (humantime's
/// `100y`, 365.25 days each).
pub const MAX: Duration = Duration::from_secs(100 * 31_557_600);

/// [`MAX`] as written in error messages and docs.
pub const MAX_TEXT: &str = "100y";

/// Why a duration was refused; the caller adds the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a humantime duration.
    #[error(
        "{text:?} is not a duration ({reason}): expected one like \"30s\", \"1500ms\" or \"2m\""
    )]
    Invalid {
        /// What was written.
        text: String,
        /// humantime's reason.
        reason: String,
    },
    /// Longer than [`MAX`].
    #[error("{text:?} is longer than the longest duration drctl takes, {MAX_TEXT}")]
    TooLong {
        /// What was written.
        text: String,
    },
}

/// Parses a humantime duration (surrounding spaces ignored), at most [`MAX`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| DurationError::Invalid {
        text: text.to_owned(),
        reason: e.to_string(),
    })?;
    if d > MAX {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
        });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_at_a_hundred_years() {
        assert_eq!(parse(" 1500ms "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("100y"), Ok(MAX));
        // 100 years of nanoseconds, twice over, still fit a u64.
        assert!(2 * MAX.as_nanos() < u128::from(u64::MAX));
        for text in ["585y", "600y", "100y 1ns"] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.contains(text) && e.contains("longest duration drctl takes, 100y"),
                "{e}"
            );
        }
        let e = parse("3x").unwrap_err().to_string();
        assert!(e.starts_with("\"3x\" is not a duration"), "{e}");
    }
}

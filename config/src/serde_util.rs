//! Serde helpers: durations with a clear "expected", lenient strings.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};

/// What a duration value must look like, as error messages say it.
pub(crate) const EXPECTED_DURATION: &str = "a duration like \"30s\" or \"2m\"";

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED_DURATION)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        use drctl_plugin_api::duration::{parse, DurationError};
        // One bound for every duration key (`duration::MAX`): past it, time
        // in u64 nanoseconds would saturate.
        parse(s).map_err(|e| match e {
            DurationError::Invalid { .. } => E::invalid_value(Unexpected::Str(s), &self),
            DurationError::TooLong { .. } => E::custom(e),
        })
    }
}

/// `#[serde(with = "duration")]`: a humantime string such as `"30s"`.
pub(crate) mod duration {
    use super::*;

    pub(crate) use humantime_serde::serialize;

    /// Parses a humantime duration string.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(with = "opt_duration")]`: an optional humantime string.
pub(crate) mod opt_duration {
    use super::*;

    pub(crate) use humantime_serde::option::serialize;

    /// Parses a present humantime duration string (absence is handled by `default`).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(DurationVisitor).map(Some)
    }
}

struct LenientString;

impl Visitor<'_> for LenientString {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// An optional string that also accepts an integer (a DN written `dn = 7001`).
pub(crate) fn opt_lenient_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    d.deserialize_any(LenientString).map(Some)
}

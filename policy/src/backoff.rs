//! S1/W4 backoff: exponential, capped, with jitter from the engine's seeded RNG.

use crate::config::BackoffConfig;
use rand_chacha::rand_core::Rng;
use std::time::Duration;

/// Where the delay schedule between connect rounds is (its settings are
/// the engine config's, which a fleet shares).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Backoff {
    /// Rounds failed since the last success.
    failures: u32,
}

impl Backoff {
    /// Forget past failures (after a successful connect).
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next round: `min(initial * factor^n, max)`,
    /// scaled by a factor drawn uniformly from `[1 - jitter, 1 + jitter)`.
    pub(crate) fn next_delay(&mut self, cfg: &BackoffConfig, rng: &mut impl Rng) -> Duration {
        let exp = cfg.factor.powi(self.failures.min(1_000) as i32);
        let base = (cfg.initial.as_secs_f64() * exp).min(cfg.max.as_secs_f64());
        self.failures = self.failures.saturating_add(1);
        let scale = 1.0 + cfg.jitter * (2.0 * unit(rng) - 1.0);
        Duration::from_secs_f64(base * scale)
    }
}

/// A uniform draw from `[0, 1)` with 53 bits of precision.
pub(crate) fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

//! The engine's timers: one table keyed by [`TimerKind`], as quinn-proto keeps
//! its `TimerTable` keyed by `Timer`.
//!
//! [`Engine::poll_timeout`](crate::Engine::poll_timeout),
//! [`Engine::handle_timeout`](crate::Engine::handle_timeout) and
//! [`Engine::view`](crate::Engine::view) all read this one table; each rule's
//! module arms, cancels and fires its own timers (the crate docs list which).
//! Adding a timer is one variant here and one arm in `handle_timeout`.

use crate::time::Timestamp;
use serde::Serialize;

/// Which timer a [`PendingTimer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKind {
    /// S1: startup gives up.
    StartupTimeout,
    /// S1/W4: next connect round.
    Backoff,
    /// D1: `site-timeout`.
    SiteTimeout,
    /// D4: `site-sip-register-timeout`.
    SipRegisterTimeout,
    /// E4: delayed automatic switchover.
    SwitchoverJitter,
    /// E1: hold-down ends.
    HoldDown,
    /// E2: the next probe of the preferred site (`failback-probe-interval`).
    FailbackProbe,
    /// E2: a failback's telephony must be ON by then (`site-timeout`).
    FailbackVerify,
}

impl TimerKind {
    /// How many kinds there are: the size of a [`TimerTable`] (at most 8:
    /// its armed bits are a `u8`).
    const COUNT: usize = 8;

    /// Every kind, in the order timers due at the same instant fire.
    ///
    /// The startup timeout comes first (giving up fires nothing else), then
    /// the backoff (its connect command goes out before any decision the
    /// triggers lead to); the triggers after it only set flags that one
    /// evaluation reads once they have all fired. The failback probe only
    /// sends a command, whose answer comes later.
    pub(crate) const VALUES: [TimerKind; TimerKind::COUNT] = [
        TimerKind::StartupTimeout,
        TimerKind::Backoff,
        TimerKind::SiteTimeout,
        TimerKind::SipRegisterTimeout,
        TimerKind::FailbackVerify,
        TimerKind::SwitchoverJitter,
        TimerKind::HoldDown,
        TimerKind::FailbackProbe,
    ];

    /// The stable name (as serialized), for status.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::StartupTimeout => "startup-timeout",
            TimerKind::Backoff => "backoff",
            TimerKind::SiteTimeout => "site-timeout",
            TimerKind::SipRegisterTimeout => "sip-register-timeout",
            TimerKind::SwitchoverJitter => "switchover-jitter",
            TimerKind::HoldDown => "hold-down",
            TimerKind::FailbackProbe => "failback-probe",
            TimerKind::FailbackVerify => "failback-verify",
        }
    }
}

/// A timer that will fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PendingTimer {
    /// Which timer.
    pub kind: TimerKind,
    /// When it fires.
    pub at: Timestamp,
}

/// When each timer fires, if it is armed: the deadlines and one bit a
/// kind for "armed" (72 bytes rather than 128 as `Option`s, in every
/// engine of a fleet of 100 000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    at: [Timestamp; TimerKind::COUNT],
    /// Bit `kind as usize` is set while `kind` is armed.
    armed: u8,
}

// The armed bits are a `u8`.
const _: () = assert!(TimerKind::COUNT <= 8);

impl TimerTable {
    /// Arms `kind` to fire at `at`, replacing any earlier deadline.
    pub(crate) fn set(&mut self, kind: TimerKind, at: Timestamp) {
        self.at[kind as usize] = at;
        self.armed |= 1 << kind as usize;
    }

    /// Arms `kind` at `at`, or cancels it for `None`.
    pub(crate) fn set_or_stop(&mut self, kind: TimerKind, at: Option<Timestamp>) {
        match at {
            Some(at) => self.set(kind, at),
            None => self.stop(kind),
        }
    }

    /// Cancels `kind`.
    pub(crate) fn stop(&mut self, kind: TimerKind) {
        self.at[kind as usize] = Timestamp::ZERO;
        self.armed &= !(1 << kind as usize);
    }

    /// When `kind` fires, if it is armed.
    pub(crate) fn get(&self, kind: TimerKind) -> Option<Timestamp> {
        (self.armed & (1 << kind as usize) != 0).then(|| self.at[kind as usize])
    }

    /// Whether `kind` is armed and due at or before `now`.
    pub(crate) fn is_expired(&self, kind: TimerKind, now: Timestamp) -> bool {
        self.get(kind).is_some_and(|at| at <= now)
    }

    /// The earliest deadline among the armed timers.
    pub(crate) fn next_timeout(&self) -> Option<Timestamp> {
        (0..TimerKind::COUNT)
            .filter(|k| self.armed & (1 << k) != 0)
            .map(|k| self.at[k])
            .min()
    }

    /// The armed timers, in declaration order (the order the view has
    /// always listed them in).
    pub(crate) fn pending(&self) -> Vec<PendingTimer> {
        let mut timers: Vec<PendingTimer> = TimerKind::VALUES
            .into_iter()
            .filter_map(|kind| self.get(kind).map(|at| PendingTimer { kind, at }))
            .collect();
        timers.sort_by_key(|t| t.kind as usize);
        timers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `VALUES` holds every kind exactly once, so each has a slot and fires.
    #[test]
    fn values_lists_every_kind_once() {
        let mut slots: Vec<usize> = TimerKind::VALUES.iter().map(|&k| k as usize).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..TimerKind::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn next_timeout_is_the_earliest_armed_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(TimerKind::FailbackProbe, Timestamp::from_secs(5));
        t.set(TimerKind::HoldDown, Timestamp::from_secs(3));
        assert_eq!(t.next_timeout(), Some(Timestamp::from_secs(3)));
        t.stop(TimerKind::HoldDown);
        assert_eq!(t.next_timeout(), Some(Timestamp::from_secs(5)));
        t.set(TimerKind::HoldDown, Timestamp::from_secs(3));
        t.stop(TimerKind::FailbackProbe);
        assert!(t.is_expired(TimerKind::HoldDown, Timestamp::from_secs(3)));
        assert!(!t.is_expired(TimerKind::HoldDown, Timestamp::from_nanos(2_999_999_999)));
        assert!(!t.is_expired(TimerKind::FailbackProbe, Timestamp::MAX));
    }
}

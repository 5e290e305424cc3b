//! E2: automatic failback to the preferred site, on evidence.
//!
//! With `policy.failback = auto`, while the agent watches the other site the
//! engine probes the preferred one (`probe`, every
//! `failback-probe-interval`, the first at arrival). A run of healthy answers
//! spanning `failback-after` makes the failback due; an unhealthy answer, a
//! failed probe or one unanswered by the next probe ends the run. A failback
//! whose telephony is not ON within `site-timeout` of landing returns at once
//! (hold-down and jitter do not hold it) and doubles `failback-after`, up to
//! [`FAILBACK_MAX_MULTIPLIER`] times the configured one; a failback that
//! holds (telephony ON) brings it back to 1×.

use crate::config::{Failback, FAILBACK_MAX_MULTIPLIER};
use crate::engine::{Engine, FailbackView, Switchover};
use crate::input::CommandId;
use crate::output::CommandKind;
use crate::timers::TimerKind;
use drctl_protocol::{Reason, Reply};
use std::time::Duration;

impl Engine {
    /// E2: `failback-after` in force (the configured one times the penalty),
    /// when failback is automatic.
    fn e2_after(&self) -> Option<Duration> {
        match self.cfg.failback {
            Failback::Auto { after } => Some(after.saturating_mul(self.failback.multiplier)),
            Failback::Manual => None,
        }
    }

    /// E2: the agent is watching a site (after startup or a switchover):
    /// check a failback that just landed, and start probing the preferred
    /// site if this is not it.
    pub(crate) fn e2_on_watching(&mut self, landed: Option<Switchover>) {
        self.triggers.due.failback = false;
        self.e2_cancel_failback();
        let (Some(site), Some(pref)) = (self.conn.site, self.learned.preferred) else {
            return;
        };
        if let Some(sw) = landed.filter(|sw| sw.reason == Reason::Failback) {
            if site == sw.to {
                self.e2_arm_verify();
            } else {
                // W4 took the agent back to the origin: the preferred site
                // was not there after all.
                self.e2_penalize();
            }
        }
        if site != pref && self.e2_after().is_some() {
            self.e2_send_probe();
        }
    }

    /// E2: after a failback lands, its telephony must come ON within
    /// `site-timeout` (off or absent: no check, as D1 never switches then).
    fn e2_arm_verify(&mut self) {
        if self.conn.listeners.telephony == crate::ListenerStatus::On {
            return self.e2_failback_held();
        }
        let timeout = self.learned.dr.site_timeout.filter(|t| !t.is_zero());
        let at = timeout.map(|t| self.now + t);
        self.timers.set_or_stop(TimerKind::FailbackVerify, at);
    }

    /// E2: telephony came ON at the site the agent is on; a failback waiting
    /// for it holds.
    pub(crate) fn e2_on_telephony_on(&mut self) {
        if self.timers.get(TimerKind::FailbackVerify).is_some() {
            self.timers.stop(TimerKind::FailbackVerify);
            self.e2_failback_held();
        }
    }

    /// E2: the failback held: the penalty is forgiven.
    fn e2_failback_held(&mut self) {
        self.failback.multiplier = 1;
    }

    /// E2: a failback landed on a dead site: double `failback-after`, capped.
    fn e2_penalize(&mut self) {
        let m = self.failback.multiplier.saturating_mul(2);
        self.failback.multiplier = m.min(FAILBACK_MAX_MULTIPLIER);
    }

    /// E2: the failback's telephony did not come ON within `site-timeout`:
    /// return at once (D6 exempts this trigger from hold-down and jitter).
    pub(crate) fn e2_failback_verify_fired(&mut self) {
        self.timers.stop(TimerKind::FailbackVerify);
        self.e2_penalize();
        self.triggers.due.failback_failed = true;
    }

    /// E2: the agent left the site (or stopped): no probing, no run of
    /// health, no check of a failback from it.
    pub(crate) fn e2_cancel_failback(&mut self) {
        self.timers.stop(TimerKind::FailbackProbe);
        self.timers.stop(TimerKind::FailbackVerify);
        self.failback.probe = None;
        self.failback.healthy_since = None;
    }

    /// E2: time for the next probe. One still unanswered an interval after
    /// it was sent has failed (a backend must answer within the interval).
    /// At the end of a run of health (the extra probe) one sent less than an
    /// interval ago is still awaited: its answer decides, and the next
    /// probe goes out on the interval.
    pub(crate) fn e2_probe_fired(&mut self) {
        self.timers.stop(TimerKind::FailbackProbe);
        if let Some((_, sent)) = self.failback.probe {
            let due = sent + self.cfg.failback_probe_interval;
            if self.now < due {
                return self.timers.set(TimerKind::FailbackProbe, due);
            }
            self.failback.probe = None;
            self.e2_health_broken();
        }
        self.e2_send_probe();
    }

    /// E2: probe the preferred site through the CS Proxy its Application
    /// names (S3), and arm the next probe.
    fn e2_send_probe(&mut self) {
        let Some(pref) = self.learned.preferred else {
            return;
        };
        let cmd = self.command(CommandKind::Probe {
            site: self.site_name(pref).to_string(),
            cs_proxy: self.target_cs_proxy(pref).to_owned(),
        });
        self.failback.probe = Some((cmd, self.now));
        self.e2_arm_probe_timer(self.now + self.cfg.failback_probe_interval);
    }

    /// E2: the next probe at `at`, or sooner if the run of health reaches
    /// `failback-after` before: the failback then waits for no interval.
    fn e2_arm_probe_timer(&mut self, at: crate::Timestamp) {
        let end = self
            .failback
            .healthy_since
            .zip(self.e2_after())
            .map(|(since, after)| since + after);
        let at = end.filter(|&e| e > self.now).map_or(at, |e| e.min(at));
        self.timers.set(TimerKind::FailbackProbe, at);
    }

    /// E2: whether `id` is the probe in flight (its answer goes to
    /// [`Engine::e2_on_probe_result`], whatever the phase).
    pub(crate) fn e2_is_probe(&self, id: CommandId) -> bool {
        self.failback.probe.is_some_and(|(p, _)| p == id)
    }

    /// E2: a probe's answer. Healthy answers without a break for
    /// `failback-after` make the failback due.
    pub(crate) fn e2_on_probe_result(&mut self, result: Result<Reply, String>) {
        self.failback.probe = None;
        if !matches!(result, Ok(Reply::Probed { healthy: true, .. })) {
            return self.e2_health_broken();
        }
        let since = *self.failback.healthy_since.get_or_insert(self.now);
        let Some(after) = self.e2_after() else { return };
        if self.now >= since + after {
            self.triggers.due.failback = true;
            self.d6_evaluate();
        } else if let Some(next) = self.timers.get(TimerKind::FailbackProbe) {
            self.e2_arm_probe_timer(next);
        }
    }

    /// E2: a gate vetoed the failback: it is no longer due, and the
    /// preferred site must answer healthy for another `failback-after`
    /// before the next one (probes go on).
    pub(crate) fn e2_failback_vetoed(&mut self) {
        self.triggers.due.failback = false;
        self.failback.healthy_since = None;
    }

    /// E2: an unhealthy answer or a failed probe: the run of health starts over.
    fn e2_health_broken(&mut self) {
        self.failback.healthy_since = None;
        if std::mem::take(&mut self.triggers.due.failback) {
            // A failback held back (pause, hold-down) is no longer due.
            self.d6_evaluate();
        }
    }

    /// E2 for status: the failback-after in force and the run of health.
    pub(crate) fn e2_view(&self) -> Option<FailbackView> {
        self.e2_after().map(|after| FailbackView {
            after,
            healthy_since: self.failback.healthy_since,
        })
    }
}

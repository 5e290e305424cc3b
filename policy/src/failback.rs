//! E2: automatic failback to the preferred site, armed while watching the
//! other one (`policy.failback = auto`, after `failback-after`).

use crate::config::Failback;
use crate::engine::Engine;
use crate::timers::TimerKind;

impl Engine {
    /// E2: arm the failback timer when watching a site that is not the preferred one.
    pub(crate) fn e2_arm_failback(&mut self) {
        self.triggers.due.failback = false;
        self.e2_cancel_failback();
        if let (Failback::Auto { after }, Some(site), Some(pref)) =
            (self.cfg.failback, self.conn.site, self.learned.preferred)
        {
            if site != pref {
                self.timers.set(TimerKind::Failback, self.now + after);
            }
        }
    }

    /// E2: the agent left the site (or stopped); no failback from it.
    pub(crate) fn e2_cancel_failback(&mut self) {
        self.timers.stop(TimerKind::Failback);
    }

    /// E2: healthy on the secondary for `failback-after`; the trigger is due.
    pub(crate) fn e2_failback_fired(&mut self) {
        self.timers.stop(TimerKind::Failback);
        self.triggers.due.failback = true;
    }
}

//! Switchover: D6 one at a time (which trigger acts, and when), W1 kill
//! factory + reconnect, W3 the operator's target; E1 hold-down, E3 pause and
//! E4 jitter, which hold automatic switchovers back. W2 (subscribe) and W4
//! (retries) share the connect path in `startup.rs`.

use crate::backoff::unit;
use crate::config::SiteName;
use crate::engine::{other, Engine, Phase, Round, SiteIdx, Switchover};
use crate::output::CommandKind;
use crate::timers::TimerKind;
use drctl_protocol::{Decision, Reason, Reply, SuppressWhy};

impl Engine {
    /// D6: decides whether a due trigger starts a switchover now (E1, E3, E4
    /// may hold it). Called whenever a trigger, the pause, hold-down or
    /// jitter may have changed.
    pub(crate) fn d6_evaluate(&mut self) {
        // A switchover waiting on its gates is the one in flight (D6).
        if self.phase != Phase::Watching
            || self.switchover.is_some()
            || self.gates.pending.is_some()
        {
            return;
        }
        let Some((reason, target, at_once)) = self.d6_due_trigger() else {
            // E4: the condition went away while waiting out the jitter.
            self.e4_cancel_jitter();
            self.triggers.suppressed = None;
            return;
        };
        if self.triggers.paused {
            self.e4_cancel_jitter();
            return self.report_suppressed(reason, SuppressWhy::Paused);
        }
        if at_once {
            // E2: back from a failback's dead site now, not after hold-down
            // or jitter.
            self.e4_cancel_jitter();
            return self.w1_start_switchover(reason, target);
        }
        if self.e1_holds(reason) {
            return self.report_suppressed(reason, SuppressWhy::HoldDown);
        }
        if !self.e4_jitter_elapsed(reason) {
            return;
        }
        self.w1_start_switchover(reason, target);
    }

    /// D6: the trigger to act on now, by precedence, its target, and
    /// whether it starts at once (exempt from E1 hold-down and E4 jitter).
    /// A failback whose telephony never came ON returns for the reason D1
    /// would give (`telephony-timeout`), but at once (E2).
    pub(crate) fn d6_due_trigger(&self) -> Option<(Reason, SiteIdx, bool)> {
        let site = self.conn.site?;
        let due = &self.triggers.due;
        if due.graceful {
            Some((Reason::GracefulShutdown, other(site), false))
        } else if due.failback_failed {
            Some((Reason::TelephonyTimeout, other(site), true))
        } else if due.telephony {
            Some((Reason::TelephonyTimeout, other(site), false))
        } else if due.sip {
            Some((Reason::SipRegisterTimeout, other(site), false))
        } else if let Some((reason, to)) = self.e5_due(site) {
            Some((reason, to, false))
        } else if due.failback {
            self.learned
                .preferred
                .filter(|p| *p != site && !self.e5_evacuated(*p))
                .map(|p| (Reason::Failback, p, false))
        } else {
            None
        }
    }

    /// E1: a switchover completed; hold automatic ones off for `hold-down`.
    pub(crate) fn e1_arm_hold_down(&mut self) {
        if !self.cfg.hold_down.is_zero() {
            self.timers
                .set(TimerKind::HoldDown, self.now + self.cfg.hold_down);
        }
    }

    /// E1: whether hold-down holds `reason` back now.
    fn e1_holds(&self, reason: Reason) -> bool {
        let until = self.timers.get(TimerKind::HoldDown);
        reason.held_down() && until.is_some_and(|t| t > self.now)
    }

    /// E1: hold-down is over; a held trigger may act now.
    pub(crate) fn e1_hold_down_ended(&mut self) {
        self.timers.stop(TimerKind::HoldDown);
    }

    /// E4: whether an automatic switchover has waited out its random delay;
    /// the first call draws the delay and arms its timer.
    fn e4_jitter_elapsed(&mut self, reason: Reason) -> bool {
        let jitter = self.cfg.switchover_jitter;
        if !reason.is_automatic() || jitter.is_zero() {
            return true;
        }
        match self.timers.get(TimerKind::SwitchoverJitter) {
            None => {
                let delay = jitter.mul_f64(unit(self.rng()));
                self.timers
                    .set(TimerKind::SwitchoverJitter, self.now + delay);
                // A zero draw starts at once; anything else waits for its timer.
                delay.is_zero()
            }
            Some(t) => t <= self.now,
        }
    }

    /// E4: the trigger the jitter delayed is gone (or held); drop the wait.
    pub(crate) fn e4_cancel_jitter(&mut self) {
        self.timers.stop(TimerKind::SwitchoverJitter);
    }

    /// Reports a held trigger once, not at every re-evaluation.
    fn report_suppressed(&mut self, reason: Reason, why: SuppressWhy) {
        if self.triggers.suppressed != Some((reason, why)) {
            self.triggers.suppressed = Some((reason, why));
            self.decide(Decision::SwitchoverSuppressed { reason, why });
        }
    }

    /// E3: pause or resume automatic switchovers.
    pub(crate) fn e3_set_paused(&mut self, paused: bool) {
        if self.triggers.paused != paused {
            self.triggers.paused = paused;
            self.triggers.suppressed = None;
            self.d6_evaluate();
        }
    }

    /// W3: an operator's switchover, exempt from pause, hold-down and jitter.
    pub(crate) fn w3_on_operator_switch(&mut self, to: Option<SiteName>) {
        let suppressed = |why| Decision::SwitchoverSuppressed {
            reason: Reason::Operator,
            why,
        };
        let target = match to {
            Some(name) => match self.cfg.site_index(&name) {
                Some(idx) => Some(idx),
                None => return self.decide(suppressed(SuppressWhy::UnknownSite)),
            },
            None => self.conn.site.map(other),
        };
        let Some(target) = target else {
            return self.decide(suppressed(SuppressWhy::InProgress));
        };
        let busy = self.switchover.is_some() || self.gates.pending.is_some();
        if self.phase != Phase::Watching || busy {
            return self.decide(suppressed(SuppressWhy::InProgress));
        }
        if self.conn.site == Some(target) {
            return self.decide(suppressed(SuppressWhy::AlreadyOnSite));
        }
        self.w1_start_switchover(Reason::Operator, target);
    }

    /// W1: announce, drop the old connection, kill the AIL factory.
    pub(crate) fn w1_start_switchover(&mut self, reason: Reason, to: SiteIdx) {
        let Some(from) = self.conn.site else { return };
        if self.gate_holds(reason, from, to) {
            return;
        }
        if reason == Reason::PreferredChanged {
            self.e5_relocation_started();
        }
        self.switchover = Some(Switchover { reason, from, to });
        self.decide(Decision::SwitchoverStarted {
            reason,
            from: self.site_name(from),
            to: self.site_name(to),
        });
        self.d5_leave_site();
        self.retry.backoff.reset();
        // W4: the round alternates the target and the origin.
        self.retry.round = Round {
            order: [to, from],
            next: 0,
        };
        let cmd = self.command(CommandKind::KillFactory);
        self.phase = Phase::KillingFactory { cmd };
    }

    /// W1: the factory is gone (or failed to die: AIL is restarted regardless).
    pub(crate) fn w1_on_factory_killed(&mut self, _result: Result<Reply, String>) {
        self.s1_connect_next();
    }
}

impl Engine {
    /// Gates: whether `reason`'s switchover from `from` to `to` waits for the
    /// host's gate verdict (asked once; a startup relocation is never gated).
    fn gate_holds(&mut self, reason: Reason, from: SiteIdx, to: SiteIdx) -> bool {
        if reason == Reason::StartupRelocate || !self.cfg.gated.contains(&reason) {
            return false;
        }
        if self.gates.approved.take() == Some((reason, to)) {
            return false;
        }
        if self.gates.pending.is_none() {
            self.gates.pending = Some((reason, from, to));
            self.ask_gates(reason, from, to);
        }
        true
    }

    /// Gates: the host's verdict. Skipped gates are recorded; a veto is a
    /// `gate-refused` decision and drops the trigger (an automatic one comes
    /// back only when its condition fires again; failback re-arms its timer);
    /// a pass starts the switchover if it still applies. A verdict nobody
    /// waits for (stale, or a replay's) is ignored.
    pub(crate) fn gate_on_verdict(&mut self, verdict: drctl_protocol::GateVerdict) {
        let Some((reason, from, to)) = self.gates.pending.take() else {
            return;
        };
        let why = verdict.why.unwrap_or_default();
        for gate in verdict.skipped {
            self.decide(Decision::GateSkipped {
                reason,
                gate,
                why: why.clone(),
            });
        }
        if let Some(refusal) = verdict.refused {
            self.decide(Decision::GateRefused {
                reason,
                gate: refusal.gate,
                output: refusal.output,
            });
            match reason {
                Reason::GracefulShutdown => self.triggers.due.graceful = false,
                Reason::TelephonyTimeout => self.triggers.due.telephony = false,
                Reason::SipRegisterTimeout => self.triggers.due.sip = false,
                Reason::Failback => self.e2_failback_vetoed(),
                Reason::PreferredChanged | Reason::Directive => self.e5_vetoed(reason),
                Reason::Operator | Reason::StartupRelocate => {}
            }
            return;
        }
        let still = self.phase == Phase::Watching
            && self.switchover.is_none()
            && self.conn.site == Some(from);
        if !still {
            return;
        }
        self.gates.approved = Some((reason, to));
        if reason.is_automatic() {
            self.d6_evaluate();
        } else {
            self.w1_start_switchover(reason, to);
        }
        // Approval is for this evaluation only.
        self.gates.approved = None;
    }
}

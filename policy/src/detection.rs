//! Detection: D1 telephony, D2 configuration, D3 statistic, D4 agent logout,
//! D5 stale epochs. The same rules apply on either site. D1 and D4 are here
//! end to end: the event, arming and cancelling the timer, its firing
//! (which makes the trigger due for D6 in `switchover.rs`), and their alarms
//! (`telephony-service-down` on every OFF; `sip-registration-lost` from
//! `dr-force_logout` until EventDNBackInService, which may come at the next
//! site: leaving the site does not clear it).

use crate::engine::{Engine, ListenerStatus, Phase};
use crate::input::{BackendEvent, Epoch};
use crate::output::CommandKind;
use crate::time::Timestamp;
use crate::timers::TimerKind;
use drctl_protocol::{Alarm, Decision, LogoutClass, Service, ServiceState};
use std::time::Duration;

/// The reason code of a logout caused by an expired SIP registration (D4).
pub const DR_FORCE_LOGOUT: &str = "dr-force_logout";
/// The reason code of a logout caused by SIP Server's graceful shutdown (D4).
pub const GRACEFUL_SHUTDOWN_LOGOUT: &str = "graceful_shutdown_logout";

impl Engine {
    /// D5: only events of the current connection count.
    pub(crate) fn d5_on_backend(&mut self, epoch: Epoch, event: BackendEvent) {
        if self.conn.epoch != Some(epoch) || matches!(self.phase, Phase::Stopped | Phase::GaveUp) {
            return;
        }
        match event {
            BackendEvent::ServiceStatus { service, status } => match service {
                Service::Telephony => self.d1_on_telephony(status),
                Service::Configuration => self.d2_on_configuration(status),
                Service::Statistic => self.d3_on_statistic(status),
            },
            BackendEvent::AgentLogout { reason, .. } => self.d4_on_agent_logout(reason),
            BackendEvent::DnBackInService { .. } => self.d4_on_dn_back_in_service(),
            BackendEvent::DnOutOfService { .. } => self.conn.listeners.dn = ListenerStatus::Off,
            BackendEvent::Disconnected => self.on_disconnected(),
            BackendEvent::ConfigChanged {
                object,
                name,
                section,
                option,
                value,
            } => self.e5_on_config_changed(object, &name, &section, &option, value.as_deref()),
        }
    }

    /// D1: OFF starts the site timer (once), ON cancels it.
    fn d1_on_telephony(&mut self, status: ServiceState) {
        self.conn.listeners.telephony = status.into();
        match status {
            ServiceState::Off => {
                if self.conn.listeners.telephony_off_since.is_none() {
                    self.conn.listeners.telephony_off_since = Some(self.now);
                    self.d1_arm_site_timer();
                }
            }
            ServiceState::On => {
                let was_off = self.conn.listeners.telephony_off_since.take().is_some();
                self.d1_cancel_site_timer();
                self.e2_on_telephony_on();
                if was_off && self.triggers.due.telephony {
                    self.triggers.due.telephony = false;
                    self.d6_evaluate();
                }
            }
        }
        self.d1_sync_alarm();
    }

    /// D1: arms the site timer at OFF + `site-timeout` while telephony is
    /// OFF, the timeout is on and the trigger has not fired yet.
    pub(crate) fn d1_arm_site_timer(&mut self) {
        let at = deadline(
            self.triggers.due.telephony,
            self.conn.listeners.telephony_off_since,
            self.learned.dr.site_timeout,
        );
        self.timers.set_or_stop(TimerKind::SiteTimeout, at);
    }

    /// D1: telephony is back or forgotten.
    pub(crate) fn d1_cancel_site_timer(&mut self) {
        self.timers.stop(TimerKind::SiteTimeout);
    }

    /// D1: telephony stayed OFF for `site-timeout`; the trigger is due.
    pub(crate) fn d1_site_timeout_fired(&mut self) {
        self.d1_cancel_site_timer();
        self.triggers.due.telephony = true;
    }

    /// D1: telephony OFF is an alarm in every case, naming the pending
    /// switchover's deadline when the site timer runs; ON clears it (and so
    /// does leaving the site, [`Engine::d5_leave_site`]).
    pub(crate) fn d1_sync_alarm(&mut self) {
        if self.conn.listeners.telephony_off_since.is_some() {
            let deadline = self.timers.get(TimerKind::SiteTimeout);
            self.raise_with_deadline(Alarm::TelephonyServiceDown, deadline);
        } else {
            self.clear(Alarm::TelephonyServiceDown);
        }
    }

    /// D2: warn and alarm, never switch.
    fn d2_on_configuration(&mut self, status: ServiceState) {
        self.conn.listeners.configuration = status.into();
        self.alarm_while(status == ServiceState::Off, Alarm::ConfigurationServiceDown);
    }

    /// D3: warn and alarm, never switch.
    fn d3_on_statistic(&mut self, status: ServiceState) {
        self.conn.listeners.statistic = status.into();
        self.alarm_while(status == ServiceState::Off, Alarm::StatisticServiceDown);
    }

    fn alarm_while(&mut self, condition: bool, alarm: Alarm) {
        if condition {
            self.raise(alarm);
        } else {
            self.clear(alarm);
        }
    }

    /// D4: classify the logout reason and act on it.
    fn d4_on_agent_logout(&mut self, reason: Option<String>) {
        let reason = reason.unwrap_or_default();
        let class = self.classify_logout(&reason);
        self.decide(Decision::LogoutClassified { reason, class });
        match class {
            LogoutClass::Manual | LogoutClass::Supervisor => {}
            LogoutClass::DrForce => {
                self.conn.listeners.dn = ListenerStatus::Off;
                // Repeated dr-force_logout does not restart the wait.
                if self.conn.listeners.sip_wait_since.is_none() {
                    self.conn.listeners.sip_wait_since = Some(self.now);
                    self.d4_arm_sip_register_timer();
                }
                // Until EventDNBackInService, here or at the next site.
                let deadline = self.timers.get(TimerKind::SipRegisterTimeout);
                self.raise_with_deadline(Alarm::SipRegistrationLost, deadline);
                if self.cfg.embedded_endpoint {
                    self.command(CommandKind::RelaunchEndpoint);
                }
            }
            LogoutClass::GracefulShutdown => {
                self.triggers.due.graceful = true;
                self.d6_evaluate();
            }
        }
    }

    /// D4: which of the seed's four cases a reason code is.
    pub fn classify_logout(&self, reason: &str) -> LogoutClass {
        match reason {
            DR_FORCE_LOGOUT => LogoutClass::DrForce,
            GRACEFUL_SHUTDOWN_LOGOUT => LogoutClass::GracefulShutdown,
            r if self.cfg.supervisor_logout_reasons.iter().any(|s| s == r) => {
                LogoutClass::Supervisor
            }
            _ => LogoutClass::Manual,
        }
    }

    /// D4: re-registration ends the wait and clears the alarm.
    fn d4_on_dn_back_in_service(&mut self) {
        self.conn.listeners.dn = ListenerStatus::On;
        let was_waiting = self.conn.listeners.sip_wait_since.take().is_some();
        self.d4_cancel_sip_register_timer();
        self.clear(Alarm::SipRegistrationLost);
        if was_waiting && self.triggers.due.sip {
            self.triggers.due.sip = false;
            self.d6_evaluate();
        }
    }

    /// D4: arms the re-registration wait at `dr-force_logout` +
    /// `site-sip-register-timeout` while waiting, the timeout is on and the
    /// trigger has not fired yet.
    pub(crate) fn d4_arm_sip_register_timer(&mut self) {
        let at = deadline(
            self.triggers.due.sip,
            self.conn.listeners.sip_wait_since,
            self.learned.dr.sip_register_timeout,
        );
        self.timers.set_or_stop(TimerKind::SipRegisterTimeout, at);
    }

    /// D4: the phone re-registered, or the wait is forgotten.
    pub(crate) fn d4_cancel_sip_register_timer(&mut self) {
        self.timers.stop(TimerKind::SipRegisterTimeout);
    }

    /// D4: no re-registration within `site-sip-register-timeout`; the trigger is due.
    pub(crate) fn d4_sip_register_timeout_fired(&mut self) {
        self.d4_cancel_sip_register_timer();
        self.triggers.due.sip = true;
    }

    /// The backend lost the AIL session: alarm, then reconnect as at startup,
    /// beginning with the site we were on.
    fn on_disconnected(&mut self) {
        self.raise(Alarm::BackendDisconnected);
        let site = self.conn.site.unwrap_or_else(|| self.s5_first_site());
        if self.switchover.is_some() {
            return self.s1_w4_connect_failed(site, "backend disconnected".to_owned());
        }
        self.d5_leave_site();
        self.retry.backoff.reset();
        self.s1_begin_round(site);
    }

    /// Forget everything about the current connection (D5: its events are now stale).
    pub(crate) fn d5_leave_site(&mut self) {
        self.conn.epoch = None;
        self.conn.listeners = Default::default();
        self.triggers.due = Default::default();
        self.triggers.suppressed = None;
        self.d1_cancel_site_timer();
        self.d4_cancel_sip_register_timer();
        self.e4_cancel_jitter();
        self.e2_cancel_failback();
        for alarm in [
            Alarm::TelephonyServiceDown,
            Alarm::ConfigurationServiceDown,
            Alarm::StatisticServiceDown,
        ] {
            self.clear(alarm);
        }
    }
}

/// D1's and D4's deadline: `timeout` after `since`, unless the trigger is
/// already `due` or the timeout is off (absent or zero).
fn deadline(due: bool, since: Option<Timestamp>, timeout: Option<Duration>) -> Option<Timestamp> {
    if due {
        return None;
    }
    let timeout = timeout.filter(|t| !t.is_zero())?;
    since.map(|since| since + timeout)
}

//! Startup: S1 connect (with backoff and `startup.timeout`, both timers armed,
//! cancelled and fired here), S2 Person, S3 AIL Application, S4 relocation
//! to the preferred site, S5 cached preferred site. Reconnecting after a lost
//! backend session follows the same path, and so does a switchover once the
//! factory is killed: W2 (subscribe) and W4 (retries) live here too.

use crate::engine::{other, DrOptions, Engine, Listeners, Phase, Round, SiteIdx};
use crate::input::CommandId;
use crate::output::CommandKind;
use crate::timers::TimerKind;
use drctl_protocol::{Alarm, Decision, Listener, Password, Reason, Reply};

impl Engine {
    /// S1: begin startup at the first site.
    pub(crate) fn s1_start(&mut self) {
        if self.phase != Phase::Idle {
            return;
        }
        let deadline = self.cfg.startup_timeout.map(|t| self.now + t);
        self.timers.set_or_stop(TimerKind::StartupTimeout, deadline);
        let first = self.s5_first_site();
        self.s1_begin_round(first);
    }

    /// S5: the cached preferred site if there is one, else the configured first site.
    pub(crate) fn s5_first_site(&self) -> SiteIdx {
        self.cfg
            .cached_preferred
            .as_deref()
            .and_then(|name| self.cfg.site_index(name))
            .or_else(|| self.cfg.site_index(&self.cfg.first_site))
            .unwrap_or(0)
    }

    /// S1/W4: a fresh round of attempts, `first` then the other site.
    pub(crate) fn s1_begin_round(&mut self, first: SiteIdx) {
        self.retry.round = Round {
            order: [first, other(first)],
            next: 0,
        };
        self.s1_connect_next();
    }

    /// S1/W4: the backoff is over; start the next round.
    pub(crate) fn s1_backoff_fired(&mut self) {
        self.s1_connect_next();
    }

    /// S1/W1: connect to the next site of the round.
    pub(crate) fn s1_connect_next(&mut self) {
        self.timers.stop(TimerKind::Backoff);
        let site = self.retry.round.order[self.retry.round.next];
        let s = &self.cfg.sites[site];
        let kind = CommandKind::Connect {
            site: s.name.to_string(),
            cs_proxy: s.cs_proxy.clone(),
            app_name: s.app_name.clone(),
            username: self.cfg.username.clone(),
            // The host fills the secret in at the edge; it never reaches the engine.
            password: Password::default(),
            // W1: on-demand loading shortens the AIL restart of a switchover.
            on_demand_loading: self.switchover.is_some(),
        };
        let cmd = self.command(kind);
        self.phase = Phase::Connecting { cmd, site };
    }

    /// S1: the answer to `connect`.
    pub(crate) fn s1_on_connect_result(&mut self, site: SiteIdx, result: Result<Reply, String>) {
        let epoch = match result {
            Ok(Reply::Connected { epoch }) => epoch,
            Ok(other) => return self.s1_w4_connect_failed(site, unexpected("connect", &other)),
            Err(error) => return self.s1_w4_connect_failed(site, error),
        };
        self.retry.backoff.reset();
        self.conn.epoch = Some(epoch);
        self.conn.site = Some(site);
        self.conn.listeners = Listeners::default();
        self.d1_cancel_site_timer();
        self.d4_cancel_sip_register_timer();
        if self.switchover.is_some() {
            self.w2_subscribe();
            return;
        }
        self.decide(Decision::StartupConnected {
            site: self.site_name(site),
        });
        self.clear(Alarm::BackendDisconnected);
        // S2: always read the Person object, even with a cached preferred site (S5).
        let cmd = self.command(CommandKind::ReadPersonSites {
            username: self.cfg.username.clone(),
        });
        self.phase = Phase::ReadingPerson { cmd };
    }

    /// S1/W4: try the other site of the round, or back off after both failed.
    pub(crate) fn s1_w4_connect_failed(&mut self, site: SiteIdx, error: String) {
        self.conn.epoch = None;
        if let Some(sw) = self.switchover {
            self.decide(Decision::SwitchoverFailed {
                to: self.site_name(site),
                error,
            });
            // S4: a relocation whose preferred site is down stays where it was.
            let alarm = if sw.reason == Reason::StartupRelocate && site == sw.to {
                Alarm::PreferredSiteUnreachable
            } else {
                Alarm::SwitchoverFailed
            };
            self.raise(alarm);
        }
        self.retry.round.next += 1;
        if self.retry.round.next < self.retry.round.order.len() {
            self.s1_connect_next();
        } else {
            self.retry.round.next = 0;
            let delay = self.retry.backoff.next_delay(&mut self.rng);
            self.timers.set(TimerKind::Backoff, self.now + delay);
            self.phase = Phase::Backoff;
        }
    }

    /// S2: the Person object names the preferred AIL Application; read it (S3).
    pub(crate) fn s2_on_person_sites(&mut self, result: Result<Reply, String>) {
        match result {
            Ok(Reply::PersonSites { preferred_app, .. }) => {
                let cmd = self.command(CommandKind::ReadApplication {
                    app_name: preferred_app.clone(),
                });
                self.phase = Phase::ReadingApplication { cmd, preferred_app };
            }
            _ => self.s3_preferred_unknown(),
        }
    }

    /// S3: learn the preferred site and the DR options; S4: relocate if needed.
    pub(crate) fn s3_on_application(&mut self, preferred_app: &str, result: Result<Reply, String>) {
        let Ok(Reply::Application {
            app_name,
            cs_proxy,
            site_timeout,
            site_sip_register_timeout,
        }) = result
        else {
            return self.s3_preferred_unknown();
        };
        self.s3_set_dr_options(site_timeout, site_sip_register_timeout);
        let sites = &self.cfg.sites;
        let preferred = sites
            .iter()
            .position(|s| s.app_name == preferred_app || s.app_name == app_name)
            .or_else(|| sites.iter().position(|s| s.cs_proxy == cs_proxy));
        let Some(preferred) = preferred else {
            return self.s3_preferred_unknown();
        };
        // S3: the application's CS Proxy address wins over the local one.
        self.cfg.sites[preferred].cs_proxy = cs_proxy;
        self.learned.preferred = Some(preferred);
        self.clear(Alarm::PreferredSiteUnknown);
        match self.conn.site {
            Some(site) if site != preferred => {
                self.w1_start_switchover(Reason::StartupRelocate, preferred)
            }
            _ => self.w2_subscribe(),
        }
    }

    /// S2/S3 failed: watch where we are with the configured DR options.
    fn s3_preferred_unknown(&mut self) {
        self.s3_set_dr_options(None, None);
        self.raise(Alarm::PreferredSiteUnknown);
        self.w2_subscribe();
    }

    /// S3: the application's DR options, unless the config overrides them.
    fn s3_set_dr_options(
        &mut self,
        site_timeout: Option<std::time::Duration>,
        sip_register_timeout: Option<std::time::Duration>,
    ) {
        self.learned.dr = DrOptions {
            known: true,
            site_timeout: self.cfg.site_timeout.or(site_timeout),
            sip_register_timeout: self.cfg.site_sip_register_timeout.or(sip_register_timeout),
        };
        // The OFF or the logout may have come before the options.
        self.d1_arm_site_timer();
        self.d4_arm_sip_register_timer();
        self.d1_sync_alarm();
    }

    /// W2: subscribe the four listeners of the current connection.
    pub(crate) fn w2_subscribe(&mut self) {
        let Some(epoch) = self.conn.epoch else { return };
        let cmd = self.command(CommandKind::Subscribe {
            epoch,
            listeners: Listener::ALL.to_vec(),
        });
        self.phase = Phase::Subscribing { cmd };
    }

    /// W2 done: the agent is on a site and watching.
    pub(crate) fn w2_on_subscribed(&mut self, result: Result<Reply, String>) {
        if let Err(error) = result {
            let site = self.conn.site.unwrap_or(0);
            return self.s1_w4_connect_failed(site, error);
        }
        self.phase = Phase::Watching;
        self.timers.stop(TimerKind::StartupTimeout);
        if let Some(sw) = self.switchover.take() {
            let to = self.conn.site.unwrap_or(sw.to);
            self.decide(Decision::SwitchoverCompleted {
                reason: sw.reason,
                from: self.site_name(sw.from),
                to: self.site_name(to),
            });
            // W4: landing back on the origin leaves the alarm up until a
            // later switchover reaches its target.
            if to == sw.to {
                self.clear(Alarm::SwitchoverFailed);
            }
            self.e1_arm_hold_down();
        }
        if self.conn.site.is_some() && self.conn.site == self.learned.preferred {
            self.clear(Alarm::PreferredSiteUnreachable);
        }
        self.e2_arm_failback();
        self.d6_evaluate();
    }

    /// S1: `startup.timeout` passed before the agent was watching anywhere.
    pub(crate) fn s1_startup_timeout_fired(&mut self) {
        self.timers.stop(TimerKind::StartupTimeout);
        // Giving up ends the backoff wait too (no other timer changes).
        self.timers.stop(TimerKind::Backoff);
        let timeout = self.cfg.startup_timeout.unwrap_or_default();
        self.decide(Decision::StartupFailed {
            error: format!(
                "no site could be reached within startup.timeout ({}s)",
                timeout.as_secs_f64()
            ),
        });
        self.phase = Phase::GaveUp;
        self.conn.epoch = None;
    }

    /// Routes a command result to the step waiting for it; others are stale.
    pub(crate) fn on_result(&mut self, id: CommandId, result: Result<Reply, String>) {
        if self.phase.pending_command() != Some(id) {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting { site, .. } => self.s1_on_connect_result(site, result),
            Phase::ReadingPerson { .. } => self.s2_on_person_sites(result),
            Phase::ReadingApplication { preferred_app, .. } => {
                self.s3_on_application(&preferred_app, result)
            }
            Phase::KillingFactory { .. } => self.w1_on_factory_killed(result),
            Phase::Subscribing { .. } => self.w2_on_subscribed(result),
            other => self.phase = other,
        }
    }
}

fn unexpected(command: &str, output: &Reply) -> String {
    format!("unexpected answer to {command}: {output:?}")
}

//! Startup: S1 connect (with backoff and `startup.timeout`, both timers armed,
//! cancelled and fired here), S2 Person, S3 both AIL Applications, S4
//! relocation to the preferred site, S5 cached preferred site. Reconnecting
//! after a lost backend session follows the same path, and so does a
//! switchover once the factory is killed: W2 (subscribe), W5 (login) and W4
//! (retries) live here too.
//!
//! S3: Configuration Server is the source of truth. Each site is reached
//! through the CS Proxy and Application its AIL Application names; the local
//! `[[sites]]` only bootstrap S1, and stand in (with an
//! `application-fallback` decision) for an Application that cannot be read.
//! The DR options come from the preferred Application, unless a local
//! `policy.*` key overrides them.

use crate::engine::{
    other, DrOptionSource, DrOptions, Engine, Listeners, PersonApps, Phase, Round, SiteIdx,
    SiteSource, Target,
};
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
        // S3: where the site's Application says it is reached (S1: the local entry).
        let kind = CommandKind::Connect {
            site: self.cfg.sites[site].name.to_string(),
            cs_proxy: self.target_cs_proxy(site).to_owned(),
            app_name: self.target_app_name(site).to_owned(),
            username: self.username().to_owned(),
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
            username: self.username().to_owned(),
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
            let delay = self.backoff_delay();
            self.timers.set(TimerKind::Backoff, self.now + delay);
            self.phase = Phase::Backoff;
        }
    }

    /// S2: the Person object names the preferred and the secondary AIL
    /// Applications; read the preferred one first (S3).
    pub(crate) fn s2_on_person_sites(&mut self, result: Result<Reply, String>) {
        match result {
            Ok(Reply::PersonSites {
                preferred_app,
                secondary_app,
            }) => {
                let cmd = self.command(CommandKind::ReadApplication {
                    app_name: preferred_app.clone(),
                });
                self.phase = Phase::ReadingApplication {
                    cmd,
                    apps: Box::new(PersonApps {
                        preferred: preferred_app,
                        secondary: secondary_app,
                    }),
                };
            }
            _ => self.s3_preferred_unknown(),
        }
    }

    /// S3: the preferred Application names the preferred site, how it is
    /// reached and the DR options; then read the secondary one.
    pub(crate) fn s3_on_application(
        &mut self,
        preferred_app: &str,
        secondary_app: String,
        result: Result<Reply, String>,
    ) {
        let preferred = match result {
            Ok(Reply::Application {
                app_name,
                cs_proxy,
                site_timeout,
                site_sip_register_timeout,
                options,
            }) => {
                let sites = &self.cfg.sites;
                let preferred = sites
                    .iter()
                    .position(|s| s.app_name == preferred_app || s.app_name == app_name)
                    .or_else(|| sites.iter().position(|s| s.cs_proxy == cs_proxy));
                let Some(preferred) = preferred else {
                    return self.s3_preferred_unknown();
                };
                self.s3_set_dr_options(site_timeout, site_sip_register_timeout);
                self.e5_on_application_read(preferred, &options);
                self.set_target(preferred, cs_proxy, app_name, SiteSource::Application);
                preferred
            }
            other => {
                // The Person named it: a local site of that Application
                // stands in, without DR options from Configuration Server.
                let error = failure("read_application", other);
                let Some(preferred) = self
                    .cfg
                    .sites
                    .iter()
                    .position(|s| s.app_name == preferred_app)
                else {
                    return self.s3_preferred_unknown();
                };
                self.s3_set_dr_options(None, None);
                self.s3_fall_back_to_local(preferred, error);
                preferred
            }
        };
        self.learned.preferred = Some(preferred);
        self.clear(Alarm::PreferredSiteUnknown);
        let cmd = self.command(CommandKind::ReadApplication {
            app_name: secondary_app,
        });
        self.phase = Phase::ReadingSecondary {
            cmd,
            site: other(preferred),
        };
    }

    /// S3: the secondary Application names how the other site is reached;
    /// then S4.
    pub(crate) fn s3_on_secondary_application(
        &mut self,
        site: SiteIdx,
        result: Result<Reply, String>,
    ) {
        match result {
            Ok(Reply::Application {
                app_name,
                cs_proxy,
                options,
                ..
            }) => {
                self.e5_on_application_read(site, &options);
                self.set_target(site, cs_proxy, app_name, SiteSource::Application);
            }
            other => {
                let error = failure("read_application", other);
                self.s3_fall_back_to_local(site, error);
            }
        }
        self.s4_relocate_or_watch();
    }

    /// S3: `site`'s Application could not be read: reach it through its
    /// local `[[sites]]` entry, and say so.
    fn s3_fall_back_to_local(&mut self, site: SiteIdx, error: String) {
        self.learned.targets[site] = Target {
            names: None,
            source: SiteSource::Local,
        };
        self.decide(Decision::ApplicationFallback {
            site: self.site_name(site),
            error,
        });
    }

    /// S4: relocate to the preferred site if the agent is not on it, else
    /// watch here (W2); never to a site Configuration Server evacuates (E5).
    fn s4_relocate_or_watch(&mut self) {
        match (self.conn.site, self.learned.preferred) {
            (Some(site), Some(preferred)) if site != preferred && !self.e5_evacuated(preferred) => {
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
        let pick = |local: Option<std::time::Duration>, app: Option<std::time::Duration>| match (
            local, app,
        ) {
            (Some(v), _) => (Some(v), DrOptionSource::LocalOverride),
            (None, Some(v)) => (Some(v), DrOptionSource::Application),
            (None, None) => (None, DrOptionSource::Default),
        };
        let (site_timeout, site_timeout_source) = pick(self.cfg.site_timeout, site_timeout);
        let (sip_register_timeout, sip_register_timeout_source) =
            pick(self.cfg.site_sip_register_timeout, sip_register_timeout);
        self.learned.dr = DrOptions {
            known: true,
            site_timeout,
            sip_register_timeout,
            site_timeout_source,
            sip_register_timeout_source,
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

    /// W2 done: log in (W5) if configured, else the agent is watching.
    pub(crate) fn w2_on_subscribed(&mut self, result: Result<Reply, String>) {
        if let Err(error) = result {
            let site = self.conn.site.unwrap_or(0);
            return self.s1_w4_connect_failed(site, error);
        }
        match (&self.cfg.login, self.conn.epoch) {
            (Some(login), Some(epoch)) => {
                let kind = CommandKind::Login {
                    epoch,
                    dn: login.dn.clone(),
                    queue: login.queue.clone(),
                    workmode: login.workmode.clone(),
                    reasons: login.reasons.clone(),
                };
                let cmd = self.command(kind);
                self.phase = Phase::LoggingIn { cmd };
            }
            _ => self.w2_watching(),
        }
    }

    /// W5: the login's answer; a failed login is a failed switchover (W4)
    /// or, at startup, a failed attempt at that site.
    pub(crate) fn w5_on_login(&mut self, result: Result<Reply, String>) {
        match result {
            Ok(Reply::Done) => self.w2_watching(),
            other => {
                let site = self.conn.site.unwrap_or(0);
                let error = format!("login failed: {}", failure("login", other));
                self.s1_w4_connect_failed(site, error);
            }
        }
    }

    /// W2 (and W5) done: the agent is on a site and watching.
    fn w2_watching(&mut self) {
        self.phase = Phase::Watching;
        self.timers.stop(TimerKind::StartupTimeout);
        let landed = self.switchover.take();
        if let Some(sw) = landed {
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
        self.e2_on_watching(landed);
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
        // E2: a probe is answered whatever the phase.
        if self.e2_is_probe(id) {
            return self.e2_on_probe_result(result);
        }
        if self.phase.pending_command() != Some(id) {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting { site, .. } => self.s1_on_connect_result(site, result),
            Phase::ReadingPerson { .. } => self.s2_on_person_sites(result),
            Phase::ReadingApplication { apps, .. } => {
                let PersonApps {
                    preferred,
                    secondary,
                } = *apps;
                self.s3_on_application(&preferred, secondary, result)
            }
            Phase::ReadingSecondary { site, .. } => self.s3_on_secondary_application(site, result),
            Phase::KillingFactory { .. } => self.w1_on_factory_killed(result),
            Phase::Subscribing { .. } => self.w2_on_subscribed(result),
            Phase::LoggingIn { .. } => self.w5_on_login(result),
            other => self.phase = other,
        }
    }
}

fn unexpected(command: &str, output: &Reply) -> String {
    format!("unexpected answer to {command}: {output:?}")
}

/// Why a command did not give the answer it should: the backend's error,
/// or the unexpected answer.
fn failure(command: &str, result: Result<Reply, String>) -> String {
    match result {
        Ok(reply) => unexpected(command, &reply),
        Err(error) => error,
    }
}

//! E5: directives from Configuration Server, followed live.
//!
//! With `policy.directives` on, the backend reports changes of the agent's
//! Person object and of the AIL Applications (`config_changed`):
//! - the Person's preferred-Application option naming the other site's
//!   Application makes that site preferred; the agent relocates there once
//!   (reason `preferred-changed`; unreachable: it stays, as S4 does);
//! - `evacuate = true` in an Application's DR section evacuates its site:
//!   an agent watching there switches to the other site (reason
//!   `directive`), and no automatic switchover (failback included) goes to
//!   it while the option is set. Clearing it lets E2 bring agents back.
//!
//! Both are automatic switchovers: E4 jitter spreads a fleet's logins, E3
//! pause holds them; E1 hold-down holds a directive (a W4 return to an
//! evacuated origin must not loop), not a relocation.

use crate::engine::{Engine, Phase, SiteIdx};
use drctl_protocol::ConfigObject;

/// E5 state: what Configuration Server said last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    /// Sites whose Application says `evacuate = true`.
    pub evacuated: [bool; 2],
    /// The preferred site changed and the agent has not tried to go there yet.
    pub relocate: bool,
    /// A gate vetoed the directive's switchover: not asked again until
    /// Configuration Server changes something.
    pub vetoed: bool,
}

impl Engine {
    /// E5: one `config_changed` from the backend.
    pub(crate) fn e5_on_config_changed(
        &mut self,
        object: ConfigObject,
        name: &str,
        section: &str,
        option: &str,
        value: Option<&str>,
    ) {
        let Some(names) = &self.cfg.directives else {
            return;
        };
        self.directives.vetoed = false;
        match object {
            ConfigObject::Person
                if name == self.username()
                    && section == names.person_section
                    && option == names.preferred_option =>
            {
                let Some(site) = value.and_then(|app| self.e5_site_of(app)) else {
                    // Not one of the agent's two Applications: S2/S3 at the
                    // next start will read it; nothing to act on now.
                    return;
                };
                if self.learned.preferred == Some(site) {
                    return;
                }
                self.learned.preferred = Some(site);
                self.directives.relocate = true;
                if self.phase == Phase::Watching {
                    // E2 probes the preferred site: that is another one now.
                    self.e2_on_watching(None);
                }
            }
            ConfigObject::Application
                if section == names.application_section && option == names.evacuate_option =>
            {
                let Some(site) = self.e5_site_of(name) else {
                    return;
                };
                let set = value.is_some_and(e5_is_set);
                self.directives.evacuated[site] = set;
            }
            _ => return,
        }
        self.d6_evaluate();
    }

    /// E5 at startup (S3): the options `site`'s Application carries now, so
    /// that an evacuation set while drctl was down is known before S4
    /// relocates (a change after this comes as `config_changed`).
    pub(crate) fn e5_on_application_read(
        &mut self,
        site: SiteIdx,
        options: &std::collections::BTreeMap<String, String>,
    ) {
        let Some(names) = &self.cfg.directives else {
            return;
        };
        let key = format!("{}/{}", names.application_section, names.evacuate_option);
        self.directives.evacuated[site] = options.get(&key).is_some_and(|v| e5_is_set(v));
    }

    /// E5: the site whose AIL Application is `app` (as S3 read it, or as
    /// the local `[[sites]]` name it).
    fn e5_site_of(&self, app: &str) -> Option<SiteIdx> {
        (0..2).find(|&k| self.target_app_name(k) == app || self.cfg.sites[k].app_name == app)
    }

    /// E5: whether automatic switchovers must keep away from `site`.
    pub(crate) fn e5_evacuated(&self, site: SiteIdx) -> bool {
        self.directives.evacuated[site]
    }

    /// E5 for D6: the directive trigger at `site`: leave it if it is
    /// evacuated (and the other is not); else go to a changed preferred site.
    pub(crate) fn e5_due(&self, site: SiteIdx) -> Option<(drctl_protocol::Reason, SiteIdx)> {
        let there = crate::engine::other(site);
        if self.e5_evacuated(site) && !self.e5_evacuated(there) && !self.directives.vetoed {
            return Some((drctl_protocol::Reason::Directive, there));
        }
        let pref = self.learned.preferred?;
        (self.directives.relocate && pref != site && !self.e5_evacuated(pref))
            .then_some((drctl_protocol::Reason::PreferredChanged, pref))
    }

    /// E5: a gate vetoed the switchover: a relocation is dropped (it was
    /// its one try), a directive waits for Configuration Server's next change.
    pub(crate) fn e5_vetoed(&mut self, reason: drctl_protocol::Reason) {
        match reason {
            drctl_protocol::Reason::PreferredChanged => self.directives.relocate = false,
            _ => self.directives.vetoed = true,
        }
    }

    /// E5: a relocation is tried once (as S4's); the agent arrived or W4 took it back.
    pub(crate) fn e5_relocation_started(&mut self) {
        self.directives.relocate = false;
    }
}

/// E5: an evacuate option's value that sets it (`true`, any case).
fn e5_is_set(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

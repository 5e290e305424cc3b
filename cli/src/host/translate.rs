//! Between the engine's types and the plugin wire messages (SPEC §5).

use drctl_plugin_api::messages::{self as wire, Input, Output, Password, Reply};
use drctl_policy::{
    BackendEvent, Command, CommandId, CommandKind, CommandOutput, Event, Listener, Service,
    ServiceStatus,
};

/// An engine command as the wire input for `session`; the host adds the password.
pub fn command_to_input(session: &str, cmd: Command, password: &Password) -> Input {
    let command = match cmd.kind {
        CommandKind::Connect {
            site,
            cs_proxy,
            app_name,
            username,
            on_demand_loading,
        } => wire::Command::Connect {
            site: site.to_string(),
            cs_proxy,
            app_name,
            username,
            password: password.clone(),
            on_demand_loading,
        },
        CommandKind::ReadPersonSites { username } => wire::Command::ReadPersonSites { username },
        CommandKind::ReadApplication { app_name } => wire::Command::ReadApplication { app_name },
        CommandKind::Subscribe { epoch, listeners } => wire::Command::Subscribe {
            epoch,
            listeners: listeners.into_iter().map(listener).collect(),
        },
        CommandKind::KillFactory => wire::Command::KillFactory,
        CommandKind::RelaunchEndpoint => wire::Command::RelaunchEndpoint,
        CommandKind::Shutdown => wire::Command::Shutdown,
    };
    Input::Command {
        session: session.to_owned(),
        id: cmd.id.0,
        command,
    }
}

fn listener(l: Listener) -> wire::Listener {
    match l {
        Listener::Telephony => wire::Listener::Telephony,
        Listener::Configuration => wire::Listener::Configuration,
        Listener::Statistic => wire::Listener::Statistic,
        Listener::Dn => wire::Listener::Dn,
    }
}

/// A backend output as an engine event; `None` for outputs the engine does not take.
pub fn output_to_event(output: Output) -> Option<Event> {
    match output {
        Output::Result { id, result, .. } => Some(Event::CommandResult {
            id: CommandId(id),
            result: result.map(reply).map_err(|e| e.message),
        }),
        Output::Event { epoch, event, .. } => Some(Event::Backend {
            epoch,
            event: backend_event(event),
        }),
        _ => None,
    }
}

fn reply(r: Reply) -> CommandOutput {
    match r {
        Reply::Connected { epoch } => CommandOutput::Connected { epoch },
        Reply::PersonSites {
            preferred_app,
            secondary_app,
        } => CommandOutput::PersonSites {
            preferred_app,
            secondary_app,
        },
        Reply::Application {
            app_name,
            cs_proxy,
            site_timeout,
            site_sip_register_timeout,
        } => CommandOutput::Application {
            app_name,
            cs_proxy,
            site_timeout,
            site_sip_register_timeout,
        },
        Reply::Done => CommandOutput::Done,
    }
}

fn backend_event(e: wire::Event) -> BackendEvent {
    match e {
        wire::Event::ServiceStatus { service, status } => BackendEvent::ServiceStatus {
            service: match service {
                wire::Service::Telephony => Service::Telephony,
                wire::Service::Configuration => Service::Configuration,
                wire::Service::Statistic => Service::Statistic,
            },
            status: match status {
                wire::ServiceState::On => ServiceStatus::On,
                wire::ServiceState::Off => ServiceStatus::Off,
            },
        },
        wire::Event::AgentLogout { dn, reason, .. } => BackendEvent::AgentLogout { dn, reason },
        wire::Event::DnBackInService { dn } => BackendEvent::DnBackInService { dn },
        wire::Event::DnOutOfService { dn } => BackendEvent::DnOutOfService { dn },
        wire::Event::Disconnected => BackendEvent::Disconnected,
    }
}

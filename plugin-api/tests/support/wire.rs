//! Wire messages as the plugin tests write them: the plugin-api tests (as
//! `support::wire`) and the mock and replay plugins' tests (with `#[path]`)
//! build their inputs and expected outputs here, so that the three agree on
//! what a connect or a result looks like.

#![allow(dead_code)]

use drctl_plugin_api::messages::{
    Command, CommandError, Event, Input, Listener, Output, Password, Reply,
};

/// Command `id` from `session`.
pub fn input(session: &str, id: u64, command: Command) -> Input {
    Input::Command {
        session: session.into(),
        id,
        command,
    }
}

/// A connect to `site` at `cs_proxy` (its Application `AIL_<site>`, user
/// `agent`, on-demand loading) with `password`.
pub fn connect(site: &str, cs_proxy: &str, password: &str) -> Command {
    Command::Connect {
        site: site.into(),
        cs_proxy: cs_proxy.into(),
        app_name: format!("AIL_{site}"),
        username: "agent".into(),
        password: Password::new(password),
        on_demand_loading: true,
    }
}

/// A subscribe on connection `epoch` to `listeners`.
pub fn subscribe(epoch: u64, listeners: Vec<Listener>) -> Command {
    Command::Subscribe { epoch, listeners }
}

/// A read of the AIL Application `app_name`.
pub fn read_application(app_name: &str) -> Command {
    Command::ReadApplication {
        app_name: app_name.into(),
    }
}

/// The answer to `session`'s command `id`.
pub fn result(session: &str, id: u64, result: Result<Reply, CommandError>) -> Output {
    Output::Result {
        session: session.into(),
        id,
        result,
    }
}

/// An event to `session` on connection `epoch`.
pub fn event(session: &str, epoch: u64, event: Event) -> Output {
    Output::Event {
        session: session.into(),
        epoch,
        event,
    }
}

//! What the commands do, one function each, below their flag parsing
//! (`commands/`): agents and engine config, backends, a prepared session,
//! and the runs of `startup`, `watch`, `switch`, `replay` and `simulate`.

pub mod agents;
pub mod backend;
pub mod cache;
pub mod check;
pub mod explore;
pub mod inject;
pub mod replay;
pub mod session;
pub mod simulate;
pub mod switch;
pub mod watch;

use crate::args::{GlobalArgs, SessionArgs};
use crate::exit::CliError;
use crate::ops::agents::SessionKind;
use drctl_policy::View;

/// `drctl startup`: S1-S4 once; the engine's view at the end.
pub fn startup(global: &GlobalArgs, args: &SessionArgs) -> Result<View, CliError> {
    let mut prepared = session::prepare(
        global,
        args,
        SessionKind::Startup,
        Box::new(std::io::stdout()),
    )?;
    let s = &mut prepared.session;
    let view = session::start_up(s)?;
    s.shutdown().map_err(CliError::failed)?;
    Ok(view)
}

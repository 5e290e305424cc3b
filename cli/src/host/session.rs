//! One session on the host loop: the runtime, the stop signals, the start
//! and the shutdown that `watch`, `startup`, `switch`, `replay` and
//! `simulate` share.

use crate::host::signal::stop_on_signal;
use crate::host::{Backend, Host, HostError, Stop, StopFuture};
use drctl_policy::{Event, Timestamp};
use std::future::Future;

/// A host loop on its single-threaded runtime, stopping on a signal.
pub struct Session<B: Backend> {
    rt: tokio::runtime::Runtime,
    stop: StopFuture<'static>,
    /// The host loop.
    pub host: Host<B>,
}

impl<B: Backend> Session<B> {
    /// `host` on a new runtime, with the signal handlers installed at once (a
    /// signal from then on stops the session cleanly, never by default death).
    pub fn new(host: Host<B>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stop = {
            let _inside = rt.enter();
            stop_on_signal()
        };
        Ok(Session { rt, stop, host })
    }

    /// Runs `future` on the session's runtime (setup that needs it, a drain at the end).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// Spawns `future` on the session's runtime (a server beside the loop).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(future)
    }

    /// Starts every agent.
    pub fn start(&mut self) -> Result<(), HostError> {
        let _inside = self.rt.enter();
        self.host.start_clock();
        self.host.inject_all(Event::Start)
    }

    /// Runs the loop until `done` holds, `end` is reached, a signal comes or
    /// (virtual clock) nothing more can happen.
    pub fn run(
        &mut self,
        end: Option<Timestamp>,
        done: impl FnMut(&Host<B>) -> bool,
    ) -> Result<Stop, HostError> {
        self.rt.block_on(self.host.run(end, &mut self.stop, done))
    }

    /// Feeds `event` to agent `i`'s engine now.
    pub fn inject(&mut self, i: usize, event: Event) -> Result<(), HostError> {
        let _inside = self.rt.enter();
        self.host.inject(i, event)
    }

    /// Feeds `event` to every agent's engine now.
    pub fn inject_all(&mut self, event: Event) -> Result<(), HostError> {
        let _inside = self.rt.enter();
        self.host.inject_all(event)
    }

    /// Stops every agent cleanly and closes the observers.
    pub fn shutdown(&mut self) -> Result<(), HostError> {
        let _inside = self.rt.enter();
        self.host.shutdown()
    }
}

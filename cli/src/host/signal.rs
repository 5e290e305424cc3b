//! Stopping a session on a signal: SIGINT, SIGTERM or SIGHUP.

/// A stop future for [`Host::run`](crate::host::Host::run): SIGINT, SIGTERM
/// or SIGHUP (a closed terminal or ssh session stops as cleanly as SIGTERM).
/// Call it inside the runtime: the handlers are installed at once, so a
/// signal from then on is never the default (death without a clean stop).
pub fn stop_on_signal() -> super::StopFuture<'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, number: i32| match signal(kind) {
        Ok(stream) => Some((stream, number)),
        Err(e) => {
            tracing::warn!("cannot handle {}: {e}", signal_name(number));
            None
        }
    };
    let streams = [
        install(SignalKind::interrupt(), libc::SIGINT),
        install(SignalKind::terminate(), libc::SIGTERM),
        install(SignalKind::hangup(), libc::SIGHUP),
    ];
    Box::pin(shutdown_signal(streams))
}

/// The signal that stopped the session, once one did.
pub fn received_signal() -> Option<i32> {
    match RECEIVED.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// A signal's name, for messages.
pub fn signal_name(number: i32) -> &'static str {
    match number {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The signal [`stop_on_signal`] saw (0: none yet).
static RECEIVED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Resolves on the first of `streams` to deliver, noting which.
async fn shutdown_signal(streams: [Option<(tokio::signal::unix::Signal, i32)>; 3]) {
    async fn next(stream: Option<(tokio::signal::unix::Signal, i32)>) -> i32 {
        match stream {
            Some((mut s, number)) => {
                // `None`: no more signals can come; wait for the others.
                match s.recv().await {
                    Some(()) => number,
                    None => std::future::pending().await,
                }
            }
            None => std::future::pending().await,
        }
    }
    let [a, b, c] = streams;
    let number = tokio::select! {
        n = next(a) => n,
        n = next(b) => n,
        n = next(c) => n,
    };
    tracing::info!("{} received: stopping", signal_name(number));
    RECEIVED.store(number, std::sync::atomic::Ordering::Relaxed);
}

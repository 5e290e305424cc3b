//! The metrics endpoint's HTTP server: a read-only `GET /metrics`, with a
//! bound on connections and on how long each may last, so that idle or slow
//! clients can neither exhaust the watcher's file descriptors nor hold it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest a connection lives, whatever it does (a slow reader of the
/// response, a keep-alive client): scrapers reconnect, nobody holds a slot.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The endpoint's bounds (`metrics.max-connections`, `metrics.header-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, or stay idle.
    pub header_timeout: Duration,
}

impl Limits {
    /// The limits of `[metrics]`.
    pub fn of(cfg: &drctl_config::MetricsConfig) -> Limits {
        Limits {
            max_connections: usize::try_from(cfg.max_connections).unwrap_or(usize::MAX),
            header_timeout: cfg.header_timeout,
        }
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused: u64 = 0;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Closed at once: its descriptor is free again before the next accept.
            drop(stream);
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    "metrics endpoint: {} connections open (metrics.max-connections); \
                     {refused} refused so far",
                    limits.max_connections
                );
            }
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &registry)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // The header timeout runs from the first poll for a request head,
            // so it also ends a connection that never sends one (slowloris, idle).
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service);
            match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("metrics connection: {e}"),
                Err(_) => tracing::debug!("metrics connection: closed after its lifetime"),
            }
        });
    }
}

/// The response to one request: the metrics, or why not.
fn respond<B>(req: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status, content_type, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != hyper::Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "read-only: GET /metrics\n".to_owned(),
        );
    }
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "GET /metrics\n".to_owned(),
        );
    }
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body,
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("encoding metrics: {e}\n"),
        ),
    }
}

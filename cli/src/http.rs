//! The metrics endpoint's HTTP server: read-only `GET`/`HEAD` of `/metrics`,
//! `/livez` and `/readyz`, with a bound on connections and on how long each
//! may last, so that idle or slow clients can neither exhaust the watcher's
//! file descriptors nor hold it.
//!
//! - `/metrics`: OpenMetrics, or the Prometheus text format 0.0.4 when the
//!   `Accept` header prefers `text/plain` (what `promtool check metrics` and
//!   older scrapers read);
//! - `/livez`: 200 while the watcher's loop serves requests at all (this
//!   server runs on the loop's own thread: a wedged loop answers nothing);
//! - `/readyz`: 200 when the agent is connected with its listeners
//!   subscribed (watching), 503 otherwise (starting up, switching sites);
//! - `/events[?agent=NAME]`: the live event stream as Server-Sent Events
//!   (`event: decision`, `event: shadow-divergence`, `event: dropped`, each
//!   with its JSON object as `data`), the recent events first; at most
//!   [`crate::events::MAX_CLIENTS`] clients (with `drctl events`), a
//!   `: keep-alive` comment every [`KEEP_ALIVE`]; such a connection is not
//!   cut after [`CONNECTION_LIFETIME`];
//! - any other method: 405 with `Allow: GET, HEAD`; any other path: 404.

use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The longest a connection lives, whatever it does (a slow reader of the
/// response, a keep-alive client): scrapers reconnect, nobody holds a slot.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The OpenMetrics content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How often an idle event stream sends a comment: proxies keep it open, and
/// a client that left is noticed (its slot freed) within this long.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A response: a whole body, or the event stream.
type Body = Either<Full<Bytes>, Channel<Bytes, Infallible>>;

/// The methods every path answers.
const ALLOWED: &str = "GET, HEAD";

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

/// Whether the watcher is ready, and what it is doing: kept by the metrics
/// observer in the loop, read by `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<(bool, String)>,
}

impl Health {
    /// Records readiness and a short description (`watching on site1`).
    pub fn set_ready(&self, ready: bool, what: String) {
        if let Ok(mut state) = self.state.lock() {
            *state = (ready, what);
        }
    }

    /// Readiness and its description; `starting` before the loop's first look.
    fn get(&self) -> (bool, String) {
        match self.state.lock() {
            Ok(state) if !state.1.is_empty() => state.clone(),
            _ => (false, "starting".to_owned()),
        }
    }
}

/// What the endpoint serves.
#[derive(Clone)]
pub struct Endpoint {
    /// The metrics.
    pub registry: Arc<Registry>,
    /// Readiness.
    pub health: Arc<Health>,
    /// The event stream (`GET /events`), when the watcher publishes one.
    pub events: Option<Arc<crate::events::Hub>>,
}

/// Serves `endpoint` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, endpoint: Endpoint, limits: Limits) {
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
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let streaming = Arc::new(AtomicBool::new(false));
            let streams = streaming.clone();
            let service = hyper::service::service_fn(move |req| {
                let endpoint = endpoint.clone();
                let streams = streams.clone();
                async move { Ok::<_, Infallible>(respond(&req, &endpoint, &streams)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // The header timeout runs from the first poll for a request head,
            // so it also ends a connection that never sends one (slowloris, idle).
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            let done = match tokio::time::timeout(CONNECTION_LIFETIME, connection.as_mut()).await {
                Ok(done) => done,
                // An event stream lives as long as its client reads (bounded
                // by the event clients' limit, not by time).
                Err(_) if streaming.load(Ordering::Relaxed) => connection.await,
                Err(_) => {
                    tracing::debug!("metrics connection: closed after its lifetime");
                    return;
                }
            };
            if let Err(e) = done {
                tracing::debug!("metrics connection: {e}");
            }
        });
    }
}

/// A response with `status`, `content_type` and `body` (hyper leaves the
/// body out for a HEAD request, keeping its length).
fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

/// The response to one request.
fn respond<B>(req: &Request<B>, endpoint: &Endpoint, streaming: &AtomicBool) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            format!("read-only: {ALLOWED}\n"),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(ALLOWED));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            metrics(&endpoint.registry, negotiate(accept))
        }
        "/livez" => reply(StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/events" => match &endpoint.events {
            Some(hub) => events(hub, req.uri().query(), streaming),
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: this watcher publishes no event stream\n".to_owned(),
            ),
        },
        "/readyz" => match endpoint.health.get() {
            (true, what) => reply(StatusCode::OK, "text/plain", format!("ready: {what}\n")),
            (false, what) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {what}\n"),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /livez, /readyz, /events\n".to_owned(),
        ),
    }
}

/// The exposition formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// OpenMetrics 1.0.0 (the default).
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
}

/// The format `Accept` prefers: text 0.0.4 when `text/plain` (without a
/// version, or 0.0.4) has a higher quality than OpenMetrics, else OpenMetrics
/// (also for no header, `*/*`, or nothing we serve).
fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::OpenMetrics;
    };
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for media in mediatype::MediaTypeList::new(accept).filter_map(Result::ok) {
        let param = |name: &str| {
            media
                .params
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.unquoted_str().into_owned())
        };
        let q = match param("q") {
            Some(q) => q.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0),
            None => 1.0,
        };
        let (ty, sub) = (media.ty.as_str(), media.subty.as_str());
        if ty.eq_ignore_ascii_case("application") && sub.eq_ignore_ascii_case("openmetrics-text") {
            openmetrics = openmetrics.max(q);
        } else if ty.eq_ignore_ascii_case("text")
            && sub.eq_ignore_ascii_case("plain")
            && param("version").is_none_or(|v| v == "0.0.4")
        {
            text = text.max(q);
        }
    }
    if text > openmetrics {
        Format::Text
    } else {
        Format::OpenMetrics
    }
}

/// `/events[?agent=NAME]`: a client of the hub, fed to the response body by
/// a task of its own (the loop only ever queues; the client's queue drops).
fn events(hub: &crate::events::Hub, query: Option<&str>, streaming: &AtomicBool) -> Response<Body> {
    use crate::events::SubscribeError;
    let agent = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "agent")
            .map(|(_, v)| v.into_owned())
    });
    let sub = match hub.subscribe(agent.as_deref(), true) {
        Ok(sub) => sub,
        Err(e) => {
            let status = match e {
                SubscribeError::UnknownAgent { .. } => StatusCode::NOT_FOUND,
                SubscribeError::Busy | SubscribeError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            };
            return reply(status, "text/plain", format!("{e}\n"));
        }
    };
    streaming.store(true, Ordering::Relaxed);
    // One frame in flight: the client's queue in the hub is the buffer.
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(1);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = sub.next() => next,
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send_data(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let (Some(kind), Some(json)) = (next.kind(), next.json()) else {
                // The watcher stopped: the response ends.
                return;
            };
            // The JSON is one line: one `data:` field.
            let frame = format!("event: {kind}\ndata: {json}\n\n");
            if tx.send_data(Bytes::from(frame)).await.is_err() {
                // The client left: dropping `sub` frees its slot.
                return;
            }
        }
    });
    let mut r = Response::new(Either::Right(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `/metrics` in `format`.
fn metrics(registry: &Registry, format: Format) -> Response<Body> {
    let mut body = String::new();
    let (encoded, content_type) = match format {
        Format::OpenMetrics => (
            prometheus_client::encoding::text::encode(&mut body, registry),
            OPENMETRICS,
        ),
        Format::Text => (
            prometheus_client::encoding::prometheus_text::encode(&mut body, registry),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        ),
    };
    match encoded {
        Ok(()) => reply(StatusCode::OK, content_type, body),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("encoding metrics: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_text_only_when_it_is_preferred() {
        let om = Format::OpenMetrics;
        for (accept, want) in [
            (None, om),
            (Some("*/*"), om),
            (Some("application/json"), om),
            (Some("text/plain"), Format::Text),
            (Some("text/plain; version=0.0.4"), Format::Text),
            (Some("text/plain;version=1.0.0"), om),
            (Some("text/plain;version=0.0.4;q=0"), om),
            // Prometheus 2.x scrapes.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                om,
            ),
            // Prometheus configured for the classic format first.
            (
                Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
                Format::Text,
            ),
            (Some("application/openmetrics-text, text/plain"), om),
            (Some("not a media type, text/plain"), Format::Text),
        ] {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
    }
}

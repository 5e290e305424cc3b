//! Webhook sinks: an HTTP POST of the notification, with a timeout per
//! attempt and retries. Redirects are not followed (a 3xx is a failed
//! delivery naming its `Location`): a redirect to another host must not
//! receive the notification, nor count as delivered.

use drctl_config::{redact_url, SinkConfig, SinkUrl};
use serde::Serialize;
use std::time::Duration;

/// One webhook sink.
pub(super) struct Webhook {
    client: reqwest::Client,
    /// The whole URL, credentials included: only for the request.
    url: String,
    /// The URL as logs show it.
    shown: String,
    retries: u32,
    backoff: Duration,
}

/// Why one attempt failed, and whether trying again can help.
struct Failure {
    why: String,
    retry: bool,
}

impl Webhook {
    /// The sink's client (no redirects, `timeout` per attempt).
    pub(super) fn new(sink: &SinkConfig) -> anyhow::Result<Webhook> {
        Webhook::to(sink, &sink.url.clone().unwrap_or_default())
    }

    /// A client with `sink`'s settings that posts to `url` instead of the
    /// sink's own (the alertmanager sink's API endpoint).
    pub(super) fn to(sink: &SinkConfig, url: &SinkUrl) -> anyhow::Result<Webhook> {
        Ok(Webhook {
            client: reqwest::Client::builder()
                .timeout(sink.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
                .build()?,
            url: url.expose().to_owned(),
            shown: url.to_string(),
            retries: sink.retries,
            backoff: sink.retry_backoff,
        })
    }

    /// Sends `body` as JSON, retrying with a doubling backoff; the error says
    /// why the last attempt failed.
    pub(super) async fn deliver<T: Serialize + ?Sized>(&self, body: &T) -> anyhow::Result<()> {
        let mut delay = self.backoff;
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(body).await {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            if attempt >= self.retries || !failure.retry {
                anyhow::bail!("{} (after {} attempt(s))", failure.why, attempt + 1);
            }
            attempt += 1;
            tracing::debug!(
                "alarm webhook {}: {}; retry {attempt} in {delay:?}",
                self.shown,
                failure.why
            );
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    /// Sends `body` once, without retrying (the caller tries again later).
    pub(super) async fn send_once<T: Serialize + ?Sized>(&self, body: &T) -> anyhow::Result<()> {
        self.attempt(body).await.map_err(|f| anyhow::anyhow!(f.why))
    }

    async fn attempt<T: Serialize + ?Sized>(&self, body: &T) -> Result<(), Failure> {
        let response = match self.client.post(&self.url).json(body).send().await {
            Ok(r) => r,
            // The error's own URL would carry the credentials: drop it.
            Err(e) => {
                return Err(Failure {
                    why: format!("{:#}", anyhow::Error::new(e.without_url())),
                    retry: true,
                })
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| {
                    // Bounded: a header can be long; the start names the target.
                    let l: String = String::from_utf8_lossy(l.as_bytes())
                        .chars()
                        .take(256)
                        .collect();
                    redact_url(&l)
                })
                .unwrap_or_else(|| "no Location".to_owned());
            // The same request gets the same answer: no retry.
            return Err(Failure {
                why: format!("HTTP {status}: redirect to {location} not followed"),
                retry: false,
            });
        }
        Err(Failure {
            why: format!("HTTP {status}"),
            retry: true,
        })
    }
}

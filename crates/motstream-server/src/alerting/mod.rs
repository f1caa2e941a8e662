//! The alert engine in the service: evaluates every rule on a tick from the aggregator
//! ([`engine_task`]), publishes each transition into the [`crate::alert_feed::AlertFeed`], and
//! hands the fired ones to the receivers — Alertmanager ([`alertmanager`]), a generic JSON
//! webhook ([`webhook`]) and the alerts topic ([`kafka`]) — through bounded queues, so a slow
//! or dead receiver costs dropped deliveries (logged), never a stalled tick or ingest.

pub mod alertmanager;
pub mod config;
pub mod deliverer;
pub mod engine_task;
pub mod kafka;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::warn;

use crate::alert_feed::{AlertFeed, AlertTransition};

pub use engine_task::{AlertEngine, start};

/// One queue per configured receiver.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub queues: Vec<(&'static str, mpsc::Sender<Arc<AlertTransition>>)>,
}

/// Queue length per receiver: beyond it, transitions for that receiver are dropped.
pub const QUEUE: usize = 1_024;

impl Sinks {
    /// Offers a transition to every receiver without waiting.
    /// Offers a transition to the one receiver named `receiver`, if configured.
    pub fn offer_to(&self, receiver: &str, o: &Arc<AlertTransition>) {
        for (name, q) in self.queues.iter().filter(|(n, _)| *n == receiver) {
            if let Err(e) = q.try_send(Arc::clone(o)) {
                warn!(receiver = name, alert = %o.alert_id, state = %o.state, error = %e, "alert delivery dropped: receiver queue full or closed");
            }
        }
    }

    pub fn offer(&self, o: &Arc<AlertTransition>) {
        for (name, q) in &self.queues {
            if let Err(e) = q.try_send(Arc::clone(o)) {
                warn!(receiver = name, alert = %o.alert_id, state = %o.state, error = %e, "alert delivery dropped: receiver queue full or closed");
            }
        }
    }
}

/// Retries `attempt` up to `tries` times with doubling backoff from `first`, each attempt
/// bounded by the caller (the HTTP client's timeout). Returns the last error.
pub async fn with_retries<F, Fut>(tries: u32, first: Duration, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut backoff = first;
    let mut last = String::new();
    for i in 0..tries.max(1) {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if i + 1 < tries {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
    Err(last)
}

/// Sends one request; a non-2xx status is an error too.
pub async fn post(req: reqwest::RequestBuilder) -> Result<(), String> {
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// The HTTP client every receiver shares: short timeouts, so a dead receiver ties up a
/// delivery task for seconds, not minutes.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("building the alert HTTP client: {e}"))
}

fn transition_json(t: &AlertTransition) -> Value {
    json!({
        "alert_id": t.alert_id,
        "alertname": t.alertname(),
        "severity": t.severity(),
        "experience": t.experience_id(),
        "mot": t.mot_id(),
        "owner": t.owner(),
        "team": t.team(),
        "state": t.state.as_str(),
        "at_ms": t.at_ms,
        "annotations": t.annotations,
    })
}

/// The `alerts` object of `/status`: active alerts and the newest transitions.
pub fn status_json(feed: &AlertFeed) -> Value {
    json!({
        "deliverer": feed.is_deliverer(),
        "active": feed.active().iter().map(|t| transition_json(t)).collect::<Vec<_>>(),
        "recent": feed.history(100, |_| true).iter().map(|t| transition_json(t)).collect::<Vec<_>>(),
    })
}

/// What `catalog check` says about the alert policy: every threshold a low target made
/// unreachable and what applies instead (empty when none).
pub fn catalog_notes(c: &motstream_core::Catalog) -> String {
    let notes = motstream_alert::Policy::compile(c).capped_notes(c);
    if notes.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nalert thresholds capped for low targets (a MOT with target t burns at most \
         1 / (1 - t); the engine applies min(factor, {} / (1 - t)) so that every rule can fire):\n",
        motstream_alert::LOW_TARGET_CAP
    );
    for n in notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

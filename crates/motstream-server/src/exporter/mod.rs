//! Prometheus `/metrics`, served on the HTTP server (`metrics_listen`), apart from gRPC.
//!
//! Two sources, one page. The ingest loop's own counters, gauges and batch-time histogram
//! go through the `metrics` facade into the process's one `metrics-exporter-prometheus`
//! recorder (installed by [`recorder`]) and are rendered by its handle. Everything per MOT or
//! per experience is derived from the aggregator when scraped ([`mots`]): no metrics call runs
//! per event, so the hot path pays only the live counters the aggregator keeps for monotonic
//! counters (a few relaxed stores per event; `exporter = false` turns those off too).

mod mots;
mod pipeline;
mod text;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use motstream_ingest::Health;

use crate::alert_feed::AlertFeed;
use crate::state::AggregatorState;

/// The windows of the per-window gauges: those of the catalog's burn-rate rule pairs. Windows
/// longer than the configured retention are left out.
pub const WINDOWS: [(&str, u64); 7] = [
    ("5m", 300_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("3d", 259_200_000),
];

/// Buckets of `motstream_ingest_batch_apply_seconds` (and of any other facade histogram, so
/// that none is rendered as a summary): 0.1 ms to 10 s.
const BATCH_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// Facade gauges not updated for this long leave the page: the lag and rebuild gauges of a
/// partition that was revoked.
const IDLE_GAUGE: Duration = Duration::from_secs(300);

/// The process's recorder handle. A mutex, not a `OnceLock`: installing can fail, and a
/// global recorder can be set only once per process, so the check and the install must be one
/// step even when two services start at once (tests).
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the Prometheus recorder as the process's `metrics` recorder, once, and returns
/// its handle (the same one on every call).
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    let mut h = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(h) = &*h {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&BATCH_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("motstream_ingest_batch_apply_seconds".into()),
                &BATCH_BUCKETS,
            )
        })
        .map(|b| b.idle_timeout(MetricKindMask::GAUGE, Some(IDLE_GAUGE)))
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| anyhow::anyhow!("installing the Prometheus metrics recorder: {e}"))?;
    motstream_ingest::register_metrics();
    *h = Some(handle.clone());
    Ok(handle)
}

/// Renders the whole /metrics page.
#[derive(Debug)]
pub struct Exporter {
    handle: PrometheusHandle,
    state: Arc<AggregatorState>,
    alerts: Arc<AlertFeed>,
    health: Arc<Health>,
    windows: Vec<(&'static str, u64)>,
}

impl Exporter {
    /// An exporter of `state`, with per-window gauges for the [`WINDOWS`] within `retention`.
    pub fn new(
        handle: PrometheusHandle,
        state: Arc<AggregatorState>,
        alerts: Arc<AlertFeed>,
        health: Arc<Health>,
        retention: Duration,
    ) -> Self {
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        let windows = WINDOWS
            .iter()
            .copied()
            .filter(|(_, ms)| *ms <= retention_ms)
            .collect();
        Self {
            handle,
            state,
            alerts,
            health,
            windows,
        }
    }

    /// The page in Prometheus text format, as of `now_ms`. Reads every partition once per
    /// window: scrape-time work, proportional to MOTs × partitions × buckets, never to events.
    pub fn render(&self, now_ms: i64) -> String {
        // Upkeep drains the facade's histogram buffers and expires idle gauges; without a
        // background task it runs here, once per scrape.
        self.handle.run_upkeep();
        let mut t = text::Text {
            out: self.handle.render(),
        };
        let statuses: Vec<_> = self
            .windows
            .iter()
            .filter_map(|&(w, ms)| self.state.agg.status_all(ms, now_ms).ok().map(|s| (w, s)))
            .collect();
        mots::render(&mut t, &self.state, &self.alerts, &statuses, now_ms);
        pipeline::render(&mut t, &self.state, &self.health);
        t.out
    }
}

async fn metrics(State(e): State<Arc<Exporter>>) -> Response {
    // Rendering reads every partition: off the async workers.
    match tokio::task::spawn_blocking(move || e.render(crate::now_ms())).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering /metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response()
        }
    }
}

/// The `/metrics` route, to merge into the HTTP server.
pub fn router(exporter: Arc<Exporter>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(exporter)
}

#[cfg(test)]
mod tests;

//! The HTTP side: liveness, readiness and a JSON status view, on 127.0.0.1 by default.
//!
//! `/healthz` answers 200 while ingest runs; `/readyz` answers 200 only when every assigned
//! partition is live (not rebuilding or paused), the broker answers and the group membership
//! is settled, else 503 with the reasons; both bodies say how many partitions the instance
//! holds and note when it holds none; `/status?window=5m` is the aggregator's status of every
//! MOT and experience.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use motstream_ingest::Health;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the status endpoint shows: the aggregator's views, as JSON.
pub trait StatusSource: Send + Sync + 'static {
    /// Every MOT's and experience's status over the last `window`, ending now (the answer's
    /// `now_ms`). `Err` names the problem with the window (for a 400 response). May block for
    /// tens of milliseconds: called on the blocking pool.
    fn status(&self, window: Duration) -> Result<Value, String>;
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    status: Arc<dyn StatusSource>,
    rendered: Arc<Rendered>,
}

/// The `/status` bodies, by window, each reused for [`crate::state::reuse_for`] its rendering.
/// At 1,000 MOTs a body is about a megabyte of JSON: building and serialising it per request cost ingest
/// two thirds of its rate with 64 dashboards polling (benches/queries.rs), while the status
/// beneath it is shared anyway. The lock is held while a missing body is rendered, so callers
/// who miss together wait for one rendering.
#[derive(Default)]
struct Rendered {
    bodies: std::sync::Mutex<std::collections::HashMap<u64, Body>>,
}

struct Body {
    /// Until when it is served.
    until: std::time::Instant,
    bytes: axum::body::Bytes,
}

/// Windows kept at once; past it the cache starts again (windows come from requests).
const RENDERED_WINDOWS: usize = 16;

impl Rendered {
    fn get_or_render(
        &self,
        window: Duration,
        render: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<axum::body::Bytes, String> {
        let key = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let mut bodies = self
            .bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = std::time::Instant::now();
        if let Some(b) = bodies.get(&key)
            && started < b.until
        {
            return Ok(b.bytes.clone());
        }
        let bytes = axum::body::Bytes::from(render()?);
        if bodies.len() >= RENDERED_WINDOWS {
            bodies.clear();
        }
        bodies.insert(
            key,
            Body {
                until: crate::state::served_until(started),
                bytes: bytes.clone(),
            },
        );
        Ok(bytes)
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    window: Option<String>,
}

async fn healthz(State(s): State<AppState>) -> Response {
    let r = s.health.report();
    let code = if r.live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let r = s.health.report();
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

async fn status(State(s): State<AppState>, Query(q): Query<StatusQuery>) -> Response {
    let text = q.window.unwrap_or_else(|| "5m".to_owned());
    let window = match humantime::parse_duration(&text) {
        Ok(w) if !w.is_zero() => w,
        _ => {
            let body =
                json!({ "error": format!("window: {text:?} is not a duration such as 5m or 1h") });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    // On the blocking pool: every MOT's status takes tens of milliseconds at 1,000 MOTs, and a
    // burst of dashboard polls must not hold the async workers.
    let (source, health, rendered) = (
        Arc::clone(&s.status),
        Arc::clone(&s.health),
        Arc::clone(&s.rendered),
    );
    let answer = tokio::task::spawn_blocking(move || {
        rendered.get_or_render(window, || {
            let mut v = source.status(window)?;
            v["health"] = serde_json::to_value(health.report()).unwrap_or(Value::Null);
            serde_json::to_vec(&v).map_err(|e| e.to_string())
        })
    })
    .await;
    let answer = answer.unwrap_or_else(|e| Err(format!("the status read failed: {e}")));
    match answer {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    }
}

/// Binds `addr` and serves, with `extra` routes (e.g. the exporter's `/metrics`) on the same
/// listener, until `shutdown` resolves. Returns the bound address (useful with port 0) and the
/// server task.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    status_source: Arc<dyn StatusSource>,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(AppState {
            health,
            status: status_source,
            rendered: Arc::default(),
        })
        .merge(extra);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the HTTP server to {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok((bound, task))
}

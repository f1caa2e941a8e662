//! The motstream dashboard: a page for browsers served by the service itself, on its HTTP
//! port at `/`, with its data under `/api/` and live updates as Server-Sent Events.
//!
//! **Owns:** the embedded assets (HTML, CSS, JavaScript and the vendored uPlot chart library,
//! compiled in with `include_bytes!`), the routes that serve them, the access check (the
//! service's token, when it has one), the security headers, and the once-a-second status feed
//! shared by every connected browser.
//!
//! **Must never:** compute a number itself (every number comes from [`DashboardSource`], the
//! service's own status function), change anything (every route is a read), depend on the
//! service crate, or fetch anything from the network.
//!
//! Routes: `/` (the page), `/assets/{path}` (embedded files, open: they hold no data),
//! `/api/catalog`, `/api/status?window=5m`, `/api/series?mot=ID&window=5m&points=120` and
//! `/api/events?window=5m` (`text/event-stream`, an `event: status` with the status document
//! every second).

mod assets;
mod auth;
mod headers;
mod live;
mod source;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

pub use source::{DashboardSource, DataError};

/// The dashboard's settings.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// When set, the page and its data need this token (the gRPC bearer token).
    pub token: Option<Arc<str>>,
}

/// Most points a series may ask for.
const MAX_POINTS: usize = 1_000;

#[derive(Clone)]
struct AppState {
    source: Arc<dyn DashboardSource>,
    hub: Arc<live::Hub>,
}

#[derive(Deserialize)]
struct WindowQuery {
    window: Option<String>,
}

#[derive(Deserialize)]
struct SeriesQuery {
    mot: Option<String>,
    window: Option<String>,
    points: Option<usize>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn window(text: Option<&str>) -> Result<Duration, DataError> {
    let text = text.unwrap_or("5m");
    match humantime::parse_duration(text) {
        Ok(w) if !w.is_zero() => Ok(w),
        _ => Err(DataError::BadRequest(format!(
            "window: {text:?} is not a duration such as 5m or 1h"
        ))),
    }
}

fn error(e: &DataError) -> Response {
    let code = match e {
        DataError::BadRequest(_) => StatusCode::BAD_REQUEST,
        DataError::NotFound(_) => StatusCode::NOT_FOUND,
    };
    (code, axum::Json(json!({ "error": e.to_string() }))).into_response()
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        assets::INDEX,
    )
        .into_response()
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match assets::find(&path) {
        Some(a) => {
            let mut r = ([(header::CONTENT_TYPE, a.mime)], a.body).into_response();
            // Revalidated on each load: the files change with the binary, not their names.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Runs a read of the source on the blocking pool: the source may take tens of milliseconds
/// (or wait for another caller's computation of the shared status), which must not hold an
/// async worker.
async fn blocking<T: Send + 'static>(
    source: &Arc<dyn DashboardSource>,
    read: impl FnOnce(&dyn DashboardSource) -> Result<T, DataError> + Send + 'static,
) -> Result<T, Response> {
    let source = Arc::clone(source);
    match tokio::task::spawn_blocking(move || read(&*source)).await {
        Ok(r) => r.map_err(|e| error(&e)),
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({ "error": format!("the read failed: {e}") })),
        )
            .into_response()),
    }
}

async fn catalog(State(s): State<AppState>) -> Response {
    match blocking(&s.source, |src| Ok(src.catalog())).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

async fn status(State(s): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    let w = match window(q.window.as_deref()) {
        Ok(w) => w,
        Err(e) => return error(&e),
    };
    match blocking(&s.source, move |src| src.status(w)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

async fn series(State(s): State<AppState>, Query(q): Query<SeriesQuery>) -> Response {
    let Some(mot) = q.mot.filter(|m| !m.is_empty()) else {
        return error(&DataError::BadRequest("mot: missing".into()));
    };
    let points = q.points.unwrap_or(120).clamp(1, MAX_POINTS);
    let w = match window(q.window.as_deref()) {
        Ok(w) => w,
        Err(e) => return error(&e),
    };
    match blocking(&s.source, move |src| src.series(&mot, w, points, now_ms())).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

async fn events(State(s): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    let w = match window(q.window.as_deref()) {
        Ok(w) => w,
        Err(e) => return error(&e),
    };
    // Checked once here, so that a window the status refuses is a 400, not a stream of errors.
    if let Err(r) = blocking(&s.source, move |src| src.status(w).map(drop)).await {
        return r;
    }
    let rx = match s.hub.subscribe(w) {
        Ok(rx) => rx,
        Err(e) => {
            let mut r = error(&e);
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
    };
    let stream = WatchStream::new(rx).filter_map(|snap| {
        let ev = match snap? {
            Ok(text) => Event::default().event("status").data(&*text),
            Err(e) => Event::default().event("problem").data(
                serde_json::to_string(&json!({ "error": e })).unwrap_or_else(|_| "{}".into()),
            ),
        };
        Some(Ok::<_, Infallible>(ev))
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies that buffer would hold the updates back.
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// The dashboard's routes, to merge into the service's HTTP router.
pub fn router(source: Arc<dyn DashboardSource>, cfg: WebConfig) -> Router {
    let hub = Arc::new(live::Hub::new(Arc::clone(&source)));
    let state = AppState { source, hub };
    let guarded = Router::new()
        .route("/", get(index))
        .route("/api/catalog", get(catalog))
        .route("/api/status", get(status))
        .route("/api/series", get(series))
        .route("/api/events", get(events))
        .route_layer(axum::middleware::from_fn_with_state(
            cfg.token,
            auth::require_token,
        ));
    Router::new()
        .route("/assets/{*path}", get(asset))
        .merge(guarded)
        .with_state(state)
        .layer(axum::middleware::from_fn(headers::secure))
}

#[cfg(test)]
mod tests;

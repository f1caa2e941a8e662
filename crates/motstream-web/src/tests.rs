use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

/// A source whose numbers say which window they are for.
struct Fake;

impl DashboardSource for Fake {
    fn catalog(&self) -> Value {
        json!({ "experiences": [], "mots": [] })
    }

    fn status(&self, window: Duration) -> Result<Value, DataError> {
        if window > Duration::from_secs(3 * 86_400) {
            return Err(DataError::BadRequest("window: beyond the retention".into()));
        }
        Ok(json!({ "window_ms": window.as_millis() as u64, "now_ms": 42, "mots": [] }))
    }

    fn series(&self, mot: &str, _: Duration, points: usize, _: i64) -> Result<Value, DataError> {
        if mot == "bag-drop" {
            Ok(json!({ "mot": mot, "points": points }))
        } else {
            Err(DataError::NotFound(format!(
                "mot: {mot:?} is not in the catalog"
            )))
        }
    }
}

fn app(token: Option<&str>) -> Router {
    router(
        Arc::new(Fake),
        WebConfig {
            token: token.map(Arc::from),
        },
    )
}

async fn get(
    app: &Router,
    uri: &str,
    auth: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::get(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn the_page_and_its_data_need_the_token_when_one_is_set() {
    let app = app(Some("s3cret"));
    for uri in [
        "/",
        "/api/catalog",
        "/api/status?window=5m",
        "/api/events?window=5m",
    ] {
        let (code, h, _) = get(&app, uri, None).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{uri} without a token");
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            get(&app, uri, Some("Bearer nope")).await.0,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    assert_eq!(
        get(&app, "/?token=s3cre", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&app, "/?token=s3cret", None).await.0, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/status?window=1h", Some("Bearer s3cret"))
            .await
            .0,
        StatusCode::OK
    );
    // The embedded files hold no data and are the same in every binary.
    assert_eq!(get(&app, "/assets/app.js", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn without_a_token_everything_is_open() {
    let app = app(None);
    let (code, h, body) = get(&app, "/", None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/html"))
    );
    assert!(body.contains("/assets/app.js"));
}

#[tokio::test]
async fn every_response_has_a_strict_policy_and_hardening_headers() {
    let app = app(Some("t"));
    for uri in [
        "/",
        "/?token=t",
        "/assets/app.css",
        "/assets/nope",
        "/api/status?window=5m&token=t",
    ] {
        let (_, h, _) = get(&app, uri, None).await;
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
            "{uri}: {csp}"
        );
        assert!(!csp.contains("unsafe"), "{uri}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{uri}");
    }
}

#[tokio::test]
async fn data_errors_are_400_or_404_with_the_message() {
    let app = app(None);
    let (code, _, body) = get(&app, "/api/status?window=5x", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("window"), "{body}");
    assert_eq!(
        get(&app, "/api/status?window=30d", None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/api/events?window=30d", None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/api/series?window=5m", None).await.0,
        StatusCode::BAD_REQUEST
    );
    let (code, _, body) = get(&app, "/api/series?mot=nope&window=5m", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let (code, _, body) = get(
        &app,
        "/api/series?mot=bag-drop&window=5m&points=99999",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        body.contains("\"points\":1000"),
        "points are capped: {body}"
    );
}

/// Every file the page and its modules name is embedded, served with its type, and no HTML
/// file carries inline script or style (which the policy would block).
#[tokio::test]
async fn every_referenced_asset_is_embedded_and_nothing_is_inline() {
    let app = app(None);
    let index = assets::INDEX;
    assert!(
        !index.contains("<style") && !index.contains(" style="),
        "inline style"
    );
    for (i, part) in index.split("<script").enumerate().skip(1) {
        let tag = part.split('>').next().unwrap_or("");
        assert!(
            tag.contains("src=\"/assets/"),
            "script {i} is not an embedded file: {tag}"
        );
    }
    let mut refs: Vec<String> = index
        .split("\"/assets/")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect();
    for a in assets::ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let text = std::str::from_utf8(a.body).expect("utf-8");
        let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
        for imp in text.split(" from '").skip(1) {
            let target = imp.split('\'').next().unwrap_or("");
            refs.push(resolve(dir, target));
        }
        assert!(
            a.path.starts_with("vendor/")
                || !(text.contains("innerHTML") || text.contains("insertAdjacentHTML")),
            "{} builds markup from strings",
            a.path
        );
    }
    assert!(refs.len() > 8, "{refs:?}");
    for r in refs {
        let (code, h, _) = get(&app, &format!("/assets/{r}"), None).await;
        assert_eq!(code, StatusCode::OK, "{r}");
        let want = match r.rsplit_once('.').map(|(_, ext)| ext) {
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "text/javascript",
        };
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|c| c.starts_with(want)),
            "{r}"
        );
    }
}

fn resolve(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if dir.is_empty() {
        Vec::new()
    } else {
        dir.split('/').collect()
    };
    for seg in target.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[tokio::test(start_paused = true)]
async fn browsers_watching_one_window_share_one_feed_that_stops_when_they_leave() {
    let hub = Arc::new(live::Hub::new(Arc::new(Fake)));
    let mut a = hub.subscribe(Duration::from_secs(300)).expect("subscribe");
    let mut b = hub.subscribe(Duration::from_secs(300)).expect("subscribe");
    let _c = hub.subscribe(Duration::from_secs(3600)).expect("subscribe");
    assert_eq!(hub.watched(), 2);
    a.changed().await.expect("a snapshot");
    let text = a
        .borrow_and_update()
        .clone()
        .expect("published")
        .expect("ok");
    assert!(text.contains("\"window_ms\":300000"), "{text}");
    b.changed().await.expect("the same feed");
    for i in 0..live::MAX_WINDOWS - 2 {
        let _ = hub
            .subscribe(Duration::from_secs(60 + i as u64))
            .expect("room");
    }
    assert!(hub.subscribe(Duration::from_secs(7)).is_err(), "bounded");
    drop((a, b, _c));
    tokio::time::sleep(live::TICK * 3).await;
    assert_eq!(hub.watched(), 0, "every feed stopped with its last browser");
}

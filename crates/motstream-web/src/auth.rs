//! The dashboard's access check: when the service has a gRPC bearer token, the page and its
//! data need the same token, as `Authorization: Bearer <token>` or `?token=<token>` (an
//! `EventSource` cannot set headers, so the page passes it in the query).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The token presented by a request, from its header or its query string.
fn presented(req: &Request) -> Option<String> {
    if let Some(t) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.to_owned());
    }
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .and_then(percent_decode)
}

/// `%XX` and `+` decoding of a query value; `None` if it is not valid UTF-8 or a `%` is
/// not followed by two hex digits.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Equal in time independent of where they differ (for tokens of the same length).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Middleware: passes the request on when no token is configured or the right one is
/// presented, else answers 401 without running the handler.
pub(crate) async fn require_token(
    State(want): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(want) = want else {
        return next.run(req).await;
    };
    match presented(&req) {
        Some(got) if same(got.as_bytes(), want.as_bytes()) => next.run(req).await,
        got => {
            let why = if got.is_some() {
                "the token is not valid"
            } else {
                "this dashboard needs the service's token: open it as /?token=<token> or send Authorization: Bearer <token>"
            };
            let mut r = (
                StatusCode::UNAUTHORIZED,
                format!("401 Unauthorized: {why}\n"),
            )
                .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded_and_bad_escapes_refused() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}

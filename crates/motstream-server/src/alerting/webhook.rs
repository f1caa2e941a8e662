//! The generic JSON webhook: one POST per fired or resolved transition, in order, with an
//! optional HMAC-SHA256 signature so the receiver can tell it came from us.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{post, with_retries};
use crate::alert_feed::AlertTransition;

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Motstream-Signature";

/// `sha256=<hex>` of the body under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen but must not panic.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// Delivers every queued transition until the queue closes. Sequential, so a resolve never
/// overtakes its firing; a transition that fails five attempts is logged and skipped.
pub async fn run(
    client: reqwest::Client,
    url: String,
    secret: Option<String>,
    mut rx: mpsc::Receiver<Arc<AlertTransition>>,
) {
    while let Some(o) = rx.recv().await {
        let body = match serde_json::to_vec(&*o) {
            Ok(b) => b,
            Err(e) => {
                warn!(alert = %o.alert_id, error = %e, "alert webhook: payload not encodable");
                continue;
            }
        };
        let sig = secret.as_deref().map(|s| signature(s, &body));
        let r = with_retries(5, Duration::from_millis(500), || {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(s) = &sig {
                req = req.header(SIGNATURE_HEADER, s);
            }
            post(req)
        })
        .await;
        match r {
            Ok(()) => info!(alert = %o.alert_id, state = %o.state, %url, "alert webhook delivered"),
            Err(e) => {
                warn!(alert = %o.alert_id, state = %o.state, %url, error = %e, "alert webhook failed after retries")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

//! Alertmanager API v2: POST /api/v2/alerts. Firing alerts are re-sent every `resend` with
//! `endsAt` four resend intervals ahead, so Alertmanager never times one out between sends;
//! a resolved alert is sent with `endsAt` = the resolve time, and re-sent for four more
//! intervals in case a send was lost. Every configured URL gets every alert (an Alertmanager
//! cluster de-duplicates).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, warn};

use super::{post, with_retries};
use crate::alert_feed::{AlertState, AlertTransition};

/// Resend intervals a firing alert's `endsAt` lies ahead, and a resolved alert keeps being sent.
const AHEAD: u32 = 4;

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// One alert in Alertmanager's format.
pub fn am_alert(o: &AlertTransition, now_ms: i64, resend: Duration) -> Value {
    let ends = if o.state == AlertState::Resolved {
        o.at_ms
    } else {
        now_ms + i64::try_from((resend * AHEAD).as_millis()).unwrap_or(i64::MAX / 2)
    };
    let mut v = json!({
        "labels": o.labels,
        "annotations": o.annotations,
        "startsAt": rfc3339(o.episode_ms),
        "endsAt": rfc3339(ends),
    });
    if let Some(d) = o.annotations.get("dashboard_url") {
        v["generatorURL"] = json!(d);
    }
    v
}

/// Keeps the alerts to (re-)send and sends them until the queue closes.
pub async fn run(
    client: reqwest::Client,
    urls: Vec<String>,
    resend: Duration,
    mut rx: mpsc::Receiver<Arc<AlertTransition>>,
) {
    // alert id -> its newest transition.
    let mut current: BTreeMap<String, Arc<AlertTransition>> = BTreeMap::new();
    // At most this many sends in flight: a dead Alertmanager holds at most these tasks.
    let inflight = Arc::new(Semaphore::new(4));
    let mut every = tokio::time::interval(resend);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        let batch: Vec<Arc<AlertTransition>> = tokio::select! {
            m = rx.recv() => match m {
                Some(o) => {
                    current.insert(o.alert_id.clone(), Arc::clone(&o));
                    vec![o]
                }
                None => break,
            },
            _ = every.tick() => {
                let now = crate::now_ms();
                let keep = i64::try_from((resend * AHEAD).as_millis()).unwrap_or(i64::MAX / 2);
                current.retain(|_, o| o.state != AlertState::Resolved || now - o.at_ms <= keep);
                current.values().cloned().collect()
            }
        };
        if batch.is_empty() {
            continue;
        }
        let Ok(permit) = Arc::clone(&inflight).try_acquire_owned() else {
            warn!(
                alerts = batch.len(),
                "Alertmanager sends are backed up; this send is skipped, the next resend carries it"
            );
            continue;
        };
        let now = crate::now_ms();
        let body = Value::Array(batch.iter().map(|o| am_alert(o, now, resend)).collect());
        let (client, urls) = (client.clone(), urls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            for url in urls {
                let endpoint = format!("{url}/api/v2/alerts");
                let r = with_retries(3, Duration::from_millis(250), || {
                    post(client.post(&endpoint).json(&body))
                })
                .await;
                match r {
                    Ok(()) => {
                        debug!(%endpoint, alerts = body.as_array().map_or(0, Vec::len), "sent to Alertmanager")
                    }
                    Err(e) => {
                        warn!(%endpoint, error = %e, "Alertmanager send failed after retries")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(state: AlertState) -> AlertTransition {
        AlertTransition {
            alert_id: "a".into(),
            state,
            at_ms: 2_000,
            episode_ms: 1_000,
            rule: "floor".into(),
            labels: [("alertname".to_owned(), "MotSmotoFloor".to_owned())].into(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn firing_ends_four_resends_ahead_and_resolved_ends_at_the_resolve() {
        let f = am_alert(&o(AlertState::Firing), 10_000, Duration::from_secs(60));
        assert_eq!(f["startsAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(f["endsAt"], "1970-01-01T00:04:10.000Z");
        let r = am_alert(&o(AlertState::Resolved), 10_000, Duration::from_secs(60));
        assert_eq!(r["endsAt"], "1970-01-01T00:00:02.000Z");
        assert_eq!(r["labels"]["alertname"], "MotSmotoFloor");
    }
}

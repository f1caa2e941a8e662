//! A once-per-interval log line of what ingest sent to the dead-letter topic, by reason, so
//! that rejected events are visible in the service's own log, not only in Kafka. Quiet
//! intervals log nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use motstream_ingest::Health;
use tokio::sync::watch;
use tracing::warn;

/// How often the summary is logged (when anything was rejected).
pub const EVERY: Duration = Duration::from_secs(60);

/// Logs a summary every `every` until `stop` turns true.
pub async fn run(
    health: Arc<Health>,
    every: Duration,
    dlq_topic: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: it takes the baseline.
    tick.tick().await;
    let mut prev = health.rejected();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = health.rejected();
        if let Some((total, by_reason)) = summary(&prev, &now) {
            warn!(
                rejected = total,
                by_reason = %by_reason,
                dlq = %dlq_topic,
                "{total} events rejected to the dead-letter topic in the last {}: {by_reason} (`motstream dlq tail` shows them)",
                motstream_core::units::short_duration(every)
            );
        }
        prev = now;
    }
}

/// What was rejected between two cumulative snapshots: the total and `reason n, ...`, most
/// frequent first; `None` when nothing was.
pub fn summary(
    prev: &BTreeMap<&'static str, u64>,
    now: &BTreeMap<&'static str, u64>,
) -> Option<(u64, String)> {
    let mut d: Vec<(&str, u64)> = now
        .iter()
        .map(|(r, n)| (*r, n.saturating_sub(prev.get(r).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let total = d.iter().map(|(_, n)| n).sum();
    let text = d
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some((total, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_the_difference_by_reason_most_frequent_first() {
        let prev = BTreeMap::from([("not_json", 2), ("missing_field", 1)]);
        let now = BTreeMap::from([
            ("not_json", 3),
            ("missing_field", 1),
            ("unrecognised_payload", 4),
        ]);
        assert_eq!(
            summary(&prev, &now),
            Some((5, "unrecognised_payload 4, not_json 1".to_owned()))
        );
        assert_eq!(summary(&now, &now), None, "a quiet interval logs nothing");
    }
}

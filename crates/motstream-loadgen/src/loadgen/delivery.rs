//! What became of the events `motstream loadgen` handed to librdkafka: acknowledged, failed,
//! and how long each acknowledgement took, counted by librdkafka's delivery callbacks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};

/// Sub-buckets per power of two: a recorded value is known to within 1/16 (6%).
const SUB: u64 = 16;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Exact buckets 0..SUB, then SUB sub-buckets for each power of two from SUB to 2^63.
const BUCKETS: usize = ((64 - SUB_BITS + 1) * SUB as u32) as usize;

/// A lock-free histogram of microseconds, log-linear like HdrHistogram with one significant
/// hex digit: recording is one relaxed `fetch_add`, so the delivery callbacks (librdkafka's
/// polling thread, and the thread that flushes) never wait for each other or for a reader.
#[derive(Debug)]
pub struct Latencies {
    buckets: Box<[AtomicU64]>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let mantissa = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + mantissa) as usize
}

/// The largest value that falls in bucket `i`.
fn highest(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i / SUB - 1) as u32;
    let low = (SUB + i % SUB) << shift;
    low + ((1u64 << shift) - 1)
}

impl Latencies {
    /// Counts one latency of `us` microseconds.
    pub fn record(&self, us: u64) {
        // Relaxed: each bucket is an independent counter; readers want a recent total, not a
        // consistent snapshot across buckets.
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile (0..=1) in microseconds, overestimated by at most 1/16; `None` when
    /// nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(highest(i));
            }
        }
        Some(highest(BUCKETS - 1))
    }
}

/// Delivery outcomes so far.
#[derive(Debug)]
pub struct Tally {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// Send-to-acknowledgement time of each acknowledged event.
    pub latency: Latencies,
    /// The last delivery error, for the final report.
    pub last_error: Mutex<Option<String>>,
    /// Origin of the send stamps ([`Tally::stamp`]), and the same moment in ms since the
    /// Unix epoch.
    epoch: Instant,
    epoch_ms: i64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency: Latencies::default(),
            last_error: Mutex::new(None),
            epoch: Instant::now(),
            epoch_ms: crate::now_ms(),
        }
    }
}

impl Tally {
    /// Now, as the delivery opaque of an event handed over now: microseconds since the tally
    /// was made (a usize, so librdkafka carries it without an allocation).
    pub fn stamp(&self) -> usize {
        usize::try_from(self.epoch.elapsed().as_micros()).unwrap_or(usize::MAX)
    }

    /// The wall-clock time of `stamp`, in ms since the Unix epoch: one clock read per event
    /// serves both its delivery stamp and its event time.
    pub fn wall_ms(&self, stamp: usize) -> i64 {
        self.epoch_ms
            .saturating_add(i64::try_from(stamp / 1000).unwrap_or(i64::MAX))
    }

    /// Counts an event that will not reach the topic.
    pub fn failed(&self, e: &KafkaError) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e.to_string());
        }
        // Relaxed: a counter read for reports; the final read happens after the flush, which
        // joins with the callbacks through librdkafka's own locking.
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The producer context of loadgen: counts every delivery report and times the acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Timed(pub std::sync::Arc<Tally>);

impl ClientContext for Timed {}

impl ProducerContext for Timed {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let now = self.0.stamp();
                self.0.latency.record(now.saturating_sub(sent_us) as u64);
                // Relaxed: as in `Tally::failed`.
                self.0.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.0.failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_highest_is_within_a_sixteenth() {
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v} -> {b}");
            let hi = highest(b);
            assert!(hi >= v, "{v}: highest {hi}");
            assert!(
                hi - v <= v / SUB,
                "{v}: highest {hi} is more than 1/16 above"
            );
            if b > 0 {
                assert!(highest(b - 1) < v, "{v}: the bucket below also holds it");
            }
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let h = Latencies::default();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=10_000 {
            h.record(us);
        }
        let p50 = h.quantile(0.5).expect("recorded");
        let p99 = h.quantile(0.99).expect("recorded");
        assert!((5_000..=5_000 + 5_000 / 16).contains(&p50), "{p50}");
        assert!((9_900..=9_900 + 9_900 / 16).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(highest(bucket(10_000))));
        assert_eq!(h.quantile(0.0), Some(1));
    }
}

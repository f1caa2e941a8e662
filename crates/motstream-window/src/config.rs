//! Configuration (defaults in one place) and its resolution into ring geometry.

use crate::error::ConfigError;
use crate::head::MAX_COUNTER_TIERS;

/// One resolution of a multi-resolution ring: buckets of `resolution_ms` kept for
/// `retention_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    /// Bucket width in ms; at least 1,000 (see [`WindowConfig`]).
    pub resolution_ms: u64,
    /// The longest window this tier answers, in ms; at least `resolution_ms`.
    pub retention_ms: u64,
}

impl TierSpec {
    const fn new(resolution_ms: u64, retention_ms: u64) -> Self {
        Self {
            resolution_ms,
            retention_ms,
        }
    }
}

/// How status views are derived from the windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusOptions {
    /// How many failure reasons a MOT status lists, most frequent first (0..=100).
    pub top_reasons: usize,
    /// How many channels a MOT status lists, most interactions first (0..=100); the rest
    /// count as "other".
    pub top_channels: usize,
    /// A channel is eligible as "worst channel" only with at least this many interactions
    /// in the window (≥ 1).
    pub min_channel_amount: u64,
    /// A trend whose absolute SMOTO-rate delta is below this (a ratio, e.g. `0.001` = 0.1
    /// percentage point) is `Flat`; finite, ≥ 0.
    pub trend_flat_epsilon: f64,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            top_reasons: 5,
            top_channels: 10,
            min_channel_amount: 20,
            trend_flat_epsilon: 0.001,
        }
    }
}

/// Window, lateness and bounds configuration. [`WindowConfig::default`] is the production
/// default; every field is documented with its unit and range.
///
/// Per MOT and partition, the **counter tiers** hold successes and failures, and the
/// **detail tiers** hold everything else (latency histogram, failure reasons, channels, late
/// and rejected counts), at a coarser granularity because each detail bucket is ~1.6 KiB
/// against 12 bytes for a counter bucket. Defaults: counters at 1 s for 10 min, 1 min for
/// 6 h, 10 min for 3 days; details at 1 min for 5 min, 30 min for 6 h, 12 h for 3 days —
/// 63.7 KiB per MOT and partition in all ([`crate::Aggregator::mot_memory_bytes`]), and
/// 16.5 KiB more for a MOT that journeys reach: its journey funnel on the counter tiers
/// ([`crate::Aggregator::funnel_memory_bytes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// Counter tiers, finest first: resolutions and retentions both strictly increasing;
    /// 1 to 4 tiers; resolutions ≥ 1,000 ms; at most 2^20 buckets per tier.
    pub counter_tiers: Vec<TierSpec>,
    /// Detail tiers, same rules as `counter_tiers` but may be empty (then no latency,
    /// reasons, channels or windowed late counts are kept).
    pub detail_tiers: Vec<TierSpec>,
    /// How far behind the partition's watermark (its largest applied event time) an event
    /// may be and still land in its own bucket, in ms; at most the longest counter retention.
    pub allowed_lateness_ms: u64,
    /// How far ahead of `now_ms` an event may be before it is rejected, in ms (≤ 1 h).
    pub max_future_skew_ms: u64,
    /// A journey with no interaction for this long (event time) is closed: abandoned if it
    /// did not reach its SCO. In ms, ≥ 1.
    pub journey_timeout_ms: u64,
    /// Open journeys kept per partition; new journeys beyond it are counted as overflow and
    /// not tracked (their interactions still count in the MOT windows). ≥ 1.
    pub max_journeys_per_partition: usize,
    /// Unidentified MOT ids kept per partition; further ids are counted as overflow. ≥ 1.
    pub max_unidentified_per_partition: usize,
    /// Distinct failure reasons interned per partition (1..=65,000); further reasons are
    /// counted under "other".
    pub max_reasons_per_partition: usize,
    /// Distinct channels interned per partition (1..=65,000); further channels are counted
    /// under "other".
    pub max_channels_per_partition: usize,
    /// Labels (reasons, channels, unidentified ids) are cut to this many bytes, on a
    /// character boundary (8..=4,096).
    pub max_label_bytes: usize,
    /// How status views are derived.
    pub status: StatusOptions,
}

impl Default for WindowConfig {
    fn default() -> Self {
        const SEC: u64 = 1_000;
        const MIN: u64 = 60 * SEC;
        const HOUR: u64 = 60 * MIN;
        Self {
            counter_tiers: vec![
                TierSpec::new(SEC, 10 * MIN),
                TierSpec::new(MIN, 6 * HOUR),
                TierSpec::new(10 * MIN, 72 * HOUR),
            ],
            detail_tiers: vec![
                TierSpec::new(MIN, 5 * MIN),
                TierSpec::new(30 * MIN, 6 * HOUR),
                TierSpec::new(12 * HOUR, 72 * HOUR),
            ],
            allowed_lateness_ms: 10 * MIN,
            max_future_skew_ms: 10 * SEC,
            journey_timeout_ms: 30 * MIN,
            max_journeys_per_partition: 200_000,
            max_unidentified_per_partition: 1_000,
            max_reasons_per_partition: 256,
            max_channels_per_partition: 64,
            max_label_bytes: 128,
            status: StatusOptions::default(),
        }
    }
}

/// One resolved tier: where its buckets live in a key's flat slot array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tier {
    /// Bucket width in ms.
    pub res_ms: i64,
    /// Retention in ms, as configured.
    pub retention_ms: u64,
    /// Number of buckets in the ring.
    pub cap: u32,
    /// First slot of this tier in the key's flat array.
    pub offset: u32,
    /// Buckets reserved for events ahead of `now_ms` (within the skew), so that a window as
    /// long as the retention is never evicted by them.
    pub guard: u32,
}

impl Tier {
    /// The bucket index of an event time (floor division; negative times work).
    #[inline]
    pub fn index(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.res_ms)
    }

    /// The absolute slot of a bucket index.
    #[inline]
    pub fn slot(&self, index: i64) -> usize {
        self.offset as usize + index.rem_euclid(i64::from(self.cap)) as usize
    }

    /// How many consecutive buckets ending at the current one a query may read without
    /// risking that a write within the skew has evicted the oldest.
    pub fn readable(&self) -> i64 {
        i64::from(self.cap - self.guard)
    }
}

/// The configuration resolved into geometry; shared by every partition of an aggregator.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub counter: Vec<Tier>,
    pub counter_slots: usize,
    pub detail: Vec<Tier>,
    pub detail_slots: usize,
    pub lateness_ms: i64,
    pub skew_ms: i64,
    pub journey_timeout_ms: i64,
    pub max_retention_ms: u64,
    pub config: WindowConfig,
}

const MAX_TIERS: usize = 8;
const MAX_BUCKETS: u64 = 1 << 20;

fn resolve_tiers(
    name: &str,
    specs: &[TierSpec],
    guard_ms: u64,
    problems: &mut Vec<String>,
) -> (Vec<Tier>, usize) {
    if specs.len() > MAX_TIERS {
        problems.push(format!(
            "{name}: {} tiers, at most {MAX_TIERS}",
            specs.len()
        ));
    }
    let mut tiers = Vec::with_capacity(specs.len());
    let mut offset: u64 = 0;
    for (i, s) in specs.iter().enumerate() {
        let r = s.resolution_ms;
        if r < 1_000 || r > i64::MAX as u64 / 4 {
            problems.push(format!(
                "{name}[{i}].resolution_ms: {r} is below 1000 ms or absurdly large"
            ));
            continue;
        }
        if s.retention_ms < r {
            problems.push(format!(
                "{name}[{i}].retention_ms: {} is shorter than its resolution",
                s.retention_ms
            ));
            continue;
        }
        if i > 0 {
            let p = specs[i - 1];
            if r <= p.resolution_ms || s.retention_ms <= p.retention_ms {
                problems.push(format!(
                    "{name}[{i}]: resolution and retention must both exceed those of {name}[{}]",
                    i - 1
                ));
            }
        }
        // A window of up to `retention` touches at most ceil(retention / r) + 1 buckets;
        // `guard` more absorb events from the future.
        let guard = guard_ms.div_ceil(r);
        let cap = s.retention_ms.div_ceil(r) + 1 + guard;
        if cap > MAX_BUCKETS {
            problems.push(format!("{name}[{i}]: {cap} buckets, at most {MAX_BUCKETS}"));
            continue;
        }
        tiers.push(Tier {
            res_ms: r as i64,
            retention_ms: s.retention_ms,
            cap: cap as u32,
            offset: offset as u32,
            guard: guard as u32,
        });
        offset += cap;
    }
    (tiers, offset as usize)
}

impl Layout {
    pub fn new(config: WindowConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let c = &config;
        if c.counter_tiers.is_empty() || c.counter_tiers.len() > MAX_COUNTER_TIERS {
            problems.push(format!(
                "counter_tiers: {} tiers, need 1..={MAX_COUNTER_TIERS}",
                c.counter_tiers.len()
            ));
        }
        if c.max_future_skew_ms > 3_600_000 {
            problems.push(format!(
                "max_future_skew_ms: {} is above 1 h",
                c.max_future_skew_ms
            ));
        }
        let (counter, counter_slots) = resolve_tiers(
            "counter_tiers",
            &c.counter_tiers,
            c.max_future_skew_ms,
            &mut problems,
        );
        let (detail, detail_slots) = resolve_tiers(
            "detail_tiers",
            &c.detail_tiers,
            c.max_future_skew_ms,
            &mut problems,
        );
        let max_retention_ms = c
            .counter_tiers
            .iter()
            .map(|t| t.retention_ms)
            .max()
            .unwrap_or(0);
        if c.allowed_lateness_ms > max_retention_ms {
            problems.push(format!(
                "allowed_lateness_ms: {} exceeds the longest counter retention {max_retention_ms}",
                c.allowed_lateness_ms
            ));
        }
        if c.journey_timeout_ms == 0 || c.journey_timeout_ms > i64::MAX as u64 / 4 {
            problems.push(format!(
                "journey_timeout_ms: {} is not in 1..2^61",
                c.journey_timeout_ms
            ));
        }
        for (name, v, lo, hi) in [
            (
                "max_journeys_per_partition",
                c.max_journeys_per_partition,
                1,
                usize::MAX,
            ),
            (
                "max_unidentified_per_partition",
                c.max_unidentified_per_partition,
                1,
                1 << 24,
            ),
            (
                "max_reasons_per_partition",
                c.max_reasons_per_partition,
                1,
                65_000,
            ),
            (
                "max_channels_per_partition",
                c.max_channels_per_partition,
                1,
                65_000,
            ),
            ("max_label_bytes", c.max_label_bytes, 8, 4_096),
            ("status.top_reasons", c.status.top_reasons, 0, 100),
            ("status.top_channels", c.status.top_channels, 0, 100),
        ] {
            if v < lo || v > hi {
                problems.push(format!("{name}: {v} is not in {lo}..={hi}"));
            }
        }
        if c.status.min_channel_amount == 0 {
            problems.push("status.min_channel_amount: must be ≥ 1".to_owned());
        }
        let eps = c.status.trend_flat_epsilon;
        if !(eps.is_finite() && eps >= 0.0) {
            problems.push(format!(
                "status.trend_flat_epsilon: {eps} is not a finite number ≥ 0"
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            counter,
            counter_slots,
            detail,
            detail_slots,
            lateness_ms: c.allowed_lateness_ms as i64,
            skew_ms: c.max_future_skew_ms as i64,
            journey_timeout_ms: c.journey_timeout_ms as i64,
            max_retention_ms,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_resolves_to_expected_bucket_counts() {
        let l = Layout::new(WindowConfig::default()).expect("default config is valid");
        let caps: Vec<u32> = l.counter.iter().map(|t| t.cap).collect();
        assert_eq!(caps, vec![611, 362, 434]);
        let caps: Vec<u32> = l.detail.iter().map(|t| t.cap).collect();
        assert_eq!(caps, vec![7, 14, 8]);
        assert_eq!(l.counter[2].offset, 611 + 362);
    }

    #[test]
    fn config_rejects_unordered_tiers_and_excess_lateness_naming_fields() {
        let c = WindowConfig {
            counter_tiers: vec![
                TierSpec::new(60_000, 3_600_000),
                TierSpec::new(1_000, 600_000),
            ],
            allowed_lateness_ms: 10_000_000,
            max_label_bytes: 1,
            ..WindowConfig::default()
        };
        let e = Layout::new(c).expect_err("invalid").to_string();
        assert!(e.contains("counter_tiers[1]"), "{e}");
        assert!(e.contains("allowed_lateness_ms"), "{e}");
        assert!(e.contains("max_label_bytes"), "{e}");
    }
}

//! Sums of final bucket runs kept between reads, so that a long window read every second
//! costs its few still-changing buckets, not all of them.
//!
//! A bucket is final once it ends at or before `watermark - allowed lateness` of its
//! partition: any later event older than that is rejected as late (and the writer publishes
//! the watermark with release ordering after the counts it covers). A partition's entries are
//! dropped when its state is replaced (rebuild) or removed (revoke).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::aggregate::Counts;
use crate::partition::{NO_WATERMARK, PartitionId, PartitionState};

/// Cached sums for the reads of one [`crate::CountsReader`] per tick; keep it between ticks
/// and pass it to [`crate::Aggregator::counts_reader_cached`] with the same windows.
#[derive(Debug, Default)]
pub struct CountsCache {
    pub(crate) parts: HashMap<PartitionId, PartCache>,
}

#[derive(Debug)]
pub(crate) struct PartCache {
    /// The generation of the partition state the entries were read from.
    generation: u64,
    pub(crate) entries: Vec<Entry>,
}

/// The sum of buckets `first..=frozen_last` of counter tier `tier`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Entry {
    pub valid: bool,
    pub tier: usize,
    pub first: i64,
    pub frozen_last: i64,
    pub sum: Counts,
}

impl CountsCache {
    /// Drops the entries of partitions that are gone or were replaced, and sizes the rest
    /// for `len` entries.
    pub(crate) fn sync(&mut self, parts: &[Arc<PartitionState>], len: usize) {
        self.parts.retain(|id, c| {
            parts
                .iter()
                .any(|p| p.id() == *id && p.generation() == c.generation)
        });
        for p in parts {
            let c = self.parts.entry(p.id()).or_insert_with(|| PartCache {
                generation: p.generation(),
                entries: Vec::new(),
            });
            if c.entries.len() != len {
                c.entries = vec![Entry::default(); len];
            }
        }
    }
}

/// The end (exclusive, ms) of the final part of a partition's event time; `None` before its
/// first event.
pub(crate) fn final_before(p: &PartitionState) -> Option<i64> {
    // Acquire: pairs with the writer's release store, so every count written before this
    // watermark is visible to the reads that follow.
    let wm = p.watermark.load(Ordering::Acquire);
    (wm != NO_WATERMARK).then(|| wm.saturating_sub(p.shared.layout.lateness_ms))
}

#[cfg(test)]
mod tests {
    use crate::topology::one_experience;
    use crate::{Aggregator, CountsCache, MotIdx, MotKey, Observation, PartitionId, WindowConfig};

    #[test]
    fn cached_reads_equal_fresh_reads_as_time_passes_with_late_events_and_a_rebuild() {
        let config = WindowConfig::default();
        let lateness = config.allowed_lateness_ms;
        let agg = Aggregator::new(one_experience(2), config).expect("aggregator");
        let start = 1_700_000_000_000i64;
        let windows = [60_000, 300_000, 1_800_000, 3_600_000, 21_600_000];
        let mut cache = CountsCache::default();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Two hours of live traffic, read every 7 s of it (then and there, as the engine does).
        let mut t = start;
        let mut step = 0;
        while t < start + 2 * 3_600_000 {
            step += 1;
            if step == 600 {
                // A rebalance: partition 1 is rebuilt; its cached sums must not be reused.
                agg.begin_rebuild(PartitionId(1));
                agg.finish_rebuild(PartitionId(1));
            }
            for _ in 0..(next() % 6) {
                let part = agg.partition(PartitionId((next() % 2) as i32));
                // Half on time; a quarter up to the allowed lateness late; a quarter within a
                // minute of it, where buckets turn final.
                let late = match next() % 4 {
                    0 => next() % lateness,
                    1 => lateness - 1 - next() % 60_000,
                    _ => 0,
                } as i64;
                let obs = Observation::new(
                    MotKey::Known(MotIdx((next() % 2) as u32)),
                    t - late,
                    next() % 5 != 0,
                );
                part.writer().apply(&obs, t);
            }
            let cached = agg
                .counts_reader_cached(&windows, t, &mut cache)
                .expect("reader");
            let fresh = agg.counts_reader(&windows, t).expect("reader");
            for (w, window) in windows.iter().enumerate() {
                for m in 0..2 {
                    assert_eq!(
                        cached.get(w, MotIdx(m)),
                        fresh.get(w, MotIdx(m)),
                        "window {window} at +{} ms, mot {m}",
                        t - start
                    );
                }
            }
            t += 7_000;
        }
        let r = agg.counts_reader(&[21_600_000], t).expect("reader");
        let seen = r.get(0, MotIdx(0)).amount();
        assert!(seen > 500, "the windows saw traffic: {seen}");
    }

    #[test]
    fn a_revoked_and_reassigned_partition_never_reuses_the_old_sums() {
        let config = WindowConfig::default();
        let lateness = config.allowed_lateness_ms as i64;
        let agg = Aggregator::new(one_experience(1), config).expect("aggregator");
        let now = 1_700_000_000_000i64;
        let windows = [3_600_000];
        let mut cache = CountsCache::default();
        // Each round: a partition with `round` old (final) events, read through the cache, then
        // revoked and assigned again. The freed state's memory is often reused for the next
        // one, which an address-keyed cache mistook for the same partition.
        for round in 1..40u32 {
            {
                let part = agg.partition(PartitionId(0));
                let mut w = part.writer();
                for _ in 0..round {
                    let obs = Observation::new(MotKey::Known(MotIdx(0)), now - 2 * lateness, true);
                    w.apply(&obs, now);
                }
                w.apply(&Observation::new(MotKey::Known(MotIdx(0)), now, true), now);
            }
            let cached = agg
                .counts_reader_cached(&windows, now, &mut cache)
                .expect("reader");
            assert_eq!(
                cached.get(0, MotIdx(0)).amount(),
                u64::from(round) + 1,
                "round {round}"
            );
            agg.drop_partition(PartitionId(0));
        }
    }
}

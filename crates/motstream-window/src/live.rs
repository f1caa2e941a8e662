//! Cumulative counters of *live-applied* events, for monotonic Prometheus counters.
//!
//! Why not derive counters from the windows: a partition's window state is dropped when the
//! partition is revoked and rebuilt by replaying its history when it is assigned again, so a
//! sum over window contents drops on every revoke and jumps back (counting the replayed history
//! a second time) on every assign. Prometheus reads any decrease as a counter reset and would
//! report the replayed history as new traffic.
//!
//! Instead each partition id gets one [`LiveTotals`] for the life of the process, kept by the
//! aggregator across revokes and re-assignments, and the partition's writer adds to it only
//! while the partition is live (not rebuilding). Replayed events were counted when they were
//! first applied live, by this process or by whichever instance owned the partition then, so
//! every event is counted once per fleet: the sum over instances is the fleet's total, and each
//! instance's numbers only grow. The cost per event is a few relaxed loads and stores to memory
//! the partition's writer already owns; all summing happens when a scraper asks
//! ([`crate::Aggregator::live_snapshot`]).
//!
//! Known limits, both inherent to at-least-once delivery: events applied live but not yet
//! committed when an instance crashes are applied live again by the next owner (counted twice),
//! and journeys abandoned while a partition rebuilds are not counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (inclusive, ms) of the interaction-duration histogram's buckets; an implicit
/// `+Inf` bucket follows. 0.1 s to 1 h, the range of human-facing interactions.
pub const DURATION_BOUNDS_MS: [u32; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    1_800_000, 3_600_000,
];

/// Upper bounds (inclusive) of the MOTs-per-SCO histogram's buckets; `+Inf` follows.
pub const MPS_BOUNDS: [u32; 11] = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30];

/// Adds `n` with a relaxed load and store, not a read-modify-write: a partition id has one
/// writer at a time (its consumer, under the partition's writer mutex; a revoked incarnation's
/// writer has finished before a new incarnation goes live), so no update is lost, and readers
/// only need each value to be some value it had.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Counts `v` in the first of `buckets` whose bound in `bounds` is not below it (the last
/// bucket is `+Inf`) and adds it to `sum`.
#[inline]
fn observe(bounds: &[u32], buckets: &[AtomicU64], sum: &AtomicU64, v: u32) {
    if let Some(c) = buckets.get(bounds.partition_point(|&le| le < v)) {
        bump(c, 1);
    }
    bump(sum, u64::from(v));
}

#[inline]
fn get(c: &AtomicU64) -> u64 {
    // Relaxed: each counter is a standalone statistic; no other memory is read in its light.
    c.load(Ordering::Relaxed)
}

/// One MOT's live counters in one partition, but its outcome counts, which every event
/// touches: those live in [`LiveTotals::outcomes`].
#[derive(Debug, Default)]
pub(crate) struct LiveMot {
    late: AtomicU64,
    rejected_future: AtomicU64,
    /// Per bucket of [`DURATION_BOUNDS_MS`] plus `+Inf`, not cumulative.
    duration: [AtomicU64; DURATION_BOUNDS_MS.len() + 1],
    duration_sum_ms: AtomicU64,
}

/// One experience's live counters in one partition.
#[derive(Debug, Default)]
pub(crate) struct LiveExperience {
    started: AtomicU64,
    completed: AtomicU64,
    abandoned: AtomicU64,
    /// Per bucket of [`MPS_BOUNDS`] plus `+Inf`, not cumulative.
    mps: [AtomicU64; MPS_BOUNDS.len() + 1],
    mps_sum: AtomicU64,
}

/// The live counters of one partition id, kept for the life of the process.
#[derive(Debug)]
pub struct LiveTotals {
    /// Successes and failures per MOT, dense (16 bytes a MOT): the one line of these counters
    /// every event writes stays in cache (16 KiB per 1,000 MOTs), where interleaving it with
    /// the rarer counters below (168 bytes a MOT) spread the hot path over 10x the memory.
    outcomes: Box<[[AtomicU64; 2]]>,
    mots: Box<[LiveMot]>,
    exps: Box<[LiveExperience]>,
    unidentified: AtomicU64,
}

impl LiveTotals {
    pub(crate) fn new(mots: usize, exps: usize) -> Self {
        Self {
            outcomes: (0..mots).map(|_| Default::default()).collect(),
            mots: (0..mots).map(|_| LiveMot::default()).collect(),
            exps: (0..exps).map(|_| LiveExperience::default()).collect(),
            unidentified: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn interaction(&self, mot: usize, success: bool, duration_ms: Option<u32>) {
        let Some(o) = self.outcomes.get(mot) else {
            return;
        };
        bump(&o[usize::from(!success)], 1);
        if let Some(ms) = duration_ms
            && let Some(m) = self.mots.get(mot)
        {
            observe(&DURATION_BOUNDS_MS, &m.duration, &m.duration_sum_ms, ms);
        }
    }

    #[inline]
    pub(crate) fn rejected(&self, mot: usize, future: bool) {
        if let Some(m) = self.mots.get(mot) {
            bump(if future { &m.rejected_future } else { &m.late }, 1);
        }
    }

    #[inline]
    pub(crate) fn unidentified(&self) {
        bump(&self.unidentified, 1);
    }

    #[inline]
    pub(crate) fn journey(&self, exp: usize, started: bool, completed: Option<u32>) {
        let Some(e) = self.exps.get(exp) else { return };
        if started {
            bump(&e.started, 1);
        }
        if let Some(n) = completed {
            bump(&e.completed, 1);
            observe(&MPS_BOUNDS, &e.mps, &e.mps_sum, n);
        }
    }

    #[inline]
    pub(crate) fn abandoned(&self, exp: usize, n: u64) {
        if let Some(e) = self.exps.get(exp) {
            bump(&e.abandoned, n);
        }
    }

    /// Adds these counters into `out` (sized by [`LiveSnapshot::new`]).
    pub(crate) fn add_into(&self, out: &mut LiveSnapshot) {
        for ((o, m), [s, f]) in out
            .mots
            .iter_mut()
            .zip(self.mots.iter())
            .zip(self.outcomes.iter())
        {
            o.successes += get(s);
            o.failures += get(f);
            o.late += get(&m.late);
            o.rejected_future += get(&m.rejected_future);
            for (a, b) in o.duration_buckets.iter_mut().zip(m.duration.iter()) {
                *a += get(b);
            }
            o.duration_sum_ms += get(&m.duration_sum_ms);
        }
        for (o, e) in out.experiences.iter_mut().zip(self.exps.iter()) {
            o.journeys_started += get(&e.started);
            o.journeys_completed += get(&e.completed);
            o.journeys_abandoned += get(&e.abandoned);
            for (a, b) in o.mps_buckets.iter_mut().zip(e.mps.iter()) {
                *a += get(b);
            }
            o.mps_sum += get(&e.mps_sum);
        }
        out.unidentified += get(&self.unidentified);
    }
}

/// One MOT's live counters summed over partitions. Histogram buckets are per bucket (not
/// cumulative), the last one being `+Inf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveMotCounts {
    pub successes: u64,
    pub failures: u64,
    /// Events later than the allowed lateness: counted, not applied.
    pub late: u64,
    /// Events further in the future than the allowed skew: rejected.
    pub rejected_future: u64,
    /// Interactions with a duration, per bucket of [`DURATION_BOUNDS_MS`] then `+Inf`.
    pub duration_buckets: [u64; DURATION_BOUNDS_MS.len() + 1],
    /// Sum of those durations, ms.
    pub duration_sum_ms: u64,
}

/// One experience's live counters summed over partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveExperienceCounts {
    pub journeys_started: u64,
    /// Journeys that reached the SCO.
    pub journeys_completed: u64,
    /// Journeys that timed out before the SCO.
    pub journeys_abandoned: u64,
    /// Completed journeys per bucket of [`MPS_BOUNDS`] (interactions needed) then `+Inf`.
    pub mps_buckets: [u64; MPS_BOUNDS.len() + 1],
    /// Sum of interactions needed over completed journeys.
    pub mps_sum: u64,
}

/// Live counters of every MOT (by [`crate::MotIdx`]) and experience (by [`crate::ExpIdx`]),
/// summed over every partition this process has owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    pub mots: Vec<LiveMotCounts>,
    pub experiences: Vec<LiveExperienceCounts>,
    /// Events with a MOT id the catalog does not declare.
    pub unidentified: u64,
}

impl LiveSnapshot {
    pub(crate) fn new(mots: usize, exps: usize) -> Self {
        Self {
            mots: vec![LiveMotCounts::default(); mots],
            experiences: vec![LiveExperienceCounts::default(); exps],
            unidentified: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let t = LiveTotals::new(1, 1);
        for ms in [0, 100, 101, 3_600_000, 3_600_001] {
            t.interaction(0, true, Some(ms));
        }
        let mut s = LiveSnapshot::new(1, 1);
        t.add_into(&mut s);
        let b = &s.mots[0].duration_buckets;
        assert_eq!((b[0], b[1], b[13], b[14]), (2, 1, 1, 1));
        assert_eq!(s.mots[0].duration_sum_ms, 7_200_202);
        assert_eq!(s.mots[0].successes, 5);
    }

    #[test]
    fn mots_per_sco_buckets_and_out_of_range_indices_are_ignored() {
        let t = LiveTotals::new(1, 1);
        t.journey(0, true, Some(1));
        t.journey(0, false, Some(7));
        t.journey(0, false, Some(31));
        t.journey(5, true, Some(1));
        t.interaction(9, false, None);
        let mut s = LiveSnapshot::new(1, 1);
        t.add_into(&mut s);
        let e = &s.experiences[0];
        assert_eq!((e.journeys_started, e.journeys_completed), (1, 3));
        assert_eq!(
            (e.mps_buckets[0], e.mps_buckets[6], e.mps_buckets[11]),
            (1, 1, 1)
        );
        assert_eq!(e.mps_sum, 39);
    }

    #[test]
    fn counters_survive_revoke_and_do_not_count_the_replay() {
        use crate::topology::one_experience;
        use crate::{Aggregator, MotIdx, MotKey, Observation, PartitionId, WindowConfig};
        let agg = Aggregator::new(one_experience(1), WindowConfig::default())
            .expect("aggregator")
            .with_live_totals();
        let now = 1_700_000_000_000;
        let obs = |success| Observation {
            duration_ms: Some(200),
            ..Observation::new(MotKey::Known(MotIdx(0)), now - 1_000, success)
        };
        let id = PartitionId(0);
        {
            let p = agg.partition(id);
            let mut w = p.writer();
            w.apply(&obs(true), now);
            w.apply(&obs(false), now);
        }
        agg.drop_partition(id);
        let after_revoke = agg.live_snapshot().expect("enabled");
        assert_eq!(
            (
                after_revoke.mots[0].successes,
                after_revoke.mots[0].failures
            ),
            (1, 1)
        );
        // Re-assigned: the replay of the same two events is not counted again.
        let p = agg.begin_rebuild(id);
        {
            let mut w = p.writer();
            w.apply(&obs(true), now);
            w.apply(&obs(false), now);
        }
        assert_eq!(agg.live_snapshot(), Some(after_revoke));
        agg.finish_rebuild(id);
        p.writer().apply(&obs(true), now);
        let s = agg.live_snapshot().expect("enabled");
        assert_eq!((s.mots[0].successes, s.mots[0].failures), (2, 1));
        assert_eq!(s.mots[0].duration_buckets[1], 3);
    }
}

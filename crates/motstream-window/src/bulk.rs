//! Counts-only reads for the alert engine: any MOT over any of several windows, on demand
//! ([`CountsReader`]) or every MOT at once ([`BulkCounts`]). A full [`crate::MotStatus`] also
//! merges latency histograms, reasons and channels, which an engine evaluating thousands of
//! MOTs every second does not need until an alert changes state.
//!
//! Cost: a window is the sum of its buckets at the finest tier that holds it (as in
//! [`crate::Aggregator::status_mot`], same numbers), but whole aligned buckets of the next
//! coarser tier stand in for runs of finer ones: a 5-minute window at 1 s reads about 60
//! one-second buckets at its two ends and 4 one-minute buckets in between instead of 300
//! one-second buckets; a 6-hour window at 1 min reads about 10 minutes and 35 ten-minute
//! buckets instead of 360. The sums are equal because every event is counted in every tier.

use std::cell::RefCell;
use std::sync::Arc;

use crate::aggregate::{Counts, EVICTED_COUNTS};
use crate::aggregator::Aggregator;
use crate::cache::{CountsCache, final_before};
use crate::config::Layout;
use crate::error::QueryError;
use crate::head::MotHead;
use crate::partition::PartitionState;
use crate::plan::WindowPlan;
use crate::state::{MotState, read_mot_counts};
use crate::topology::MotIdx;

/// Reads MOTs' counts over a fixed set of windows ending at one instant, on demand.
#[derive(Debug)]
pub struct CountsReader<'c> {
    parts: Vec<Arc<PartitionState>>,
    /// Per partition: where its final (no longer changing) event time ends.
    finals: Vec<Option<i64>>,
    plans: Vec<WindowPlan>,
    /// Per MOT: a partition holding (or that held) its data is being rebuilt. Empty when no
    /// partition is.
    warming: Vec<bool>,
    mot_count: usize,
    cache: Option<RefCell<&'c mut CountsCache>>,
}

/// A window's final part is cached only when it is at least this many buckets.
const MIN_CACHED: i64 = 4;

impl CountsReader<'_> {
    /// MOT `mot`'s counts over window number `w` (an index into the windows asked for),
    /// merged over all partitions; zero for an index out of range.
    pub fn get(&self, w: usize, mot: MotIdx) -> Counts {
        let Some(mut plan) = self.plans.get(w).copied() else {
            return Counts::default();
        };
        let planned = plan;
        loop {
            let mut acc = Counts::default();
            let mut evicted = false;
            for (p, fin) in self.parts.iter().zip(&self.finals) {
                let read = match (&self.cache, *fin) {
                    (Some(cache), Some(fin)) if plan == planned => {
                        self.cached(cache, p, fin, w, mot, &plan)
                    }
                    _ => mot_counts(p, mot, &plan),
                };
                match read {
                    Some(c) => acc.add(c),
                    None => evicted = true,
                }
            }
            // Only when `now_ms` lags the writers: re-read coarser, as status views do.
            let next = self
                .parts
                .first()
                .filter(|_| evicted)
                .and_then(|p| plan.coarsen(&p.shared.layout, EVICTED_COUNTS));
            match next {
                Some(n) => plan = n,
                None => return acc,
            }
        }
    }

    /// Whether the MOT's numbers are incomplete because a partition is being rebuilt.
    #[inline]
    pub fn warming(&self, mot: MotIdx) -> bool {
        self.warming.get(mot.0 as usize).copied().unwrap_or(false)
    }

    /// Where the MOT's data begins: its earliest event time counted in any partition, ms;
    /// `None` without data. A load per partition.
    pub fn data_since(&self, mot: MotIdx) -> Option<i64> {
        self.parts
            .iter()
            .filter_map(|p| p.heads.get(mot.0 as usize).and_then(MotHead::earliest_ms))
            .min()
    }

    /// One partition's counts, the final part from (and into) the cache.
    fn cached(
        &self,
        cache: &RefCell<&mut CountsCache>,
        p: &PartitionState,
        fin: i64,
        w: usize,
        mot: MotIdx,
        plan: &WindowPlan,
    ) -> Option<Counts> {
        let l = &p.shared.layout;
        let r = plan.counts;
        let tier = l.counter.get(r.tier)?;
        let fl = (fin.div_euclid(tier.res_ms) - 1).min(r.last);
        let i = mot.0 as usize;
        let Some((head, ring)) = mot_windows(p, i) else {
            return Some(Counts::default());
        };
        if fl < r.first + MIN_CACHED {
            return mot_counts(p, mot, plan);
        }
        let mut cache = cache.borrow_mut();
        let Some(e) = cache
            .parts
            .get_mut(&p.id())
            .and_then(|c| c.entries.get_mut(w * self.mot_count + i))
        else {
            return mot_counts(p, mot, plan);
        };
        let span = |a: i64, b: i64| read_span(l, head, ring, r.tier, a, b);
        let reuse = e.valid
            && e.tier == r.tier
            && e.first <= r.first
            && r.first <= e.frozen_last + 1
            && e.frozen_last <= fl;
        // Invalid until re-read completely: an eviction below leaves nothing half-updated.
        e.valid = false;
        let mut sum = e.sum;
        if reuse {
            // The window slid: take out the buckets that left it.
            if e.first < r.first {
                match span(e.first, r.first - 1) {
                    Some(gone) => {
                        sum.successes = sum.successes.saturating_sub(gone.successes);
                        sum.failures = sum.failures.saturating_sub(gone.failures);
                    }
                    None => sum = span(r.first, e.frozen_last)?,
                }
            }
            // More buckets became final: add them.
            if e.frozen_last < fl {
                sum.add(span(e.frozen_last + 1, fl)?);
            }
        } else {
            sum = span(r.first, fl)?;
        }
        *e = crate::cache::Entry {
            valid: true,
            tier: r.tier,
            first: r.first,
            frozen_last: fl,
            sum,
        };
        let mut total = sum;
        if fl < r.last {
            total.add(span(fl + 1, r.last)?);
        }
        Some(total)
    }
}

/// One partition's counts of `mot` over the plan's counter range; `None` if a bucket in it
/// had been evicted.
fn mot_counts(p: &PartitionState, mot: MotIdx, plan: &WindowPlan) -> Option<Counts> {
    let Some((head, ring)) = mot_windows(p, mot.0 as usize) else {
        return Some(Counts::default());
    };
    let l = &p.shared.layout;
    let r = plan.counts;
    read_span(l, head, ring, r.tier, r.first, r.last).or_else(|| {
        let tier = l.counter.get(r.tier)?;
        read_mot_counts(head, r.tier, tier, ring, r.first, r.last)
    })
}

/// MOT `i`'s head and ring (if allocated) in one partition; `None` when its counts there are
/// zero: an index outside the topology, or a MOT never seen in this partition (its head is
/// untouched and it has no ring).
pub(crate) fn mot_windows(p: &PartitionState, i: usize) -> Option<(&MotHead, Option<&MotState>)> {
    let head = p.heads.get(i)?;
    let ring = p.mots.get(i).and_then(|m| m.get()).map(|m| &**m);
    (ring.is_some() || head.touched()).then_some((head, ring))
}

/// Buckets `first..=last` of counter tier `k`, with whole aligned buckets of coarser tiers
/// standing in for runs of tier-`k` buckets. `None` if a bucket read had been evicted.
pub(crate) fn read_span(
    l: &Layout,
    head: &MotHead,
    ring: Option<&MotState>,
    k: usize,
    first: i64,
    last: i64,
) -> Option<Counts> {
    if first > last {
        return Some(Counts::default());
    }
    let tier = l.counter.get(k)?;
    if let Some(coarse) = l.counter.get(k + 1)
        && coarse.res_ms % tier.res_ms == 0
    {
        let f = coarse.res_ms / tier.res_ms;
        // Coarse buckets lying wholly inside the range; the ends stay at tier k. The range's
        // end is never rounded up, so events ahead of `now` (within the skew) stay out.
        let cfirst = first.div_euclid(f) + i64::from(first.rem_euclid(f) != 0);
        let clast = (last + 1).div_euclid(f) - 1;
        if f > 1 && cfirst <= clast {
            let mut c = Counts::default();
            if first < cfirst * f {
                c.add(read_mot_counts(head, k, tier, ring, first, cfirst * f - 1)?);
            }
            c.add(read_span(l, head, ring, k + 1, cfirst, clast)?);
            if (clast + 1) * f <= last {
                c.add(read_mot_counts(head, k, tier, ring, (clast + 1) * f, last)?);
            }
            return Some(c);
        }
    }
    read_mot_counts(head, k, tier, ring, first, last)
}

/// Successes and failures of every MOT over each of several windows ending at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkCounts {
    mot_count: usize,
    /// The windows asked for, ms, in the order asked.
    pub windows_ms: Vec<u64>,
    /// `counts[w * mot_count + m]`.
    counts: Vec<Counts>,
    /// Per MOT; empty when no partition is warming.
    warming: Vec<bool>,
    /// Per MOT: where its data begins (see [`CountsReader::data_since`]); empty: unknown.
    data_since: Vec<Option<i64>>,
}

impl BulkCounts {
    /// MOT `mot`'s counts over window number `w` (an index into `windows_ms`); zero for an
    /// index out of range.
    #[inline]
    pub fn get(&self, w: usize, mot: MotIdx) -> Counts {
        self.counts
            .get(w * self.mot_count + mot.0 as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Whether the MOT's numbers are incomplete because a partition is being rebuilt.
    #[inline]
    pub fn warming(&self, mot: MotIdx) -> bool {
        self.warming.get(mot.0 as usize).copied().unwrap_or(false)
    }

    /// Where the MOT's data begins (see [`CountsReader::data_since`]).
    #[inline]
    pub fn data_since(&self, mot: MotIdx) -> Option<i64> {
        self.data_since.get(mot.0 as usize).copied().flatten()
    }

    /// Sets where each MOT's data begins (by MOT index), for tests of consumers.
    pub fn with_data_since(mut self, data_since: Vec<Option<i64>>) -> Self {
        self.data_since = data_since;
        self
    }

    /// Bulk counts from values, for tests and benchmarks of their consumers:
    /// `counts[w * mot_count + m]`, `warming` per MOT or empty.
    pub fn from_parts(
        mot_count: usize,
        windows_ms: Vec<u64>,
        counts: Vec<Counts>,
        warming: Vec<bool>,
    ) -> Self {
        Self {
            mot_count,
            windows_ms,
            counts,
            warming,
            data_since: Vec::new(),
        }
    }

    /// MOTs covered.
    pub fn mot_count(&self) -> usize {
        self.mot_count
    }
}

impl Aggregator {
    /// A reader of MOTs' counts over `windows_ms` ending at `now_ms`: the same numbers as
    /// [`Aggregator::status_mot`]'s counts for each window, except when `now_ms` lags the
    /// writers so far that the finest tier has already evicted buckets inside a coarser
    /// bucket of the window: status views then re-read the whole window coarser (a wider
    /// span), this reader only that part. Each window in 1..=longest counter retention.
    pub fn counts_reader(
        &self,
        windows_ms: &[u64],
        now_ms: i64,
    ) -> Result<CountsReader<'static>, QueryError> {
        let n = self.topology().mot_count();
        let plans = windows_ms
            .iter()
            .map(|&w| self.plan(w, now_ms))
            .collect::<Result<Vec<_>, _>>()?;
        let parts = self.partitions();
        let warming = self.affected_mots(&parts);
        Ok(CountsReader {
            finals: parts.iter().map(|p| final_before(p)).collect(),
            parts,
            plans,
            warming,
            mot_count: n,
            cache: None,
        })
    }

    /// [`Aggregator::counts_reader`] keeping the sums of final buckets in `cache` between
    /// calls (pass the same windows each time): a window's buckets older than its
    /// partition's watermark minus the allowed lateness never change, so a long window costs
    /// its last few buckets per read instead of all of them. Same numbers.
    pub fn counts_reader_cached<'c>(
        &self,
        windows_ms: &[u64],
        now_ms: i64,
        cache: &'c mut CountsCache,
    ) -> Result<CountsReader<'c>, QueryError> {
        let r = self.counts_reader(windows_ms, now_ms)?;
        cache.sync(&r.parts, windows_ms.len() * r.mot_count);
        Ok(CountsReader {
            parts: r.parts,
            finals: r.finals,
            plans: r.plans,
            warming: r.warming,
            mot_count: r.mot_count,
            cache: Some(RefCell::new(cache)),
        })
    }

    /// Every MOT's counts over each of `windows_ms` ending at `now_ms`, read at once.
    pub fn counts_bulk(&self, windows_ms: &[u64], now_ms: i64) -> Result<BulkCounts, QueryError> {
        let r = self.counts_reader(windows_ms, now_ms)?;
        let n = r.mot_count;
        let mut counts = Vec::with_capacity(n * windows_ms.len());
        for w in 0..windows_ms.len() {
            counts.extend((0..n).map(|m| r.get(w, MotIdx(m as u32))));
        }
        let data_since = (0..n).map(|m| r.data_since(MotIdx(m as u32))).collect();
        Ok(BulkCounts {
            mot_count: n,
            windows_ms: windows_ms.to_vec(),
            counts,
            warming: r.warming,
            data_since,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::one_experience;
    use crate::{Aggregator, MotIdx, MotKey, Observation, PartitionId, WindowConfig};

    fn obs(mot: u32, t: i64, success: bool) -> Observation<'static> {
        Observation::new(MotKey::Known(MotIdx(mot)), t, success)
    }

    #[test]
    fn bulk_counts_equal_each_mots_status_counts_at_every_window_and_instant() {
        let agg = Aggregator::new(one_experience(3), WindowConfig::default()).expect("aggregator");
        // Half a second into a ten-minute block: one-bucket ends at both coarser tiers.
        let now = 1_700_000_400_000i64 + 500;
        // Three days of history, denser towards now, in time order as a live writer sees it;
        // the last few events a little ahead of now (within the future skew).
        let mut times: Vec<i64> = (0..3 * 24 * 30)
            .map(|i| now - 3 * 86_400_000 + i * 120_000 + 7)
            .collect();
        times.extend((0..6 * 360).map(|i| now - 6 * 3_600_000 + i * 10_000 + 13));
        times.extend((0..2_400).map(|i| now - 600_000 + i * 250));
        times.extend([now + 1_000, now + 30_000]);
        times.sort_unstable();
        let p0 = agg.partition(PartitionId(0));
        let p1 = agg.partition(PartitionId(1));
        for (k, &t) in times.iter().enumerate() {
            let p = if k % 3 == 0 { &p1 } else { &p0 };
            let mut w = p.writer();
            w.apply(&obs((k % 2) as u32, t, k % 7 != 0), t.min(now));
        }
        let windows = [
            1_000,
            59_000,
            60_000,
            61_500,
            300_000,
            300_500,
            1_800_000,
            3_600_000,
            7_200_000,
            21_600_000,
            86_400_000,
            259_200_000,
        ];
        for at in (0..8).map(|k| now - k * 7_777).chain([now - 61_500]) {
            let b = agg.counts_bulk(&windows, at).expect("bulk");
            for (wi, &w) in windows.iter().enumerate() {
                for m in 0..3 {
                    let s = agg.status_mot(MotIdx(m), w, at).expect("status");
                    let c = b.get(wi, MotIdx(m));
                    assert_eq!(
                        (c.successes, c.failures),
                        (s.successes, s.failures),
                        "window {w} at now{:+} mot {m}",
                        at - now
                    );
                }
            }
        }
        assert!(
            b_amount(&agg, now) > 1_000,
            "the test data reaches the long windows"
        );
    }

    fn b_amount(agg: &Aggregator, now: i64) -> u64 {
        let b = agg.counts_bulk(&[259_200_000], now).expect("bulk");
        b.get(0, MotIdx(0)).amount() + b.get(0, MotIdx(1)).amount()
    }

    #[test]
    fn data_since_is_the_earliest_event_time_over_partitions() {
        let agg = Aggregator::new(one_experience(2), WindowConfig::default()).expect("aggregator");
        let now = 1_700_000_000_000i64;
        for (p, t) in [(0, now - 5_000), (1, now - 9_000), (1, now - 1_000)] {
            agg.partition(PartitionId(p))
                .writer()
                .apply(&obs(0, t, true), now);
        }
        let r = agg.counts_reader(&[60_000], now).expect("reader");
        assert_eq!(r.data_since(MotIdx(0)), Some(now - 9_000));
        assert_eq!(r.data_since(MotIdx(1)), None);
        let b = agg.counts_bulk(&[60_000], now).expect("bulk");
        assert_eq!(b.data_since(MotIdx(0)), Some(now - 9_000));
        let s = agg.status_mot(MotIdx(0), 60_000, now).expect("status");
        assert_eq!(s.data_since_ms, Some(now - 9_000));
        // A future-dated event is rejected, not data.
        agg.partition(PartitionId(0))
            .writer()
            .apply(&obs(1, now + 3_600_000, true), now);
        assert_eq!(
            agg.counts_bulk(&[60_000], now)
                .expect("bulk")
                .data_since(MotIdx(1)),
            None
        );
    }

    #[test]
    fn a_rebuilding_partition_marks_its_mots_warming() {
        let agg = Aggregator::new(one_experience(2), WindowConfig::default()).expect("aggregator");
        let now = 1_700_000_000_000i64;
        agg.begin_rebuild(PartitionId(0))
            .writer()
            .apply(&obs(1, now, true), now);
        let r = agg.counts_reader(&[60_000], now).expect("reader");
        assert!(r.warming(MotIdx(1)) && !r.warming(MotIdx(0)));
        assert_eq!(r.get(0, MotIdx(1)).successes, 1);
        agg.finish_rebuild(PartitionId(0));
        assert!(
            !agg.counts_reader(&[60_000], now)
                .expect("reader")
                .warming(MotIdx(1))
        );
    }
}

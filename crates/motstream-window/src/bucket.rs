//! Detail buckets: the per-MOT latency histogram, failure reasons, channels and late/rejected
//! counts of one detail-tier bucket, and the per-experience MOTs-per-SCO bucket. Both rotate
//! under the seqlock of [`crate::ring`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::histogram::{
    GROUPS, LATENCY_BINS, LatencyHistogram, MPS_BINS, group_bins, group_of, latency_bin, mps_bin,
};
use crate::labels::{LabelCount, LabelSlots};
use crate::ring::{Seen, bump, claim, read};
use crate::snapshot::DetailRaw;

/// Counter index of successes in a MOT's counter slot.
pub(crate) const SUCCESS: usize = 0;
/// Counter index of failures in a MOT's counter slot.
pub(crate) const FAILURE: usize = 1;
/// Counter indices in an experience's counter slot.
pub(crate) const STARTED: usize = 0;
pub(crate) const COMPLETED: usize = 1;
pub(crate) const ABANDONED: usize = 2;
/// Counter indices in a MOT's funnel slot.
pub(crate) const REACHED: usize = 0;
pub(crate) const ABANDONED_HERE: usize = 1;

/// One MOT detail bucket (~1.6 KiB).
#[derive(Debug)]
pub(crate) struct DetailSlot {
    tag: AtomicU32,
    late: AtomicU32,
    future: AtomicU32,
    max_ms: AtomicU32,
    /// Bit g = histogram group g has a non-zero bin (readers skip the rest).
    groups: AtomicU32,
    hist: [AtomicU32; LATENCY_BINS],
    reasons: LabelSlots<1>,
    /// Per channel: successes, failures.
    channels: LabelSlots<2>,
}

/// The writer's memo of the detail slot it last claimed for one MOT in one detail tier: that
/// slot's tag and the header values it holds. Per event, a detail tier then costs the one
/// cache line of the latency bin instead of two (the slot's header too): with thousands of
/// MOTs the detail rings do not fit in the core's cache, so every line is a miss.
///
/// Valid because the partition's one writer is the only one to claim or reset its slots,
/// and every claim of a MOT detail slot goes through the memo of its tier (a claim of the
/// same slot for a newer bucket replaces the memo; a claim of another slot of the tier
/// replaces it too, so the memo never outlives its slot's bucket).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotMemo {
    tag: u32,
    groups: u32,
    max_ms: u32,
}

impl Default for SlotMemo {
    fn default() -> Self {
        Self {
            // No bucket's tag: tags are 31 bits.
            tag: u32::MAX,
            groups: 0,
            max_ms: 0,
        }
    }
}

/// What a reader accumulates from detail buckets of one partition (label ids are the
/// partition's). Latency goes straight into a [`LatencyHistogram`].
#[derive(Debug, Default)]
pub(crate) struct DetailIds {
    pub late: u64,
    pub future: u64,
    pub reasons: Vec<LabelCount<1>>,
    pub channels: Vec<LabelCount<2>>,
}

impl DetailSlot {
    pub fn new(tag: u32) -> Self {
        Self {
            tag: AtomicU32::new(tag),
            late: AtomicU32::new(0),
            future: AtomicU32::new(0),
            max_ms: AtomicU32::new(0),
            groups: AtomicU32::new(0),
            hist: [const { AtomicU32::new(0) }; LATENCY_BINS],
            reasons: LabelSlots::new(),
            channels: LabelSlots::new(),
        }
    }

    /// Writer: see [`crate::ring::claim`]. Only through [`DetailSlot::claim_memo`], which
    /// keeps the writer's memo true.
    #[inline]
    fn claim(&self, want: u32) -> bool {
        claim(&self.tag, want, || {
            // Relaxed: published by the release store of the tag in `claim`.
            let groups = self.groups.load(Ordering::Relaxed);
            for c in [&self.late, &self.future, &self.max_ms, &self.groups] {
                c.store(0, Ordering::Relaxed);
            }
            for g in (0..GROUPS).filter(|g| groups & (1 << g) != 0) {
                for c in &self.hist[group_bins(g)] {
                    // Relaxed: as above; only non-empty groups need zeroing.
                    c.store(0, Ordering::Relaxed);
                }
            }
            self.reasons.zero();
            self.channels.zero();
        })
    }

    /// Writer: [`DetailSlot::claim`] through the writer's memo of this slot's tier, which
    /// skips the slot's header while the memo says the slot already holds `want`.
    #[inline]
    pub fn claim_memo(&self, want: u32, memo: &mut SlotMemo) -> bool {
        if memo.tag == want {
            return true;
        }
        if !self.claim(want) {
            return false;
        }
        // Relaxed: the single writer reads its own stores.
        *memo = SlotMemo {
            tag: want,
            groups: self.groups.load(Ordering::Relaxed),
            max_ms: self.max_ms.load(Ordering::Relaxed),
        };
        true
    }

    /// Writer: counts one latency in the bucket claimed through `memo`.
    #[inline]
    pub fn record_latency(&self, ms: u32, memo: &mut SlotMemo) {
        let bin = latency_bin(ms);
        bump(&self.hist[bin], 1);
        // Relaxed: single writer. A reader may see the count before the group bit (it then
        // misses that one value, as if it had read a moment earlier) but never a stale bit
        // over a reset bin: resets happen under the seqlock. Stores only, from the memo:
        // loading them would miss the cache once per tier per event.
        let bit = 1 << group_of(bin);
        if memo.groups & bit == 0 {
            memo.groups |= bit;
            self.groups.store(memo.groups, Ordering::Relaxed);
        }
        // Relaxed: single writer; a standalone value.
        if ms > memo.max_ms {
            memo.max_ms = ms;
            self.max_ms.store(ms, Ordering::Relaxed);
        }
    }

    #[inline]
    pub fn record_reason(&self, id: Option<u16>) {
        self.reasons.add(id, 0);
    }

    #[inline]
    pub fn record_channel(&self, id: Option<u16>, success: bool) {
        self.channels.add(id, usize::from(!success));
    }

    pub fn add_late(&self) {
        bump(&self.late, 1);
    }

    pub fn add_future(&self) {
        bump(&self.future, 1);
    }

    /// Reader: adds the bucket into `latency` and `out` if the slot holds bucket `want`.
    /// On [`Seen::Evicted`] the accumulators may hold part of a newer bucket: the caller
    /// discards them (the query is re-planned).
    pub fn read_into(
        &self,
        want: u32,
        latency: &mut LatencyHistogram,
        out: &mut DetailIds,
    ) -> Seen<()> {
        read(&self.tag, want, || {
            // Relaxed loads: validated by the seqlock in `read`.
            out.late += u64::from(self.late.load(Ordering::Relaxed));
            out.future += u64::from(self.future.load(Ordering::Relaxed));
            let groups = self.groups.load(Ordering::Relaxed);
            latency.add_atomic_groups(&self.hist, groups, self.max_ms.load(Ordering::Relaxed));
            self.reasons.add_into(&mut out.reasons);
            self.channels.add_into(&mut out.channels);
        })
    }
}

/// One experience counter bucket: journeys started, completed and abandoned, and the
/// impact-weighted failures of its MOTs (weight × failures, in 1/256 units).
#[derive(Debug)]
pub(crate) struct ExpSlot {
    tag: AtomicU32,
    journeys: [AtomicU32; 3],
    weighted_failures: AtomicU64,
}

impl ExpSlot {
    pub fn new(tag: u32) -> Self {
        Self {
            tag: AtomicU32::new(tag),
            journeys: [const { AtomicU32::new(0) }; 3],
            weighted_failures: AtomicU64::new(0),
        }
    }

    /// Writer: see [`crate::ring::claim`].
    #[inline]
    pub fn claim(&self, want: u32) -> bool {
        claim(&self.tag, want, || {
            // Relaxed: published by the release store of the tag in `claim`.
            for c in &self.journeys {
                c.store(0, Ordering::Relaxed);
            }
            self.weighted_failures.store(0, Ordering::Relaxed);
        })
    }

    /// Adds one to journey counter `i` (STARTED, COMPLETED, ABANDONED).
    pub fn add_journey(&self, i: usize) {
        bump(&self.journeys[i], 1);
    }

    /// Adds one failure of weight `w` (1/256 units).
    #[inline]
    pub fn add_weighted_failure(&self, w: u64) {
        // Relaxed: single writer; readers tolerate any recent value.
        let c = &self.weighted_failures;
        c.store(
            c.load(Ordering::Relaxed).saturating_add(w),
            Ordering::Relaxed,
        );
    }

    /// Reader: `(journeys, weighted failures)` if the slot holds bucket `want`.
    pub fn read(&self, want: u32) -> Seen<([u32; 3], u64)> {
        // Relaxed loads: validated by the seqlock in `read`.
        read(&self.tag, want, || {
            (
                std::array::from_fn(|i| self.journeys[i].load(Ordering::Relaxed)),
                self.weighted_failures.load(Ordering::Relaxed),
            )
        })
    }
}

/// One experience detail bucket: the MOTs-per-SCO histogram.
#[derive(Debug)]
pub(crate) struct MpsSlot {
    tag: AtomicU32,
    max: AtomicU32,
    bins: [AtomicU32; MPS_BINS],
}

impl MpsSlot {
    pub fn new(tag: u32) -> Self {
        Self {
            tag: AtomicU32::new(tag),
            max: AtomicU32::new(0),
            bins: [const { AtomicU32::new(0) }; MPS_BINS],
        }
    }

    /// Writer: see [`crate::ring::claim`].
    pub fn claim(&self, want: u32) -> bool {
        claim(&self.tag, want, || {
            // Relaxed: published by the release store of the tag in `claim`.
            self.max.store(0, Ordering::Relaxed);
            for c in &self.bins {
                c.store(0, Ordering::Relaxed);
            }
        })
    }

    pub fn record(&self, n: u32) {
        bump(&self.bins[mps_bin(n)], 1);
        // Relaxed: single writer.
        if n > self.max.load(Ordering::Relaxed) {
            self.max.store(n, Ordering::Relaxed);
        }
    }

    /// Reader: the bins and largest count if the slot holds bucket `want`.
    pub fn read(&self, want: u32) -> Seen<([u32; MPS_BINS], u32)> {
        // Relaxed loads: validated by the seqlock in `read`.
        read(&self.tag, want, || {
            (
                std::array::from_fn(|i| self.bins[i].load(Ordering::Relaxed)),
                self.max.load(Ordering::Relaxed),
            )
        })
    }
}

// Raw access for [`crate::snapshot`]. `raw` is called with the partition's writer lock held
// (the single writer's own values, so relaxed loads are exact); `set_raw` on a state no
// reader can see yet (the aggregator's registry, a lock, publishes it later). Relaxed
// throughout for those reasons.

impl DetailSlot {
    pub(crate) fn raw_tag(&self) -> u32 {
        self.tag.load(Ordering::Relaxed)
    }

    pub(crate) fn raw(&self) -> DetailRaw {
        let ld = |c: &AtomicU32| c.load(Ordering::Relaxed);
        DetailRaw {
            tag: ld(&self.tag),
            late: ld(&self.late),
            future: ld(&self.future),
            max_ms: ld(&self.max_ms),
            hist: self
                .hist
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let n = ld(c);
                    (n != 0).then_some((i as u16, n))
                })
                .collect(),
            reasons: self.reasons.raw(),
            channels: self.channels.raw(),
        }
    }

    /// Bins must be below [`LATENCY_BINS`] (checked by the decoder; others are ignored).
    pub(crate) fn set_raw(&self, r: &DetailRaw) {
        let st = |c: &AtomicU32, v: u32| c.store(v, Ordering::Relaxed);
        st(&self.tag, r.tag);
        st(&self.late, r.late);
        st(&self.future, r.future);
        st(&self.max_ms, r.max_ms);
        let mut groups = 0u32;
        for &(bin, n) in &r.hist {
            if let Some(c) = self.hist.get(usize::from(bin)) {
                st(c, n);
                groups |= 1 << group_of(usize::from(bin));
            }
        }
        st(&self.groups, groups);
        self.reasons.set_raw(&r.reasons);
        self.channels.set_raw(&r.channels);
    }
}

impl ExpSlot {
    pub(crate) fn raw_tag(&self) -> u32 {
        self.tag.load(Ordering::Relaxed)
    }

    pub(crate) fn raw(&self) -> (u32, [u32; 3], u64) {
        (
            self.tag.load(Ordering::Relaxed),
            std::array::from_fn(|i| self.journeys[i].load(Ordering::Relaxed)),
            self.weighted_failures.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn set_raw(&self, tag: u32, journeys: [u32; 3], weighted: u64) {
        self.tag.store(tag, Ordering::Relaxed);
        for (c, v) in self.journeys.iter().zip(journeys) {
            c.store(v, Ordering::Relaxed);
        }
        self.weighted_failures.store(weighted, Ordering::Relaxed);
    }
}

impl MpsSlot {
    pub(crate) fn raw_tag(&self) -> u32 {
        self.tag.load(Ordering::Relaxed)
    }

    /// Tag, largest count and the non-zero bins.
    pub(crate) fn raw(&self) -> (u32, u32, Vec<(u8, u32)>) {
        let bins = self
            .bins
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n != 0).then_some((i as u8, n))
            })
            .collect();
        (
            self.tag.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
            bins,
        )
    }

    /// Bins must be below [`MPS_BINS`] (checked by the decoder; others are ignored).
    pub(crate) fn set_raw(&self, tag: u32, max: u32, bins: &[(u8, u32)]) {
        self.tag.store(tag, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
        for &(b, n) in bins {
            if let Some(c) = self.bins.get(usize::from(b)) {
                c.store(n, Ordering::Relaxed);
            }
        }
    }
}

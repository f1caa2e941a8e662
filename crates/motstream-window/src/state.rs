//! The windows of one key in one partition: a MOT's counter and detail rings, and an
//! experience's journey rings. Written by the partition's single writer, read by anyone.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::aggregate::Counts;
use crate::bucket::{DetailIds, DetailSlot, ExpSlot, MpsSlot, SlotMemo};
use crate::config::{Layout, Tier};
use crate::head::{ExpHead, MotHead};
use crate::histogram::{CountHistogram, LatencyHistogram};
use crate::ring::{CounterSlot, Seen, for_each_bucket, new_slots};

/// A MOT's windows in one partition. Counters are allocated with the MOT's first event;
/// details with its first event that carries any (latency, reason, channel, late, rejected);
/// the journey funnel with the first journey that reaches it or is abandoned at it.
#[derive(Debug)]
pub(crate) struct MotState {
    counters: Box<[CounterSlot<2>]>,
    detail: OnceLock<Box<[DetailSlot]>>,
    /// Per counter bucket: journeys that reached this MOT (their first interaction with it)
    /// and journeys abandoned with this MOT as their last, at the abandonment time. On the
    /// counter tiers, like the experience's journey counts, so that a funnel step and the
    /// journeys started it is compared with cover the same span. Apart from `counters`
    /// because most MOT traffic carries no journey id, and those MOTs never pay for it.
    funnel: OnceLock<Box<[CounterSlot<2>]>>,
    /// Since the partition's state was created; never reset by rotation.
    pub late_total: AtomicU64,
    pub future_total: AtomicU64,
}

impl MotState {
    pub fn new(l: &Layout, t_ms: i64) -> Self {
        Self {
            counters: new_slots(&l.counter, l.counter_slots, t_ms, CounterSlot::new),
            detail: OnceLock::new(),
            funnel: OnceLock::new(),
            late_total: AtomicU64::new(0),
            future_total: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn counters(&self) -> &[CounterSlot<2>] {
        &self.counters
    }

    /// The detail slots, allocating them around `t_ms` on first use.
    #[inline]
    pub fn detail(&self, l: &Layout, t_ms: i64) -> &[DetailSlot] {
        self.detail
            .get_or_init(|| new_slots(&l.detail, l.detail_slots, t_ms, DetailSlot::new))
    }

    /// The funnel slots, allocating them around `t_ms` on first use.
    #[inline]
    pub fn funnel(&self, l: &Layout, t_ms: i64) -> &[CounterSlot<2>] {
        self.funnel
            .get_or_init(|| new_slots(&l.counter, l.counter_slots, t_ms, CounterSlot::new))
    }

    /// `[reached, abandoned here]` over buckets `first..=last` of counter tier `tier`;
    /// `None` if one was evicted.
    pub fn read_funnel(&self, tier: &Tier, first: i64, last: i64) -> Option<[u64; 2]> {
        let mut n = [0u64; 2];
        let Some(slots) = self.funnel.get() else {
            return Some(n);
        };
        let complete = for_each_bucket(tier, first, last, |slot, tag| {
            match slots.get(slot).map(|s| s.read(tag)) {
                Some(Seen::Hit(v)) => {
                    for (acc, x) in n.iter_mut().zip(v) {
                        *acc += u64::from(x);
                    }
                    true
                }
                Some(Seen::Empty) | None => true,
                Some(Seen::Evicted) => false,
            }
        });
        complete.then_some(n)
    }

    /// Adds buckets `first..=last` of a detail tier into `out`; `false` if one was evicted.
    pub fn read_detail(
        &self,
        tier: &Tier,
        first: i64,
        last: i64,
        latency: &mut LatencyHistogram,
        out: &mut DetailIds,
    ) -> bool {
        let Some(detail) = self.detail.get() else {
            return true;
        };
        for_each_bucket(tier, first, last, |slot, tag| {
            detail.get(slot).map(|d| d.read_into(tag, latency, out)) != Some(Seen::Evicted)
        })
    }

    /// Heap bytes owned by this MOT's windows.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of_val::<[CounterSlot<2>]>(&self.counters)
            + self
                .detail
                .get()
                .map_or(0, |d| size_of_val::<[DetailSlot]>(d))
            + self
                .funnel
                .get()
                .map_or(0, |f| size_of_val::<[CounterSlot<2>]>(f))
    }
}

impl MotState {
    /// For [`crate::snapshot`]: the detail slots if allocated.
    pub(crate) fn detail_if_any(&self) -> Option<&[DetailSlot]> {
        self.detail.get().map(|d| &**d)
    }

    /// For [`crate::snapshot`]: the funnel slots if allocated.
    pub(crate) fn funnel_if_any(&self) -> Option<&[CounterSlot<2>]> {
        self.funnel.get().map(|f| &**f)
    }
}

/// An experience's journey windows in one partition.
#[derive(Debug)]
pub(crate) struct ExpState {
    counters: Box<[ExpSlot]>,
    mps: Box<[MpsSlot]>,
}

impl ExpState {
    pub fn new(l: &Layout, t_ms: i64) -> Self {
        Self {
            counters: new_slots(&l.counter, l.counter_slots, t_ms, ExpSlot::new),
            mps: new_slots(&l.detail, l.detail_slots, t_ms, MpsSlot::new),
        }
    }

    #[inline]
    pub fn counters(&self) -> &[ExpSlot] {
        &self.counters
    }

    #[inline]
    pub fn mps(&self) -> &[MpsSlot] {
        &self.mps
    }

    /// Adds buckets `first..=last` of a detail tier into `out`; `false` if evicted.
    pub fn read_mps(&self, tier: &Tier, first: i64, last: i64, out: &mut CountHistogram) -> bool {
        for_each_bucket(tier, first, last, |slot, tag| {
            match self.mps.get(slot).map(|s| s.read(tag)) {
                Some(Seen::Hit((bins, max))) => {
                    out.add_bins(&bins, max);
                    true
                }
                Some(Seen::Empty) | None => true,
                Some(Seen::Evicted) => false,
            }
        })
    }

    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + size_of_val::<[ExpSlot]>(&self.counters)
            + size_of_val::<[MpsSlot]>(&self.mps)
    }
}

/// A MOT's counts over buckets `first..=last` of counter tier `k`, from its head and its
/// ring (if allocated); `None` if a bucket in range was evicted.
pub(crate) fn read_mot_counts(
    head: &MotHead,
    k: usize,
    tier: &Tier,
    ring: Option<&MotState>,
    first: i64,
    last: i64,
) -> Option<Counts> {
    let slots: &[CounterSlot<2>] = ring.map_or(&[], MotState::counters);
    let read = |tag: u32, index: i64| {
        slots
            .get(tier.slot(index))
            .map_or(Seen::Empty, |s| s.read(tag))
    };
    let h = head.snapshot(k, first, last, read)?;
    let mut c = Counts::default();
    if let Some([s, f]) = h.total {
        c.successes += u64::from(s);
        c.failures += u64::from(f);
    }
    let complete = slots.is_empty()
        || for_each_bucket(tier, first, last, |slot, tag| {
            if tag == h.tag && h.total.is_some() {
                return true;
            }
            match slots.get(slot).map(|s| s.read(tag)) {
                Some(Seen::Hit([s, f])) => {
                    c.successes += u64::from(s);
                    c.failures += u64::from(f);
                    true
                }
                Some(Seen::Empty) | None => true,
                Some(Seen::Evicted) => false,
            }
        });
    complete.then_some(c)
}

/// An experience's `([started, completed, abandoned], impact-weighted failures)` over
/// buckets `first..=last` of counter tier `k`, from its head and its ring (if allocated);
/// `None` if a bucket in range was evicted.
pub(crate) fn read_exp_counters(
    head: &ExpHead,
    k: usize,
    tier: &Tier,
    ring: Option<&ExpState>,
    first: i64,
    last: i64,
) -> Option<([u64; 3], u64)> {
    let slots: &[ExpSlot] = ring.map_or(&[], ExpState::counters);
    let read = |tag: u32, index: i64| match slots.get(tier.slot(index)).map(|s| s.read(tag)) {
        Some(Seen::Hit((_, w))) => Seen::Hit(w),
        Some(Seen::Evicted) => Seen::Evicted,
        Some(Seen::Empty) | None => Seen::Empty,
    };
    let h = head.snapshot(k, first, last, read)?;
    let mut journeys = [0u64; 3];
    let mut weighted = h.total.unwrap_or(0);
    let complete = slots.is_empty()
        || for_each_bucket(tier, first, last, |slot, tag| {
            match slots.get(slot).map(|s| s.read(tag)) {
                Some(Seen::Hit((j, w))) => {
                    for (acc, x) in journeys.iter_mut().zip(j) {
                        *acc += u64::from(x);
                    }
                    // The head's bucket's weighted failures came with the snapshot.
                    if !(tag == h.tag && h.total.is_some()) {
                        weighted += w;
                    }
                    true
                }
                Some(Seen::Empty) | None => true,
                Some(Seen::Evicted) => false,
            }
        });
    complete.then_some((journeys, weighted))
}

/// Relaxed increment of a statistics counter owned by the partition's single writer.
#[inline]
pub(crate) fn inc(c: &AtomicU64) {
    // Relaxed: a standalone statistic; nothing is ordered by it.
    c.fetch_add(1, Ordering::Relaxed);
}

/// Bytes of a MOT with its counter and detail rings allocated (its funnel ring, allocated
/// only when journeys reach it, is [`funnel_bytes`] more).
pub(crate) fn full_mot_bytes(l: &Layout) -> usize {
    size_of::<MotState>()
        + l.counter_slots * size_of::<CounterSlot<2>>()
        + l.detail_slots * size_of::<DetailSlot>()
        + size_of::<OnceLock<Box<MotState>>>()
        + size_of::<MotHead>()
        + l.detail.len() * size_of::<SlotMemo>()
}

/// Bytes of a MOT's journey funnel ring (16,884 with the default configuration).
pub(crate) fn funnel_bytes(l: &Layout) -> usize {
    l.counter_slots * size_of::<CounterSlot<2>>()
}

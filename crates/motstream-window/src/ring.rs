//! Bucket tags, the per-slot seqlock that makes rotation safe for concurrent readers, the
//! counter slot, and the writer's bucket cursor.
//!
//! A ring slot holds one bucket at a time; its *tag* is the low 31 bits of the bucket index
//! (event time divided by the resolution). The writer reuses a slot for a newer bucket by
//! resetting it; it never moves a slot back to an older bucket, so an event older than what
//! a tier still holds is skipped *in that tier only* and a coarser tier keeps it. Tags
//! compare modulo 2^31 ("newer" = ahead by less than 2^30 buckets, 34 years at 1 s).
//!
//! Writers: one per partition at a time (the partition's writer mutex), so counters are
//! updated with relaxed load + store, not read-modify-write instructions, and slots of
//! different partitions share no cache line.
//!
//! Readers: read a slot under a seqlock on its tag. While the writer resets a slot it sets
//! the tag's top bit (`BUSY`); a reader that sees the tag change around its loads knows the
//! bucket it wanted was evicted, and a reader never mixes the counts of two buckets.

use std::sync::atomic::{AtomicU32, Ordering, fence};

use crate::config::Tier;

const TAG_MASK: u32 = 0x7FFF_FFFF;
const BUSY: u32 = 0x8000_0000;
const HALF: u32 = 1 << 30;

/// The tag of a bucket index.
#[inline]
pub(crate) fn tag_of(index: i64) -> u32 {
    (index as u32) & TAG_MASK
}

/// How many buckets tag `a` is ahead of tag `b` (modulo 2^31).
#[inline]
pub(crate) fn tag_offset(a: u32, b: u32) -> u32 {
    a.wrapping_sub(b) & TAG_MASK
}

/// Whether tag `a` is a later bucket than tag `b` (modulo 2^31).
#[inline]
pub(crate) fn is_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b) & TAG_MASK;
    d != 0 && d < HALF
}

/// The tag given to never-used slots of a ring created around bucket `index`: 2^29 buckets
/// older, so that every bucket the ring will see in practice is newer and claims it. A
/// reader asking for that exact tag reads the slot's zeros, which is the truth.
pub(crate) fn empty_tag(index: i64) -> u32 {
    tag_of(index.wrapping_sub(1 << 29))
}

/// What a reader found in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen<T> {
    /// The slot holds the wanted bucket; its values.
    Hit(T),
    /// The slot holds an older bucket (or none): the wanted bucket has no events.
    Empty,
    /// The slot holds (or is becoming) a newer bucket: the wanted one is gone.
    Evicted,
}

/// Writer side: makes the slot hold bucket `want`, resetting it with `zero` if it held an
/// older bucket. Returns `false` (and changes nothing) if it holds a newer bucket.
#[inline]
pub(crate) fn claim(tag: &AtomicU32, want: u32, zero: impl FnOnce()) -> bool {
    // Relaxed: only the partition's single writer stores tags (writers are serialised by the
    // writer mutex, whose acquire/release orders successive writers), so it reads its own
    // last store.
    let cur = tag.load(Ordering::Relaxed);
    if cur == want {
        return true;
    }
    if !is_newer(want, cur) {
        return false;
    }
    // Seqlock write: mark busy, then the release fence orders the mark before the zeroing
    // stores, so a reader that sees any zeroed value also sees the tag changed (it re-reads
    // the tag after an acquire fence).
    tag.store(cur | BUSY, Ordering::Relaxed);
    fence(Ordering::Release);
    zero();
    // Release: a reader that acquires the new tag sees the zeroed values (or later ones).
    tag.store(want, Ordering::Release);
    true
}

/// Reader side: loads the slot's values with `load` if it holds bucket `want`.
#[inline]
pub(crate) fn read<T>(tag: &AtomicU32, want: u32, load: impl FnOnce() -> T) -> Seen<T> {
    // Acquire: pairs with the writer's release store of the tag, so the values loaded next
    // are at least as new as the reset that installed this bucket.
    let t1 = tag.load(Ordering::Acquire);
    if t1 & BUSY != 0 {
        // Mid-reset from bucket `old` to a newer one: `old` is leaving; a newer wanted bucket
        // has, at this instant, no events applied yet.
        let old = t1 & TAG_MASK;
        return if old == want || is_newer(old, want) {
            Seen::Evicted
        } else {
            Seen::Empty
        };
    }
    if t1 != want {
        return if is_newer(t1, want) {
            Seen::Evicted
        } else {
            Seen::Empty
        };
    }
    let v = load();
    // Acquire fence: if `load` saw any store made after the writer's busy mark, the mark is
    // visible to the tag load below (fence-to-fence synchronisation with the writer).
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    let t2 = tag.load(Ordering::Relaxed);
    if t2 == t1 {
        Seen::Hit(v)
    } else {
        Seen::Evicted
    }
}

/// Adds one to a counter owned by the single writer (no read-modify-write instruction).
#[inline]
pub(crate) fn bump(c: &AtomicU32, n: u32) {
    // Relaxed: single writer (see `claim`); readers tolerate any recent value.
    c.store(
        c.load(Ordering::Relaxed).saturating_add(n),
        Ordering::Relaxed,
    );
}

/// A ring slot of `N` event counters (12 bytes for `N = 2`).
#[derive(Debug)]
pub(crate) struct CounterSlot<const N: usize> {
    tag: AtomicU32,
    n: [AtomicU32; N],
}

impl<const N: usize> CounterSlot<N> {
    pub fn new(tag: u32) -> Self {
        Self {
            tag: AtomicU32::new(tag),
            n: [const { AtomicU32::new(0) }; N],
        }
    }

    /// See [`claim`].
    #[inline]
    pub fn claim(&self, want: u32) -> bool {
        claim(&self.tag, want, || {
            for c in &self.n {
                // Relaxed: published by the release store of the tag in `claim`.
                c.store(0, Ordering::Relaxed);
            }
        })
    }

    /// Adds `by` to counter `i` (< N) of the claimed bucket.
    #[inline]
    pub fn add(&self, i: usize, by: u32) {
        bump(&self.n[i], by);
    }

    /// The counters if the slot holds bucket `want`.
    #[inline]
    pub fn read(&self, want: u32) -> Seen<[u32; N]> {
        // Relaxed loads: validated by the seqlock in `read`.
        read(&self.tag, want, || {
            std::array::from_fn(|i| self.n[i].load(Ordering::Relaxed))
        })
    }
}

impl<const N: usize> CounterSlot<N> {
    /// For [`crate::snapshot`]: the tag and counters. Call with the partition's writer lock
    /// held (the single writer's own values, so relaxed loads are exact).
    pub(crate) fn raw(&self) -> (u32, [u32; N]) {
        // Relaxed: see above.
        (
            self.tag.load(Ordering::Relaxed),
            std::array::from_fn(|i| self.n[i].load(Ordering::Relaxed)),
        )
    }

    /// For [`crate::snapshot`]: sets the slot on a state no reader can see yet.
    pub(crate) fn set_raw(&self, tag: u32, n: [u32; N]) {
        // Relaxed: the state is published later by the aggregator's registry (a lock).
        self.tag.store(tag, Ordering::Relaxed);
        for (c, v) in self.n.iter().zip(n) {
            c.store(v, Ordering::Relaxed);
        }
    }
}

/// Initialises every slot of every tier of a key created around event time `t_ms`.
pub(crate) fn new_slots<S>(
    tiers: &[Tier],
    total: usize,
    t_ms: i64,
    make: impl Fn(u32) -> S,
) -> Box<[S]> {
    let mut v = Vec::with_capacity(total);
    for tier in tiers {
        let tag = empty_tag(tier.index(t_ms));
        v.extend((0..tier.cap).map(|_| make(tag)));
    }
    v.into_boxed_slice()
}

/// The writer's cache of the bucket it last located in one tier: events mostly arrive in
/// time order, so this saves two divisions per tier per event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor {
    start: i64,
    end: i64,
    slot: u32,
    tag: u32,
}

impl Default for Cursor {
    fn default() -> Self {
        // start > end: matches no time until first located.
        Self {
            start: 1,
            end: 0,
            slot: 0,
            tag: 0,
        }
    }
}

impl Cursor {
    /// The absolute slot and tag of the bucket holding `t_ms` in `tier`.
    #[inline]
    pub fn locate(&mut self, tier: &Tier, t_ms: i64) -> (usize, u32) {
        if t_ms >= self.start && t_ms < self.end {
            return (self.slot as usize, self.tag);
        }
        let index = tier.index(t_ms);
        self.start = index.saturating_mul(tier.res_ms);
        self.end = self.start.saturating_add(tier.res_ms);
        self.slot = tier.slot(index) as u32;
        self.tag = tag_of(index);
        (self.slot as usize, self.tag)
    }
}

/// Uncached [`Cursor::locate`].
pub(crate) fn locate(tier: &Tier, t_ms: i64) -> (usize, u32) {
    let index = tier.index(t_ms);
    (tier.slot(index), tag_of(index))
}

/// Calls `f(slot, tag)` for buckets `first..=last` of `tier` in order (no division per
/// bucket); stops early, returning `false`, when `f` does.
#[inline]
pub(crate) fn for_each_bucket(
    tier: &Tier,
    first: i64,
    last: i64,
    mut f: impl FnMut(usize, u32) -> bool,
) -> bool {
    let cap = i64::from(tier.cap);
    let mut rel = first.rem_euclid(cap) as usize;
    let mut tag = tag_of(first);
    let mut b = first;
    while b <= last {
        if !f(tier.offset as usize + rel, tag) {
            return false;
        }
        rel += 1;
        if rel == tier.cap as usize {
            rel = 0;
        }
        tag = tag.wrapping_add(1) & TAG_MASK;
        b += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_compare_modulo_two_pow_31() {
        assert!(is_newer(tag_of(5), tag_of(4)));
        assert!(!is_newer(tag_of(4), tag_of(5)));
        assert!(!is_newer(tag_of(4), tag_of(4)));
        let wrap = (1i64 << 31) - 1;
        assert!(is_newer(tag_of(wrap + 1), tag_of(wrap)));
        assert!(is_newer(tag_of(-1), tag_of(-2)));
        assert!(is_newer(tag_of(7), empty_tag(7 - 1000)));
    }

    #[test]
    fn stale_slot_is_reset_on_rotation_and_older_bucket_is_refused() {
        let s = CounterSlot::<2>::new(empty_tag(100));
        assert!(s.claim(tag_of(100)));
        s.add(0, 1);
        s.add(1, 2);
        assert_eq!(s.read(tag_of(100)), Seen::Hit([1, 2]));
        assert!(s.claim(tag_of(110)));
        assert_eq!(s.read(tag_of(110)), Seen::Hit([0, 0]));
        assert_eq!(s.read(tag_of(100)), Seen::Evicted);
        assert_eq!(s.read(tag_of(120)), Seen::Empty);
        assert!(
            !s.claim(tag_of(100)),
            "an older bucket never takes a slot back"
        );
    }

    #[test]
    fn busy_slot_reads_as_evicted_for_its_old_bucket_and_empty_for_newer() {
        let t = AtomicU32::new(tag_of(10) | BUSY);
        assert_eq!(read(&t, tag_of(10), || 1), Seen::Evicted);
        assert_eq!(read(&t, tag_of(11), || 1), Seen::Empty);
        assert_eq!(read(&t, tag_of(9), || 1), Seen::Evicted);
    }
}

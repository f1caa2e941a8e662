//! Hot heads: the current bucket of every counter tier of one key, in one cache line.
//!
//! Per-event writes touch only this line, which lives in a dense per-partition array indexed
//! by key ([`crate::MotIdx`] for MOTs: 1,000 MOTs = 62.5 KiB, 100,000 = 6.1 MiB; `ExpIdx` for
//! the experiences' impact-weighted failures), instead of one ring slot per tier in three
//! different pages of the key's rings. When an event opens a newer bucket in a tier, the
//! writer *rotates* that tier: it adds the head's value into the ring slot of the bucket
//! being closed and restarts the head on the new bucket. Events for buckets older than the
//! head's go to the ring directly.
//!
//! The true value of bucket `b` is `ring[b] + (head.tag == b ? head.value : 0)`. A rotation
//! moves value from the head into the ring, so a reader reads the head and the ring slot of
//! the head's bucket together under the head's seqlock (`seq`, odd while rotating); every
//! other bucket is read from the ring under its slot seqlock.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

use crate::ring::{Seen, bump, is_newer, tag_of, tag_offset};

/// Counter tiers a head holds (and so the most counter tiers a configuration may have).
pub(crate) const MAX_COUNTER_TIERS: usize = 4;

/// The counters a head keeps per tier. Writes are the single writer's relaxed load + store.
pub(crate) trait Cells: Default {
    type Value: Copy + Default;
    /// Relaxed loads (validated by the head's seqlock on the reader side).
    fn get(&self) -> Self::Value;
    fn is_zero(v: &Self::Value) -> bool;
    /// Relaxed stores of zero (inside the seqlock).
    fn clear(&self);
    fn bump(&self, which: usize, by: u64);
    fn sum(a: Self::Value, b: Self::Value) -> Self::Value;
    /// Relaxed stores of `v` (restore, on a state no reader can see yet).
    fn set(&self, v: Self::Value);
}

/// A MOT's successes and failures.
impl Cells for [AtomicU32; 2] {
    type Value = [u32; 2];
    fn get(&self) -> [u32; 2] {
        // Relaxed: see the trait.
        [
            self[0].load(Ordering::Relaxed),
            self[1].load(Ordering::Relaxed),
        ]
    }
    fn is_zero(v: &[u32; 2]) -> bool {
        *v == [0, 0]
    }
    fn clear(&self) {
        for c in self {
            // Relaxed: see the trait.
            c.store(0, Ordering::Relaxed);
        }
    }
    #[inline]
    fn bump(&self, which: usize, by: u64) {
        bump(&self[which], by as u32);
    }
    fn sum(a: [u32; 2], b: [u32; 2]) -> [u32; 2] {
        [a[0].saturating_add(b[0]), a[1].saturating_add(b[1])]
    }
    fn set(&self, v: [u32; 2]) {
        for (c, x) in self.iter().zip(v) {
            // Relaxed: see the trait.
            c.store(x, Ordering::Relaxed);
        }
    }
}

/// An experience's impact-weighted failures (1/256 units).
impl Cells for AtomicU64 {
    type Value = u64;
    fn get(&self) -> u64 {
        // Relaxed: see the trait.
        self.load(Ordering::Relaxed)
    }
    fn is_zero(v: &u64) -> bool {
        *v == 0
    }
    fn clear(&self) {
        // Relaxed: see the trait.
        self.store(0, Ordering::Relaxed);
    }
    #[inline]
    fn bump(&self, _: usize, by: u64) {
        // Relaxed: single writer.
        self.store(
            self.load(Ordering::Relaxed).saturating_add(by),
            Ordering::Relaxed,
        );
    }
    fn sum(a: u64, b: u64) -> u64 {
        a.saturating_add(b)
    }
    fn set(&self, v: u64) {
        // Relaxed: see the trait.
        self.store(v, Ordering::Relaxed);
    }
}

/// One key's current counter buckets (64 bytes, one cache line).
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Head<C> {
    /// Seqlock over rotations: odd while the writer moves value from head to ring.
    seq: AtomicU32,
    tags: [AtomicU32; MAX_COUNTER_TIERS],
    cells: [C; MAX_COUNTER_TIERS],
    /// The earliest event time ever counted here, ms (0: none yet): where this key's data
    /// begins, for the alert engine's window coverage. It fits the line's spare bytes, so
    /// keeping it costs a load and a compare per event on a line already being written.
    earliest_ms: AtomicI64,
}

/// A MOT's head: successes and failures per tier.
pub(crate) type MotHead = Head<[AtomicU32; 2]>;
/// An experience's head: impact-weighted failures per tier.
pub(crate) type ExpHead = Head<AtomicU64>;

/// Where an event's count went in one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadWrite {
    /// Counted in the head (possibly after rotating it).
    Done,
    /// Older than the head's bucket: the caller must write the ring slot.
    Older,
}

/// The head's bucket as a reader saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadSnapshot<V> {
    /// The head's tag.
    pub tag: u32,
    /// Head + ring value of the head's bucket, if that bucket is in the range read (the
    /// range scan must then skip that ring slot).
    pub total: Option<V>,
}

impl<C: Cells> Head<C> {
    /// Whether any event ever reached this head.
    pub fn touched(&self) -> bool {
        // Relaxed: a hint for listings; the first event rotates, so seq > 0 afterwards.
        self.seq.load(Ordering::Relaxed) != 0
    }

    /// Writer: notes an event time counted (see `earliest_ms`). Times ≤ 0 are ignored.
    #[inline]
    pub fn note_time(&self, t_ms: i64) {
        // Relaxed: only the partition's single writer stores it; readers want some value it
        // had, and it only ever decreases.
        let e = self.earliest_ms.load(Ordering::Relaxed);
        if t_ms > 0 && (e == 0 || t_ms < e) {
            self.earliest_ms.store(t_ms, Ordering::Relaxed);
        }
    }

    /// The earliest event time counted here, ms; `None` before the first.
    pub fn earliest_ms(&self) -> Option<i64> {
        // Relaxed: see `note_time`.
        let e = self.earliest_ms.load(Ordering::Relaxed);
        (e != 0).then_some(e)
    }

    /// Writer: adds `by` to counter `which` of bucket `tag` in tier `k`, rotating the head
    /// if `tag` is newer (or the head is empty). `rotate_into(old_tag, value)` must add a
    /// closed bucket's value into its ring slot.
    #[inline]
    pub fn add(
        &self,
        k: usize,
        tag: u32,
        which: usize,
        by: u64,
        rotate_into: impl FnOnce(u32, C::Value),
    ) -> HeadWrite {
        let (t, c) = (&self.tags[k], &self.cells[k]);
        // Relaxed: only the partition's single writer stores head fields.
        let ht = t.load(Ordering::Relaxed);
        if ht == tag {
            c.bump(which, by);
            return HeadWrite::Done;
        }
        let v = c.get();
        let empty = C::is_zero(&v);
        if !empty && !is_newer(tag, ht) {
            return HeadWrite::Older;
        }
        // Relaxed: only this writer stores `seq`.
        let seq = self.seq.load(Ordering::Relaxed);
        // Seqlock write (see `ring::claim`): odd, then a release fence orders it before the
        // moves below, then even with release.
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        if !empty {
            rotate_into(ht, v);
        }
        c.clear();
        // Relaxed: inside the seqlock; published by the release store of the even seq.
        t.store(tag, Ordering::Relaxed);
        c.bump(which, by);
        // Release: a reader that sees the even value sees the moved value.
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
        HeadWrite::Done
    }

    /// Reader: the head's bucket in tier `k` and, if it lies in `first..=last`, its total
    /// with its ring slot (read by `ring(tag, index)`), consistent under the head seqlock.
    /// `None` if that ring slot was evicted.
    pub fn snapshot(
        &self,
        k: usize,
        first: i64,
        last: i64,
        ring: impl Fn(u32, i64) -> Seen<C::Value>,
    ) -> Option<HeadSnapshot<C::Value>> {
        let mut spins = 0u32;
        loop {
            // Acquire: pairs with the writer's release store of an even seq.
            let s1 = self.seq.load(Ordering::Acquire);
            if s1.is_multiple_of(2) {
                // Relaxed: validated by the seqlock.
                let tag = self.tags[k].load(Ordering::Relaxed);
                let head = self.cells[k].get();
                let off = i64::from(tag_offset(tag, tag_of(first)));
                let in_range = off <= last - first;
                let slot = if in_range {
                    ring(tag, first + off)
                } else {
                    Seen::Empty
                };
                // Acquire fence: any store of a concurrent rotation seen above makes its odd
                // seq visible to the load below.
                fence(Ordering::Acquire);
                // Relaxed: ordered by the fence.
                if self.seq.load(Ordering::Relaxed) == s1 {
                    let total = match (in_range, slot) {
                        (false, _) => None,
                        (true, Seen::Evicted) => return None,
                        (true, Seen::Hit(r)) => Some(C::sum(head, r)),
                        (true, Seen::Empty) => Some(head),
                    };
                    return Some(HeadSnapshot { tag, total });
                }
            }
            // A rotation is a handful of stores: spin briefly, then let the writer run.
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl<C: Cells> Head<C> {
    /// For [`crate::snapshot`]: tier `k`'s tag and value. Call with the partition's writer
    /// lock held (the single writer's own values, so relaxed loads are exact).
    pub(crate) fn raw(&self, k: usize) -> (u32, C::Value) {
        match (self.tags.get(k), self.cells.get(k)) {
            // Relaxed: see above.
            (Some(t), Some(c)) => (t.load(Ordering::Relaxed), c.get()),
            _ => (0, C::Value::default()),
        }
    }

    /// For [`crate::snapshot`]: sets tier `k` on a state no reader can see yet, and marks
    /// the head touched (an even, non-zero seq) when `touched`.
    pub(crate) fn set_raw(&self, k: usize, tag: u32, v: C::Value, touched: bool) {
        if let (Some(t), Some(c)) = (self.tags.get(k), self.cells.get(k)) {
            // Relaxed: the state is published later by the aggregator's registry (a lock).
            t.store(tag, Ordering::Relaxed);
            c.set(v);
        }
        if touched {
            // Relaxed: as above.
            self.seq.store(2, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_fit_one_cache_line() {
        assert_eq!(size_of::<MotHead>(), 64);
        assert_eq!(size_of::<ExpHead>(), 64);
    }

    #[test]
    fn head_rotation_moves_the_closed_bucket_into_the_ring_once() {
        let h = MotHead::default();
        let mut moved = Vec::new();
        assert_eq!(
            h.add(0, tag_of(10), 0, 1, |t, v| moved.push((t, v))),
            HeadWrite::Done
        );
        assert_eq!(
            h.add(0, tag_of(10), 1, 1, |t, v| moved.push((t, v))),
            HeadWrite::Done
        );
        assert_eq!(
            h.add(0, tag_of(9), 0, 1, |t, v| moved.push((t, v))),
            HeadWrite::Older
        );
        assert_eq!(
            h.add(0, tag_of(12), 0, 1, |t, v| moved.push((t, v))),
            HeadWrite::Done
        );
        assert_eq!(moved, vec![(tag_of(10), [1, 1])]);
        let s = h
            .snapshot(0, 11, 12, |_, _| Seen::Empty)
            .expect("not evicted");
        assert_eq!((s.tag, s.total), (tag_of(12), Some([1, 0])));
        let s = h
            .snapshot(0, 5, 11, |_, _| Seen::Empty)
            .expect("not evicted");
        assert_eq!(s.total, None, "head bucket outside the range");
    }
}

//! Optional de-duplication by event id, for emitters without idempotent producers: an event
//! whose id was seen in the same partition within the window (event time) is dropped and
//! counted. Keys are journey ids, so a retried send lands in the same partition.
//!
//! The table is part of the partition's state: a rebuild replays the same events in the same
//! order and so rebuilds the same table.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

/// Recently seen event ids of one partition.
#[derive(Debug)]
pub(crate) struct Dedup {
    window_ms: i64,
    cap: usize,
    /// Random keys per table: ids are input, and a known hash would let a producer craft ids
    /// that collide with (and so suppress) other producers' events.
    hasher: RandomState,
    /// Hashes of the ids remembered.
    seen: HashSet<u64>,
    /// (event time, id hash) of each remembered id's first sighting, in arrival order, for
    /// expiry: one entry per member of `seen`.
    order: VecDeque<(i64, u64)>,
    /// Highest event time seen: the window ends here.
    watermark: i64,
}

impl Dedup {
    /// `window_ms` of event time; at most `cap` ids remembered (the oldest forgotten first).
    pub(crate) fn new(window_ms: i64, cap: usize) -> Self {
        Self {
            window_ms,
            cap: cap.max(1),
            hasher: RandomState::new(),
            seen: HashSet::new(),
            order: VecDeque::new(),
            watermark: i64::MIN,
        }
    }

    /// Records `id` at `event_time_ms`; true if it was already seen within the window.
    pub(crate) fn is_duplicate(&mut self, id: &str, event_time_ms: i64) -> bool {
        self.watermark = self.watermark.max(event_time_ms);
        self.expire();
        let h = self.hasher.hash_one(id);
        if !self.seen.insert(h) {
            return true;
        }
        self.order.push_back((event_time_ms, h));
        while self.seen.len() > self.cap {
            self.pop_oldest();
        }
        false
    }

    fn expire(&mut self) {
        let horizon = self.watermark.saturating_sub(self.window_ms);
        while self.order.front().is_some_and(|&(t, _)| t < horizon) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, h)) = self.order.pop_front() {
            self.seen.remove(&h);
        }
    }

    /// Ids remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_id_within_the_window_is_a_duplicate() {
        let mut d = Dedup::new(60_000, 1000);
        assert!(!d.is_duplicate("a", 1_000));
        assert!(!d.is_duplicate("b", 2_000));
        assert!(d.is_duplicate("a", 3_000));
    }

    #[test]
    fn id_older_than_the_window_is_forgotten() {
        let mut d = Dedup::new(60_000, 1000);
        assert!(!d.is_duplicate("a", 1_000));
        assert!(!d.is_duplicate("z", 70_000));
        assert!(
            !d.is_duplicate("a", 71_000),
            "a was seen 70 s ago, beyond the 60 s window"
        );
    }

    #[test]
    fn memory_is_bounded_by_the_cap() {
        let mut d = Dedup::new(i64::MAX / 2, 100);
        for i in 0..10_000 {
            assert!(!d.is_duplicate(&format!("id-{i}"), i));
        }
        assert_eq!(d.len(), 100);
        assert!(d.is_duplicate("id-9999", 10_000));
    }
}

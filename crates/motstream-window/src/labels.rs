//! Bounded label tallies: failure reasons and channels.
//!
//! Each partition interns label strings into small ids (bounded; beyond the bound a label
//! counts as "other"). Each detail bucket keeps the first [`LABEL_SLOTS`] distinct ids it
//! sees with their counts, plus an "other" count for the rest, so a bucket's tallies always
//! add up to what was recorded and merge exactly by addition. In practice a MOT has a handful
//! of failure reasons and channels per bucket; a bucket with more reports the excess under
//! "other" rather than growing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use crate::hash::FastBuild;
use crate::ring::bump;
use crate::snapshot::LabelRaw;

/// Distinct labels tallied per detail bucket before the rest counts as "other".
pub const LABEL_SLOTS: usize = 8;

/// The readable side of an interner: id → label. Written once per id by the writer.
#[derive(Debug)]
pub(crate) struct LabelTable {
    names: Box<[OnceLock<Arc<str>>]>,
}

impl LabelTable {
    pub fn new(cap: usize) -> Self {
        Self {
            names: (0..cap).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The label of an id, if interned.
    pub fn name(&self, id: u16) -> Option<&Arc<str>> {
        self.names.get(usize::from(id)).and_then(OnceLock::get)
    }

    pub fn memory_bytes(&self) -> usize {
        let interned: usize = self
            .names
            .iter()
            .filter_map(OnceLock::get)
            .map(|s| s.len() + 16)
            .sum();
        self.names.len() * size_of::<OnceLock<Arc<str>>>() + interned
    }
}

/// The writer's side of an interner: label → id. Private to the partition's writer.
#[derive(Debug)]
pub(crate) struct Interner {
    ids: HashMap<Arc<str>, u16, FastBuild>,
    cap: usize,
    max_bytes: usize,
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Interner {
    pub fn new(cap: usize, max_bytes: usize) -> Self {
        Self {
            ids: HashMap::with_hasher(FastBuild),
            cap,
            max_bytes,
        }
    }

    /// The id of `label`, interning it if there is room; `None` once the table is full.
    /// Allocates only when a new label is interned.
    #[inline]
    pub fn intern(&mut self, table: &LabelTable, label: &str) -> Option<u16> {
        let label = truncate(label, self.max_bytes);
        if let Some(&id) = self.ids.get(label) {
            return Some(id);
        }
        if self.ids.len() >= self.cap {
            return None;
        }
        let id = self.ids.len() as u16;
        let name: Arc<str> = Arc::from(label);
        // The table has `cap` entries and ids are dense, so this slot is free.
        let _ = table
            .names
            .get(usize::from(id))
            .map(|slot| slot.set(Arc::clone(&name)));
        self.ids.insert(name, id);
        Some(id)
    }
}

/// Per-bucket tallies of up to [`LABEL_SLOTS`] labels, each with `V` counters, and "other".
#[derive(Debug)]
pub(crate) struct LabelSlots<const V: usize> {
    /// 0 = free, else label id + 1.
    ids: [AtomicU16; LABEL_SLOTS],
    counts: [[AtomicU32; LABEL_SLOTS]; V],
    other: [AtomicU32; V],
}

/// One tally read from buckets: label id (`None` = other) and its counters.
pub(crate) type LabelCount<const V: usize> = (Option<u16>, [u64; V]);

impl<const V: usize> LabelSlots<V> {
    pub const fn new() -> Self {
        Self {
            ids: [const { AtomicU16::new(0) }; LABEL_SLOTS],
            counts: [const { [const { AtomicU32::new(0) }; LABEL_SLOTS] }; V],
            other: [const { AtomicU32::new(0) }; V],
        }
    }

    /// Writer only (inside a seqlock reset).
    pub fn zero(&self) {
        // Relaxed: published by the seqlock's release store of the tag.
        for id in &self.ids {
            id.store(0, Ordering::Relaxed);
        }
        for row in &self.counts {
            for c in row {
                // Relaxed: as above.
                c.store(0, Ordering::Relaxed);
            }
        }
        for c in &self.other {
            // Relaxed: as above.
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Writer only: adds one to counter `v` of label `id` (`None` = other).
    #[inline]
    pub fn add(&self, id: Option<u16>, v: usize) {
        if let Some(id) = id {
            let key = id + 1;
            for (s, slot) in self.ids.iter().enumerate() {
                // Relaxed: the single writer reads its own stores.
                let cur = slot.load(Ordering::Relaxed);
                if cur == key {
                    bump(&self.counts[v][s], 1);
                    return;
                }
                if cur == 0 {
                    bump(&self.counts[v][s], 1);
                    // Release: a reader that sees the id also sees its first count.
                    slot.store(key, Ordering::Release);
                    return;
                }
            }
        }
        bump(&self.other[v], 1);
    }

    /// Reader: adds the tallies into `out`, merging by label id (`None` = other).
    pub fn add_into(&self, out: &mut Vec<LabelCount<V>>) {
        let mut add = |id: Option<u16>, v: [u64; V]| {
            if v.iter().all(|&c| c == 0) {
                return;
            }
            match out.iter_mut().find(|(i, _)| *i == id) {
                Some((_, acc)) => acc.iter_mut().zip(v).for_each(|(a, b)| *a += b),
                None => out.push((id, v)),
            }
        };
        for (s, slot) in self.ids.iter().enumerate() {
            // Acquire: pairs with the release store in `add`.
            let key = slot.load(Ordering::Acquire);
            if key == 0 {
                break;
            }
            // Relaxed: validated by the bucket's seqlock.
            add(
                Some(key - 1),
                std::array::from_fn(|v| u64::from(self.counts[v][s].load(Ordering::Relaxed))),
            );
        }
        // Relaxed: validated by the bucket's seqlock.
        add(
            None,
            std::array::from_fn(|v| u64::from(self.other[v].load(Ordering::Relaxed))),
        );
    }
}

// Raw access for [`crate::snapshot`]: `raw` under the partition's writer lock, `set_raw` on
// a state no reader can see yet; relaxed for those reasons.

impl LabelTable {
    /// The interned labels in id order (ids are dense from 0).
    pub(crate) fn names(&self) -> Vec<Arc<str>> {
        self.names
            .iter()
            .map_while(|n| n.get().map(Arc::clone))
            .collect()
    }
}

impl<const V: usize> LabelSlots<V> {
    pub(crate) fn raw(&self) -> LabelRaw<V> {
        let ids = self
            .ids
            .iter()
            .enumerate()
            .map_while(|(s, slot)| {
                let key = slot.load(Ordering::Relaxed);
                (key != 0).then(|| {
                    (
                        key - 1,
                        std::array::from_fn(|v| self.counts[v][s].load(Ordering::Relaxed)),
                    )
                })
            })
            .collect();
        LabelRaw {
            ids,
            other: std::array::from_fn(|v| self.other[v].load(Ordering::Relaxed)),
        }
    }

    /// Takes the first [`LABEL_SLOTS`] entries (the decoder allows no more). Ids must be
    /// below 65,535 (checked by the decoder against the interner's size).
    pub(crate) fn set_raw(&self, r: &LabelRaw<V>) {
        for (s, (id, counts)) in r.ids.iter().take(LABEL_SLOTS).enumerate() {
            self.ids[s].store(id.saturating_add(1), Ordering::Relaxed);
            for (v, n) in counts.iter().enumerate() {
                self.counts[v][s].store(*n, Ordering::Relaxed);
            }
        }
        for (c, n) in self.other.iter().zip(r.other) {
            c.store(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_is_bounded_and_truncates_on_char_boundaries() {
        let table = LabelTable::new(2);
        let mut i = Interner::new(2, 8);
        assert_eq!(i.intern(&table, "timeout"), Some(0));
        assert_eq!(i.intern(&table, "timeout"), Some(0));
        assert_eq!(i.intern(&table, "ééééé"), Some(1));
        assert_eq!(table.name(1).map(|s| &**s), Some("éééé"));
        assert_eq!(i.intern(&table, "third"), None);
    }

    #[test]
    fn labels_beyond_the_bucket_slots_count_as_other() {
        let s = LabelSlots::<1>::new();
        for id in 0..(LABEL_SLOTS as u16 + 2) {
            s.add(Some(id), 0);
        }
        s.add(Some(0), 0);
        s.add(None, 0);
        let mut out = Vec::new();
        s.add_into(&mut out);
        s.add_into(&mut out);
        assert_eq!(out.len(), LABEL_SLOTS + 1);
        assert_eq!(out[0], (Some(0), [4]));
        assert_eq!(out[LABEL_SLOTS], (None, [6]));
    }
}

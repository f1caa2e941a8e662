//! The bounded table of unidentified MOTs: ids absent from the catalog, with count, first and
//! last seen (event time) and an example channel. When the table is full, further ids are
//! counted in an overflow counter: never dropped silently, never unbounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::hash::FastBuild;
use crate::labels::truncate;
use crate::snapshot::UnidentifiedRaw;

/// One unidentified MOT id, merged over partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnidentifiedMot {
    /// The id as emitted (cut to `max_label_bytes`).
    pub id: String,
    /// Interactions seen.
    pub count: u64,
    /// Smallest event time seen, ms since the epoch.
    pub first_seen_ms: i64,
    /// Largest event time seen, ms since the epoch.
    pub last_seen_ms: i64,
    /// The first channel seen with it, if any.
    pub example_channel: Option<String>,
}

/// All unidentified MOTs, most frequent first, and what overflowed the bounded tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnidentifiedReport {
    /// Tracked ids, by descending count then id.
    pub mots: Vec<UnidentifiedMot>,
    /// Interactions with an id that found its partition's table full.
    pub overflow: u64,
}

#[derive(Debug)]
struct Entry {
    id: Arc<str>,
    count: AtomicU64,
    first_ms: AtomicI64,
    last_ms: AtomicI64,
    channel: OnceLock<Arc<str>>,
}

/// Readable side, in the partition.
#[derive(Debug)]
pub(crate) struct UnidentifiedTable {
    entries: Box<[OnceLock<Entry>]>,
    overflow: AtomicU64,
}

/// Writer side: id → entry index. Private to the partition's writer.
#[derive(Debug)]
pub(crate) struct UnidentifiedIndex {
    ids: HashMap<Arc<str>, u32, FastBuild>,
    max_bytes: usize,
}

impl UnidentifiedIndex {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            ids: HashMap::with_hasher(FastBuild),
            max_bytes,
        }
    }
}

impl UnidentifiedTable {
    pub fn new(cap: usize) -> Self {
        Self {
            entries: (0..cap).map(|_| OnceLock::new()).collect(),
            overflow: AtomicU64::new(0),
        }
    }

    /// Writer: counts one interaction with unidentified MOT `id`. Allocates only for a new id.
    pub fn record(&self, ix: &mut UnidentifiedIndex, id: &str, t_ms: i64, channel: Option<&str>) {
        let id = truncate(id, ix.max_bytes);
        let entry = match ix.ids.get(id) {
            Some(&i) => self.entries.get(i as usize).and_then(OnceLock::get),
            None if ix.ids.len() < self.entries.len() => {
                let i = ix.ids.len();
                let name: Arc<str> = Arc::from(id);
                ix.ids.insert(Arc::clone(&name), i as u32);
                self.entries.get(i).map(|slot| {
                    slot.get_or_init(|| Entry {
                        id: name,
                        count: AtomicU64::new(0),
                        first_ms: AtomicI64::new(t_ms),
                        last_ms: AtomicI64::new(t_ms),
                        channel: OnceLock::new(),
                    })
                })
            }
            None => None,
        };
        let Some(e) = entry else {
            // Relaxed: a standalone statistic.
            self.overflow.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Relaxed: standalone statistics of a single writer; readers tolerate any recent value.
        e.count.fetch_add(1, Ordering::Relaxed);
        e.first_ms.fetch_min(t_ms, Ordering::Relaxed);
        e.last_ms.fetch_max(t_ms, Ordering::Relaxed);
        if let Some(c) = channel
            && e.channel.get().is_none()
        {
            let _ = e.channel.set(Arc::from(truncate(c, ix.max_bytes)));
        }
    }

    /// Reader: merges this partition's table into `by_id`; returns its overflow count.
    pub fn merge_into(&self, by_id: &mut HashMap<Arc<str>, UnidentifiedMot>) -> u64 {
        for e in self.entries.iter().filter_map(OnceLock::get) {
            // Relaxed loads: standalone statistics.
            let count = e.count.load(Ordering::Relaxed);
            let first = e.first_ms.load(Ordering::Relaxed);
            let last = e.last_ms.load(Ordering::Relaxed);
            let m = by_id
                .entry(Arc::clone(&e.id))
                .or_insert_with(|| UnidentifiedMot {
                    id: e.id.to_string(),
                    count: 0,
                    first_seen_ms: first,
                    last_seen_ms: last,
                    example_channel: None,
                });
            m.count += count;
            m.first_seen_ms = m.first_seen_ms.min(first);
            m.last_seen_ms = m.last_seen_ms.max(last);
            if m.example_channel.is_none() {
                m.example_channel = e.channel.get().map(|c| c.to_string());
            }
        }
        // Relaxed: a standalone statistic.
        self.overflow.load(Ordering::Relaxed)
    }

    pub fn memory_bytes(&self) -> usize {
        let used: usize = self
            .entries
            .iter()
            .filter_map(OnceLock::get)
            .map(|e| e.id.len() + 48)
            .sum();
        self.entries.len() * size_of::<OnceLock<Entry>>() + used
    }
}

// Raw access for [`crate::snapshot`]: `raw` under the partition's writer lock, `restore` on a
// state no reader can see yet; relaxed for those reasons.

impl UnidentifiedTable {
    /// The entries in index order and the overflow count.
    pub(crate) fn raw(&self) -> (Vec<UnidentifiedRaw>, u64) {
        let entries = self
            .entries
            .iter()
            .map_while(OnceLock::get)
            .map(|e| UnidentifiedRaw {
                id: Arc::clone(&e.id),
                count: e.count.load(Ordering::Relaxed),
                first_ms: e.first_ms.load(Ordering::Relaxed),
                last_ms: e.last_ms.load(Ordering::Relaxed),
                channel: e.channel.get().map(Arc::clone),
            })
            .collect();
        (entries, self.overflow.load(Ordering::Relaxed))
    }

    /// Installs decoded entries (at most the table's capacity, ids unique: checked by the
    /// decoder; extra entries are ignored) and the overflow count.
    pub(crate) fn restore(
        &self,
        ix: &mut UnidentifiedIndex,
        raw: &[UnidentifiedRaw],
        overflow: u64,
    ) {
        for (i, (slot, r)) in self.entries.iter().zip(raw).enumerate() {
            ix.ids.insert(Arc::clone(&r.id), i as u32);
            let channel = OnceLock::new();
            if let Some(c) = &r.channel {
                let _ = channel.set(Arc::clone(c));
            }
            let _ = slot.set(Entry {
                id: Arc::clone(&r.id),
                count: AtomicU64::new(r.count),
                first_ms: AtomicI64::new(r.first_ms),
                last_ms: AtomicI64::new(r.last_ms),
                channel,
            });
        }
        self.overflow.store(overflow, Ordering::Relaxed);
    }
}

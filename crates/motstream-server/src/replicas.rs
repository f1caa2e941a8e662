//! The global view: which partitions this instance owns (consumes) and which it holds as
//! read-only copies followed from the state topic, how fresh each is, and which are missing.
//!
//! Every query reads the aggregator's registry, which holds owned and followed partitions
//! alike, so every answer is the merge of all of them by addition. A followed copy is
//! replaced by each newer snapshot of its partition: a base as it is, a delta applied to the
//! decoded state kept of its base (a delta of a base not seen is skipped until the next
//! base). When this instance is assigned the partition, the copy keeps answering until the
//! restore replaces it (no gap, no drop); when it is revoked, the latest followed state is
//! installed again at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use motstream_window::{Aggregator, PartitionId, Snapshot};
use serde_json::{Value, json};
use tracing::debug;

/// The latest state seen of a partition: its base with every delta since applied, decoded
/// (the next delta applies to it without decoding the base again).
#[derive(Debug)]
struct Followed {
    state: Snapshot,
    published_ms: i64,
}

#[derive(Debug, Default)]
struct Inner {
    owned: HashSet<PartitionId>,
    latest: HashMap<PartitionId, Followed>,
    /// Name and partition count per topic index, as the follower found the state topics.
    partitions: BTreeMap<u16, (String, i32)>,
}

/// Owned and followed partitions. One std `Mutex`: taken by the ingest thread on assignment
/// and revocation, by the follower thread per snapshot (about one per partition per second)
/// and by `/status`; each holds it for one install at most, so it is short and rarely
/// contended, and it makes "is it owned?" and "install the copy" one step.
#[derive(Debug, Default)]
pub struct Replicas {
    inner: Mutex<Inner>,
}

/// The aggregator's id of a topic's partition (topic index in the high bits).
fn split(id: PartitionId) -> (u16, i32) {
    ((id.0 >> 20) as u16, id.0 & 0xF_FFFF)
}

impl Replicas {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The partition is now owned; `install` puts its state in place (under the lock, so the
    /// follower cannot overwrite it meanwhile).
    pub fn own<T>(&self, id: PartitionId, install: impl FnOnce() -> T) -> T {
        let mut g = self.lock();
        g.owned.insert(id);
        install()
    }

    /// The partition was revoked: its state is dropped and, if a snapshot of it was
    /// followed, that copy is installed at once.
    pub fn disown(&self, agg: &Aggregator, id: PartitionId) {
        let mut g = self.lock();
        g.owned.remove(&id);
        agg.drop_partition(id);
        if let Some(f) = g.latest.get(&id) {
            agg.install_copy(&f.state, false);
        }
    }

    /// A snapshot read from the state topic: kept as the partition's latest, and installed
    /// unless this instance owns the partition.
    pub fn follow(
        &self,
        agg: &Aggregator,
        id: PartitionId,
        bytes: &[u8],
        published_ms: i64,
        stamp: u64,
    ) {
        // Decoded before the lock: queries and rebalances need not wait on it.
        let snap = match agg.decode_snapshot(bytes, stamp) {
            Ok(snap) if snap.partition() == id => snap,
            Ok(_) => {
                debug!(
                    partition = id.0,
                    "followed snapshot names another partition"
                );
                return;
            }
            Err(e) => {
                debug!(partition = id.0, error = %e, "followed snapshot refused");
                return;
            }
        };
        let mut g = self.lock();
        if g.latest
            .get(&id)
            .is_some_and(|f| f.published_ms > published_ms)
        {
            return;
        }
        let state = if snap.is_delta() {
            match g.latest.remove(&id) {
                Some(f) if f.state.base() == snap.base() => match agg.apply_delta(f.state, snap) {
                    Ok(s) => s,
                    Err(e) => {
                        debug!(partition = id.0, error = %e, "followed delta refused");
                        return;
                    }
                },
                other => {
                    // Of a base published after the one kept, or before following began.
                    if let Some(f) = other {
                        g.latest.insert(id, f);
                    }
                    debug!(
                        partition = id.0,
                        "followed delta of a base not held; skipped"
                    );
                    return;
                }
            }
        } else {
            snap
        };
        if !g.owned.contains(&id) {
            agg.install_copy(&state, false);
        }
        g.latest.insert(
            id,
            Followed {
                state,
                published_ms,
            },
        );
    }

    /// The follower found `partitions` partitions in the state topic of source topic
    /// `name` (index `topic`).
    pub fn set_partitions(&self, topic: u16, name: &str, partitions: i32) {
        self.lock()
            .partitions
            .insert(topic, (name.to_owned(), partitions));
    }

    /// What every answer merges: each partition held and the ones missing.
    pub fn coverage(&self, agg: &Aggregator, now_ms: i64) -> Coverage {
        let g = self.lock();
        let held = agg.partitions();
        let ids: HashSet<PartitionId> = held.iter().map(|p| p.id()).collect();
        let topic = |t: u16| {
            g.partitions
                .get(&t)
                .map_or_else(String::new, |(n, _)| n.clone())
        };
        let partitions = held
            .iter()
            .map(|p| {
                let (t, n) = split(p.id());
                let owned = g.owned.contains(&p.id());
                let published_ms = (!owned)
                    .then(|| g.latest.get(&p.id()).map(|f| f.published_ms))
                    .flatten();
                PartitionView {
                    topic: topic(t),
                    partition: n,
                    owned,
                    warming: p.is_warming(),
                    watermark_ms: p.watermark_ms(),
                    published_ms,
                    age_ms: published_ms.map(|at| (now_ms - at).max(0)),
                }
            })
            .collect();
        let missing = g
            .partitions
            .iter()
            .flat_map(|(&t, (_, n))| (0..*n).map(move |p| (t, p)))
            .filter(|&(t, p)| !ids.contains(&PartitionId((i32::from(t) << 20) | p)))
            .map(|(t, p)| (topic(t), p))
            .collect();
        Coverage {
            partitions,
            missing,
        }
    }

    /// [`Replicas::coverage`] as `/status` shows it.
    pub fn status_json(&self, agg: &Aggregator, now_ms: i64) -> Value {
        let c = self.coverage(agg, now_ms);
        json!({
            "partitions": c.partitions.iter().map(|p| json!({
                "topic": p.topic,
                "partition": p.partition,
                "role": if p.owned { "owned" } else { "follower" },
                "warming": p.warming,
                "watermark_ms": p.watermark_ms,
                "published_ms": p.published_ms,
                "age_ms": p.age_ms,
            })).collect::<Vec<_>>(),
            "missing_partitions": c.missing.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
        })
    }
}

/// One partition's contribution to an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// The source topic (empty until the follower has found the state topics).
    pub topic: String,
    pub partition: i32,
    /// Consumed by this instance (else a copy followed from the state topic).
    pub owned: bool,
    /// Being rebuilt or restored: its numbers may be incomplete.
    pub warming: bool,
    /// The largest event time it holds, ms.
    pub watermark_ms: Option<i64>,
    /// For a followed copy: when its owner published it, ms, and how long ago.
    pub published_ms: Option<i64>,
    pub age_ms: Option<i64>,
}

/// The partitions an answer merges, and those of the deployment it holds nothing for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub partitions: Vec<PartitionView>,
    /// `(topic, partition)`.
    pub missing: Vec<(String, i32)>,
}

/// [`Coverage`] as the gRPC responses carry it.
pub fn coverage_pb(c: &Coverage) -> motstream_proto::v1::Coverage {
    use motstream_proto::v1 as pb;
    pb::Coverage {
        partitions: c
            .partitions
            .iter()
            .map(|p| pb::PartitionCoverage {
                topic: p.topic.clone(),
                partition: p.partition,
                owned: p.owned,
                warming: p.warming,
                watermark_ms: p.watermark_ms,
                published_ms: p.published_ms,
                age_ms: p.age_ms,
            })
            .collect(),
        missing: c
            .missing
            .iter()
            .map(|(t, p)| pb::PartitionRef {
                topic: t.clone(),
                partition: *p,
            })
            .collect(),
    }
}

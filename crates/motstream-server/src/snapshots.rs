//! The service's side of the state topic: partition snapshots of the aggregator, stamped with
//! the catalog they were made under, and restores from them. Ingest decides when (see
//! `motstream_ingest`'s state topic); this module only encodes, checks and installs.

use motstream_core::Catalog;
use motstream_ingest::{PartitionKey, SnapshotKind};
use motstream_window::Snapshot;
use tracing::{info, warn};

use crate::state::{AggregatorState, partition_id};

/// A stamp of what a snapshot's MOT and experience indices mean: the catalog's ids in index
/// order (FNV-1a, stable across processes and builds). A snapshot made under another
/// catalog is refused and the partition replayed instead.
pub fn catalog_stamp(catalog: &Catalog) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for e in &catalog.experiences {
        eat(e.id.as_bytes());
    }
    for m in &catalog.mots {
        eat(m.id.as_bytes());
        eat(&m.experience.0.to_le_bytes());
    }
    h
}

/// The partition's snapshot (of `kind`) covering exactly the events before `next_offset`;
/// `None` while it is being rebuilt (or absent).
pub(crate) fn snapshot(
    state: &AggregatorState,
    part: PartitionKey,
    next_offset: i64,
    now_ms: i64,
    kind: SnapshotKind,
) -> Option<Vec<u8>> {
    let p = state.agg.get_partition(partition_id(part))?;
    if p.is_warming() {
        return None;
    }
    // One writer lock for both: the offset and the state it covers cannot drift apart.
    let mut w = p.writer();
    w.set_next_offset(next_offset);
    let stamp = catalog_stamp(&state.catalog);
    Some(match kind {
        SnapshotKind::Base(id) => w.encode_base(stamp, now_ms, id),
        SnapshotKind::Delta(base) => w.encode_delta(stamp, now_ms, base),
    })
}

/// `base` with `delta` applied when the delta is of it; `base` alone when it is another
/// owner's (a delta sent before a takeover's first base) or unusable, which costs replaying
/// from the base's offset instead of the delta's.
fn with_delta(state: &AggregatorState, base: Snapshot, delta: Option<&[u8]>) -> Option<Snapshot> {
    let Some(bytes) = delta else {
        return Some(base);
    };
    let part = base.partition().0;
    match state
        .agg
        .decode_snapshot(bytes, catalog_stamp(&state.catalog))
    {
        Ok(d) if d.is_delta() && d.base() == base.base() => state
            .agg
            .apply_delta(base, d)
            .inspect_err(|e| warn!(partition = part, error = %e, "partition delta refused"))
            .ok(),
        Ok(_) => {
            info!(
                partition = part,
                "the latest delta is of another base; restoring from the base alone"
            );
            Some(base)
        }
        Err(e) => {
            warn!(partition = part, error = %e, "partition delta refused; restoring from the base alone");
            Some(base)
        }
    }
}

/// Installs the snapshot in `base` (with `delta` applied) as the partition's (warming)
/// state; returns the offset it covers up to, or `None` if the bytes are unusable.
pub(crate) fn restore(
    state: &AggregatorState,
    part: PartitionKey,
    base: &[u8],
    delta: Option<&[u8]>,
) -> Option<i64> {
    let snap = match state
        .agg
        .decode_snapshot(base, catalog_stamp(&state.catalog))
    {
        Ok(s) if !s.is_delta() => s,
        Ok(_) => {
            warn!(
                partition = part.partition,
                "partition base is a delta; refused"
            );
            return None;
        }
        Err(e) => {
            warn!(partition = part.partition, error = %e, "partition snapshot refused");
            return None;
        }
    };
    let snap = with_delta(state, snap, delta)?;
    let id = partition_id(part);
    if snap.partition() != id {
        warn!(
            partition = part.partition,
            found = snap.partition().0,
            "partition snapshot is of another partition"
        );
        return None;
    }
    let next = snap.next_offset()?;
    state
        .replicas
        .own(id, || state.agg.restore_partition(snap, true));
    Some(next)
}

/// Starts the follower thread (the global view): it reads the state topics until `stop`.
pub(crate) fn start_follower(
    brokers: &str,
    cfg: &crate::config::ServiceConfig,
    state: &std::sync::Arc<AggregatorState>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    let (brokers, kafka, topics) = (brokers.to_owned(), cfg.kafka.clone(), cfg.topics.clone());
    let sink = std::sync::Arc::clone(state) as std::sync::Arc<dyn motstream_ingest::Sink>;
    let stop = std::sync::Arc::clone(stop);
    std::thread::Builder::new()
        .name("state-follower".into())
        .spawn(move || motstream_ingest::follow_state(&brokers, &kafka, &topics, sink, stop))
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("starting the state follower thread: {e}"))
}

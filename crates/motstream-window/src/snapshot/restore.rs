//! Builds a partition's state from a decoded snapshot, and the aggregator's entry points.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::encode::stats_of;
use super::{Decoded, Snapshot, SnapshotError, decode};
use crate::aggregator::Aggregator;
use crate::partition::PartitionState;
use crate::state::{ExpState, MotState};

impl Aggregator {
    /// Decodes and validates snapshot bytes (from [`crate::PartitionWriter::encode_snapshot`]
    /// of an aggregator with the same layout) expecting `stamp`. Never panics on bad bytes.
    pub fn decode_snapshot(&self, bytes: &[u8], stamp: u64) -> Result<Snapshot, SnapshotError> {
        decode(self.shared(), bytes, stamp).map(|d| Snapshot { d: Box::new(d) })
    }

    /// Replaces the snapshot's partition with the state it holds (like
    /// [`Aggregator::begin_rebuild`], whose warming report it keeps when `warming`): its
    /// writer then continues from the snapshot's next offset. Call
    /// [`Aggregator::finish_rebuild`] once the tail after it is replayed.
    pub fn restore_partition(&self, snap: Snapshot, warming: bool) -> Arc<PartitionState> {
        self.install_copy(&snap, warming)
    }

    /// Like [`Aggregator::restore_partition`], keeping the snapshot (a follower applies the
    /// next delta to it).
    pub fn install_copy(&self, snap: &Snapshot, warming: bool) -> Arc<PartitionState> {
        let state = self.new_partition_state(snap.d.partition, warming);
        fill(&state, &snap.d);
        self.install(state)
    }
}

/// Writes everything `d` holds into `p`, a fresh state no reader can see yet (so relaxed
/// stores suffice: the registry's lock publishes it).
fn fill(p: &PartitionState, d: &Decoded) {
    let l = &p.shared.layout;
    let mut w = p.lock_writer();
    w.watermark = d.watermark;
    w.next_offset = d.next_offset;
    // Relaxed: see above.
    p.watermark.store(d.watermark, Ordering::Relaxed);
    for (a, v) in stats_of(&p.stats).into_iter().zip(d.stats) {
        a.store(v, Ordering::Relaxed);
    }
    // Dense ids from 0 in order: the decoder checked the names are unique and within the
    // interner's bounds, so each one gets the id it had.
    for n in &d.reasons {
        w.reasons.intern(&p.reasons, n);
    }
    for n in &d.channels {
        w.channels.intern(&p.channels, n);
    }
    p.unidentified.restore(
        &mut w.unidentified,
        &d.unidentified,
        d.unidentified_overflow,
    );
    for (k, j) in d.journeys.iter().take(w.journeys.max()) {
        w.journeys.insert_raw(*k, j);
    }
    w.journeys.set_in_flight(&d.in_flight);
    p.store_in_flight(w.journeys.in_flight());
    drop(w);

    for m in &d.mots {
        let i = m.idx as usize;
        if let Some(h) = p.heads.get(i) {
            for (k, (tag, v)) in m.head.iter().enumerate() {
                h.set_raw(k, *tag, *v, m.touched);
            }
            h.note_time(m.earliest_ms);
        }
        let (Some(ring), Some(cell)) = (&m.ring, p.mots.get(i)) else {
            continue;
        };
        let state = MotState::new(l, d.ref_ms);
        for (slot, tag, v) in &ring.counters {
            if let Some(s) = state.counters().get(*slot) {
                s.set_raw(*tag, *v);
            }
        }
        state.late_total.store(ring.late_total, Ordering::Relaxed);
        state
            .future_total
            .store(ring.future_total, Ordering::Relaxed);
        if let Some(detail) = &ring.detail {
            let slots = state.detail(l, d.ref_ms);
            for (slot, r) in detail {
                if let Some(s) = slots.get(*slot) {
                    s.set_raw(r);
                }
            }
        }
        if let Some(funnel) = &ring.funnel {
            let slots = state.funnel(l, d.ref_ms);
            for (slot, tag, v) in funnel {
                if let Some(s) = slots.get(*slot) {
                    s.set_raw(*tag, *v);
                }
            }
        }
        let _ = cell.set(Box::new(state));
    }
    for e in &d.exps {
        let i = e.idx as usize;
        if let Some(h) = p.exp_heads.get(i) {
            for (k, (tag, v)) in e.head.iter().enumerate() {
                h.set_raw(k, *tag, *v, e.touched);
            }
        }
        let (Some(ring), Some(cell)) = (&e.ring, p.exps.get(i)) else {
            continue;
        };
        let state = ExpState::new(l, d.ref_ms);
        for (slot, tag, j, wf) in &ring.counters {
            if let Some(s) = state.counters().get(*slot) {
                s.set_raw(*tag, *j, *wf);
            }
        }
        for (slot, tag, max, bins) in &ring.mps {
            if let Some(s) = state.mps().get(*slot) {
                s.set_raw(*tag, *max, bins);
            }
        }
        let _ = cell.set(Box::new(state));
    }
}

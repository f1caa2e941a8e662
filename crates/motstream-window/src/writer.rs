//! The single writer of a partition: the hot path ([`PartitionWriter::apply`]) and the
//! journey expiry tick. See [`crate::partition`] for how writers and readers share state.

use std::fmt;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use crate::bucket::{
    ABANDONED, ABANDONED_HERE, COMPLETED, FAILURE, REACHED, STARTED, SUCCESS, SlotMemo,
};
use crate::config::Layout;
use crate::hash::hash_str;
use crate::head::HeadWrite;
use crate::journey::{ExpireReport, JourneyTracker, Step, Touch};
use crate::labels::Interner;
use crate::observation::{Applied, MotKey, Observation};
use crate::partition::{NO_WATERMARK, PartitionState};
use crate::ring::{CounterSlot, Cursor, locate, tag_offset};
use crate::state::{ExpState, MotState, inc};
use crate::topology::{MotIdx, Topology};
use crate::unidentified::UnidentifiedIndex;

/// The writer's private state, behind the partition's writer mutex.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub(crate) watermark: i64,
    pub(crate) counter: Vec<Cursor>,
    pub(crate) detail: Vec<Cursor>,
    /// Per MOT, per detail tier (`mot * tiers + tier`): see [`SlotMemo`].
    pub(crate) memos: Vec<SlotMemo>,
    pub(crate) reasons: Interner,
    pub(crate) channels: Interner,
    pub(crate) unidentified: UnidentifiedIndex,
    pub(crate) journeys: JourneyTracker,
    /// The next source (Kafka) offset after the last event applied, as told by the caller
    /// ([`PartitionWriter::set_next_offset`]); `None` until told. Kept here, under the same
    /// lock as the state, so a snapshot's covered offset is exactly what it holds.
    pub(crate) next_offset: Option<i64>,
    /// The earliest and latest bucket times (ms) any ring was written at since the last base
    /// snapshot ([`PartitionWriter::encode_base`]); `(i64::MIN, i64::MAX)` when unknown (a
    /// new or restored partition), `(i64::MAX, i64::MIN)` when nothing was. A delta snapshot
    /// carries every ring bucket in between, so the span must cover late events, rotations
    /// closing old head buckets and journeys abandoned ahead of the watermark, not only the
    /// newest bucket.
    pub(crate) dirty_from: i64,
    pub(crate) dirty_to: i64,
}

/// The memos of one MOT's detail slots, one per detail tier.
#[inline]
fn memos_of<'m>(memos: &'m mut [SlotMemo], l: &Layout, mot: MotIdx) -> &'m mut [SlotMemo] {
    let n = l.detail.len();
    let from = mot.0 as usize * n;
    memos.get_mut(from..from + n).unwrap_or_default()
}

impl WriterState {
    pub(crate) fn new(l: &Layout, topo: &Topology) -> Self {
        let c = &l.config;
        let mots = topo.mot_count();
        Self {
            watermark: NO_WATERMARK,
            counter: vec![Cursor::default(); l.counter.len()],
            detail: vec![Cursor::default(); l.detail.len()],
            memos: vec![SlotMemo::default(); mots * l.detail.len()],
            reasons: Interner::new(c.max_reasons_per_partition, c.max_label_bytes),
            channels: Interner::new(c.max_channels_per_partition, c.max_label_bytes),
            unidentified: UnidentifiedIndex::new(c.max_label_bytes),
            journeys: JourneyTracker::new(
                c.max_journeys_per_partition,
                topo.journey_timeouts_ms(l.journey_timeout_ms),
                l.journey_timeout_ms,
            ),
            next_offset: None,
            dirty_from: i64::MIN,
            dirty_to: i64::MAX,
        }
    }

    /// Notes a ring write in the bucket of `t_ms` (see `dirty_from`).
    #[inline]
    pub(crate) fn dirty(&mut self, t_ms: i64) {
        self.dirty_from = self.dirty_from.min(t_ms);
        self.dirty_to = self.dirty_to.max(t_ms);
    }
}

/// The single writer of a partition, held for a batch of events. Dropping it releases the
/// partition to the next writer.
pub struct PartitionWriter<'a> {
    part: &'a PartitionState,
    w: MutexGuard<'a, WriterState>,
}

impl fmt::Debug for PartitionWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionWriter")
            .field("partition", &self.part.id())
            .finish_non_exhaustive()
    }
}

impl WriterState {
    /// Counts a late or future-rejected event for its MOT, in the detail bucket of `at_ms`.
    fn count_rejected(
        &mut self,
        l: &Layout,
        idx: MotIdx,
        mot: &MotState,
        at_ms: i64,
        future: bool,
    ) {
        self.dirty(at_ms);
        inc(if future {
            &mot.future_total
        } else {
            &mot.late_total
        });
        if l.detail.is_empty() {
            return;
        }
        let d = mot.detail(l, at_ms);
        let memos = memos_of(&mut self.memos, l, idx);
        for ((tier, cur), memo) in l.detail.iter().zip(self.detail.iter_mut()).zip(memos) {
            let (slot, tag) = cur.locate(tier, at_ms);
            if let Some(b) = d.get(slot)
                && b.claim_memo(tag, memo)
            {
                if future { b.add_future() } else { b.add_late() }
            }
        }
    }

    fn journey_step(&mut self, l: &Layout, e: &ExpState, step: Step, t_ms: i64) {
        for (tier, cur) in l.counter.iter().zip(self.counter.iter_mut()) {
            let (slot, tag) = cur.locate(tier, t_ms);
            if let Some(c) = e.counters().get(slot)
                && c.claim(tag)
            {
                if step.started {
                    c.add_journey(STARTED);
                }
                if step.completed.is_some() {
                    c.add_journey(COMPLETED);
                }
            }
        }
        if let Some(n) = step.completed {
            for (tier, cur) in l.detail.iter().zip(self.detail.iter_mut()) {
                let (slot, tag) = cur.locate(tier, t_ms);
                if let Some(b) = e.mps().get(slot)
                    && b.claim(tag)
                {
                    b.record(n);
                }
            }
        }
    }
}

/// Adds one to funnel counter `which` (REACHED, ABANDONED_HERE) of a MOT in the bucket of
/// `t_ms` of every counter tier (like the experience's journey counts, no head: journey
/// steps are far rarer than interactions).
fn funnel_add(
    l: &Layout,
    cursors: &mut [Cursor],
    slots: &[CounterSlot<2>],
    which: usize,
    t_ms: i64,
) {
    for (tier, cur) in l.counter.iter().zip(cursors.iter_mut()) {
        let (slot, tag) = cur.locate(tier, t_ms);
        if let Some(c) = slots.get(slot)
            && c.claim(tag)
        {
            c.add(which, 1);
        }
    }
}

impl<'a> PartitionWriter<'a> {
    pub(crate) fn new(part: &'a PartitionState, w: MutexGuard<'a, WriterState>) -> Self {
        Self { part, w }
    }

    /// Counts an event that was rejected before it reached the windows as further ahead of
    /// `now_ms` than the allowed skew (ingest's decoder checks the skew first and
    /// dead-letters the event): the same counters as an event [`Self::apply`] rejects as
    /// future, so the status's `rejected_future` and the exporter's future counter see it.
    pub fn reject_future(&mut self, mot: MotKey<'_>, now_ms: i64) {
        let p = self.part;
        let l = &p.shared.layout;
        let w = &mut *self.w;
        inc(&p.stats.rejected_future);
        let MotKey::Known(idx) = mot else { return };
        let Some(cell) = p.mots.get(idx.0 as usize) else {
            return;
        };
        let at = if w.watermark != NO_WATERMARK {
            w.watermark
        } else {
            now_ms
        };
        let mot = cell.get_or_init(|| Box::new(MotState::new(l, at)));
        w.count_rejected(l, idx, mot, at, true);
        if let Some(lt) = p.live_totals() {
            lt.rejected(idx.0 as usize, true);
        }
    }

    /// Applies one observation. `now_ms` is the wall clock (ms since the epoch), used only
    /// to reject events more than `max_future_skew_ms` ahead of it; lateness is judged
    /// against the partition's watermark (largest applied event time), so a replay with
    /// an old watermark applies old events normally. No allocation in the steady state:
    /// only a MOT's or experience's first rotation or first detail (its rings), a new label,
    /// a new unidentified id, or journey-table growth allocate.
    pub fn apply(&mut self, obs: &Observation<'_>, now_ms: i64) -> Applied {
        let p = self.part;
        let l = &p.shared.layout;
        let w = &mut *self.w;
        let t = obs.event_time_ms;
        let future = t > now_ms.saturating_add(l.skew_ms);
        let live = p.live_totals();
        let idx = match obs.mot {
            MotKey::Known(m) => m,
            MotKey::Unidentified(id) => {
                if future {
                    inc(&p.stats.rejected_future);
                    return Applied::RejectedFuture;
                }
                inc(&p.stats.unidentified);
                if let Some(lt) = live {
                    lt.unidentified();
                }
                p.unidentified
                    .record(&mut w.unidentified, id, t, obs.channel);
                return Applied::Unidentified;
            }
        };
        let (Some(cell), Some(head)) = (p.mots.get(idx.0 as usize), p.heads.get(idx.0 as usize))
        else {
            inc(&p.stats.unknown_mot_index);
            return Applied::UnknownMotIndex;
        };
        let wm = w.watermark;
        let late = wm != NO_WATERMARK && t < wm.saturating_sub(l.lateness_ms);
        if future || late {
            let at = if wm != NO_WATERMARK { wm } else { now_ms };
            let mot = cell.get_or_init(|| Box::new(MotState::new(l, at)));
            w.count_rejected(l, idx, mot, at, future);
            if let Some(lt) = live {
                lt.rejected(idx.0 as usize, future);
            }
            inc(if future {
                &p.stats.rejected_future
            } else {
                &p.stats.late
            });
            return if future {
                Applied::RejectedFuture
            } else {
                Applied::Late
            };
        }

        let which = if obs.success { SUCCESS } else { FAILURE };
        head.note_time(t);
        // Every write below is in the bucket of `t`, except rotations (noted in them: they
        // close older buckets, never newer ones).
        w.dirty(t);
        let dirty = &mut w.dirty_from;
        let mut applied = false;
        for (k, (tier, cur)) in l.counter.iter().zip(w.counter.iter_mut()).enumerate() {
            let (slot, tag) = cur.locate(tier, t);
            let wrote = head.add(k, tag, which, 1, |old, [s, f]| {
                // Rotation: close the head's bucket into its ring slot.
                let ring = cell.get_or_init(|| Box::new(MotState::new(l, t)));
                let old_index = tier.index(t) - i64::from(tag_offset(tag, old));
                *dirty = (*dirty).min(old_index.saturating_mul(tier.res_ms));
                if let Some(c) = ring.counters().get(tier.slot(old_index))
                    && c.claim(old)
                {
                    c.add(SUCCESS, s);
                    c.add(FAILURE, f);
                }
            });
            if wrote == HeadWrite::Done {
                applied = true;
                continue;
            }
            // Older than the head's bucket: straight into the ring.
            let ring = cell.get_or_init(|| Box::new(MotState::new(l, t)));
            if let Some(c) = ring.counters().get(slot)
                && c.claim(tag)
            {
                c.add(which, 1);
                applied = true;
            }
        }
        if !applied {
            // Older than every tier holds (cannot happen with lateness ≤ retention, but an
            // event is never dropped silently).
            let mot = cell.get_or_init(|| Box::new(MotState::new(l, t)));
            w.count_rejected(l, idx, mot, if wm != NO_WATERMARK { wm } else { t }, false);
            if let Some(lt) = live {
                lt.rejected(idx.0 as usize, false);
            }
            inc(&p.stats.late);
            return Applied::Late;
        }

        if let Some(lt) = live {
            lt.interaction(idx.0 as usize, obs.success, obs.duration_ms);
        }

        if !obs.success {
            // The experience's impact-weighted failures: the denominator of impact shares.
            let topo = &p.shared.topology;
            if let Some(exp) = topo.mot(idx).map(|m| m.experience)
                && let (Some(cell), Some(head)) =
                    (p.exps.get(exp.0 as usize), p.exp_heads.get(exp.0 as usize))
            {
                let weight = topo.weight_fp(idx);
                let dirty = &mut w.dirty_from;
                for (k, (tier, cur)) in l.counter.iter().zip(w.counter.iter_mut()).enumerate() {
                    let (slot, tag) = cur.locate(tier, t);
                    let wrote = head.add(k, tag, 0, weight, |old, v| {
                        // Rotation: close the head's bucket into its ring slot.
                        let e = cell.get_or_init(|| Box::new(ExpState::new(l, t)));
                        let old_index = tier.index(t) - i64::from(tag_offset(tag, old));
                        *dirty = (*dirty).min(old_index.saturating_mul(tier.res_ms));
                        if let Some(c) = e.counters().get(tier.slot(old_index))
                            && c.claim(old)
                        {
                            c.add_weighted_failure(v);
                        }
                    });
                    if wrote == HeadWrite::Older {
                        let e = cell.get_or_init(|| Box::new(ExpState::new(l, t)));
                        if let Some(c) = e.counters().get(slot)
                            && c.claim(tag)
                        {
                            c.add_weighted_failure(weight);
                        }
                    }
                }
            }
        }

        let reason = if obs.success {
            None
        } else {
            obs.failure_reason
        };
        if !l.detail.is_empty()
            && (obs.duration_ms.is_some() || reason.is_some() || obs.channel.is_some())
        {
            let rid = reason.map(|r| w.reasons.intern(&p.reasons, r));
            let cid = obs.channel.map(|c| w.channels.intern(&p.channels, c));
            let d = cell
                .get_or_init(|| Box::new(MotState::new(l, t)))
                .detail(l, t);
            let memos = memos_of(&mut w.memos, l, idx);
            for ((tier, cur), memo) in l.detail.iter().zip(w.detail.iter_mut()).zip(memos) {
                let (slot, tag) = cur.locate(tier, t);
                if let Some(b) = d.get(slot)
                    && b.claim_memo(tag, memo)
                {
                    if let Some(ms) = obs.duration_ms {
                        b.record_latency(ms, memo);
                    }
                    if let Some(r) = rid {
                        b.record_reason(r);
                    }
                    if let Some(c) = cid {
                        b.record_channel(c, obs.success);
                    }
                }
            }
        }

        if t > wm {
            w.watermark = t;
            // Release: a reader that acquires this watermark sees every count written before
            // it, so buckets older than `watermark - lateness` are final for it (the alert
            // engine's counts cache relies on that). A plain store on x86.
            p.watermark.store(t, Ordering::Release);
        }

        if let Some(journey) = obs.journey_id {
            self.journey(idx, journey, obs.success, t);
        }
        Applied::Applied
    }

    fn journey(&mut self, mot: MotIdx, journey_id: &str, success: bool, t_ms: i64) {
        let p = self.part;
        let l = &p.shared.layout;
        let topo = &p.shared.topology;
        let Some(exp) = topo.mot(mot).map(|m| m.experience) else {
            return;
        };
        let sco = success && topo.experience(exp).is_some_and(|e| e.sco == mot);
        let key = hash_str(journey_id, u64::from(exp.0));
        let touch = Touch {
            exp: exp.0,
            mot: mot.0,
            position: topo.position(mot),
            sco,
            failed: !success,
            t_ms,
        };
        let step = self.w.journeys.observe(key, touch);
        if step.overflow {
            inc(&p.stats.journeys_overflow);
            return;
        }
        if step.reached
            && let Some(cell) = p.mots.get(mot.0 as usize)
        {
            let m = cell.get_or_init(|| Box::new(MotState::new(l, t_ms)));
            funnel_add(l, &mut self.w.counter, m.funnel(l, t_ms), REACHED, t_ms);
        }
        if let Some(lt) = p.live_totals() {
            lt.journey(exp.0 as usize, step.started, step.completed);
        }
        if step.started {
            inc(&p.stats.journeys_started);
            // Relaxed: a standalone gauge.
            p.stats
                .journeys_open
                .store(self.w.journeys.len() as u64, Ordering::Relaxed);
        }
        if step.completed.is_some() {
            inc(&p.stats.journeys_completed);
        }
        if (step.started || step.completed.is_some())
            && let Some(cell) = p.exps.get(exp.0 as usize)
        {
            let e = cell.get_or_init(|| Box::new(ExpState::new(l, t_ms)));
            self.w.journey_step(l, e, step, t_ms);
        }
    }

    /// Closes journeys idle for at least the journey timeout and counts those that did not
    /// reach their SCO as abandoned (in the bucket of last interaction + timeout). Idleness
    /// is judged in event time: against the watermark while the partition is warming (a
    /// replay must not expire journeys whose later events are still to come), else against
    /// the later of the watermark and `now_ms - allowed_lateness` (so a quiet partition
    /// still closes journeys). Call it on a tick, e.g. every second.
    pub fn expire_journeys(&mut self, now_ms: i64) -> ExpireReport {
        let p = self.part;
        let l = &p.shared.layout;
        let wm = self.w.watermark;
        let wall = now_ms.saturating_sub(l.lateness_ms);
        let clock = match (wm != NO_WATERMARK, p.is_warming()) {
            (true, true) => wm,
            (false, true) => {
                return ExpireReport {
                    open: self.w.journeys.len() as u64,
                    ..ExpireReport::default()
                };
            }
            (true, false) => wm.max(wall),
            (false, false) => wall,
        };
        let live = p.live_totals();
        let w = &mut *self.w;
        let cursors = &mut w.counter;
        let (from, to) = (&mut w.dirty_from, &mut w.dirty_to);
        let report = w.journeys.expire(clock, |exp, last_mot, at_ms| {
            *from = (*from).min(at_ms);
            *to = (*to).max(at_ms);
            if let Some(lt) = live {
                lt.abandoned(exp as usize, 1);
            }
            // Where it stopped: the funnel's "abandoned here", in the same bucket as the
            // experience's abandoned count.
            if let Some(cell) = p.mots.get(last_mot as usize) {
                let m = cell.get_or_init(|| Box::new(MotState::new(l, at_ms)));
                funnel_add(l, cursors, m.funnel(l, at_ms), ABANDONED_HERE, at_ms);
            }
            if let Some(cell) = p.exps.get(exp as usize) {
                let e = cell.get_or_init(|| Box::new(ExpState::new(l, at_ms)));
                for tier in &l.counter {
                    let (slot, tag) = locate(tier, at_ms);
                    if let Some(c) = e.counters().get(slot)
                        && c.claim(tag)
                    {
                        c.add_journey(ABANDONED);
                    }
                }
            }
        });
        // Relaxed: standalone statistics.
        p.stats
            .journeys_abandoned
            .fetch_add(report.abandoned, Ordering::Relaxed);
        p.stats.journeys_open.store(report.open, Ordering::Relaxed);
        p.store_in_flight(self.w.journeys.in_flight());
        report
    }

    /// Records that every source event before `offset` (the next offset to consume) has
    /// been applied: a snapshot ([`PartitionWriter::encode_snapshot`]) says it covers them.
    pub fn set_next_offset(&mut self, offset: i64) {
        self.w.next_offset = Some(offset);
    }

    /// The offset last given to [`PartitionWriter::set_next_offset`] (or restored).
    pub fn next_offset(&self) -> Option<i64> {
        self.w.next_offset
    }

    /// The partition's state as a snapshot (see [`crate::snapshot`]): exactly what the
    /// events before [`PartitionWriter::next_offset`] made it. `stamp` is the caller's
    /// compatibility mark (e.g. a hash of the catalog's MOT ids); `now_ms` anchors the
    /// encoding of bucket positions when the partition has no watermark yet.
    pub fn encode_snapshot(&self, stamp: u64, now_ms: i64) -> Vec<u8> {
        crate::snapshot::encode(self.part, &self.w, stamp, now_ms, 0, None)
    }

    /// A whole snapshot like [`Self::encode_snapshot`], marked as base `id`: the deltas
    /// encoded after it ([`Self::encode_delta`]) are relative to it.
    pub fn encode_base(&mut self, stamp: u64, now_ms: i64, id: u64) -> Vec<u8> {
        let bytes = crate::snapshot::encode(self.part, &self.w, stamp, now_ms, id, None);
        (self.w.dirty_from, self.w.dirty_to) = (i64::MAX, i64::MIN);
        bytes
    }

    /// What changed since the last [`Self::encode_base`] (which was base `base`): every ring
    /// bucket written since, and all of the partition's other state (heads, journeys,
    /// labels, statistics), which is small. Applied to that base
    /// ([`crate::Aggregator::apply_delta`]) it gives exactly what [`Self::encode_snapshot`] would.
    /// Its size depends on how far back writes reached since the base, not on the history
    /// the rings hold.
    pub fn encode_delta(&self, stamp: u64, now_ms: i64, base: u64) -> Vec<u8> {
        let span = (self.w.dirty_from, self.w.dirty_to);
        crate::snapshot::encode(self.part, &self.w, stamp, now_ms, base, Some(span))
    }

    /// The partition being written.
    pub fn partition(&self) -> &PartitionState {
        self.part
    }
}

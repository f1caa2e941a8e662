//! The state of one Kafka partition, and how readers aggregate it.
//!
//! Sharing: one partition has one writer at a time (its consumer task), enforced by a
//! per-partition mutex taken once per batch ([`PartitionState::writer`]), never per event
//! and never shared between partitions. Inside, every MOT has a dense slot (indexed by
//! [`MotIdx`], no hashing): a one-cache-line head with the current bucket of each counter
//! tier ([`crate::head`]) and lazily allocated rings. The writer updates them with relaxed
//! load + store (no read-modify-write instructions); readers snapshot them at any time
//! without locking, under per-slot seqlocks. Writers of different partitions touch
//! disjoint memory, so they scale with cores.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::aggregate::{
    Counts, EVICTED_COUNTS, EVICTED_DETAIL, EVICTED_TREND, ExperienceAggregate, MotAggregate,
};
use crate::bucket::{DetailIds, SlotMemo};
use crate::config::Layout;
use crate::hash::hash_str;
use crate::head::{ExpHead, MotHead};
use crate::journey::JourneyView;
use crate::labels::LabelTable;
use crate::live::LiveTotals;
use crate::plan::WindowPlan;
use crate::state::{ExpState, MotState, read_exp_counters, read_mot_counts};
use crate::topology::{ExpIdx, MotIdx, Topology};
use crate::unidentified::UnidentifiedTable;
use crate::writer::{PartitionWriter, WriterState};

pub(crate) const NO_WATERMARK: i64 = i64::MIN;

/// A Kafka partition number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(pub i32);

/// What every partition of an aggregator shares: the layout and the topology.
#[derive(Debug)]
pub(crate) struct Shared {
    pub layout: Layout,
    pub topology: Topology,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) late: AtomicU64,
    pub(crate) rejected_future: AtomicU64,
    pub(crate) unknown_mot_index: AtomicU64,
    pub(crate) unidentified: AtomicU64,
    pub(crate) journeys_started: AtomicU64,
    pub(crate) journeys_completed: AtomicU64,
    pub(crate) journeys_abandoned: AtomicU64,
    pub(crate) journeys_overflow: AtomicU64,
    pub(crate) journeys_open: AtomicU64,
}

/// One experience's journeys under way in one partition: [`crate::journey::InFlight`] as
/// atomics, stored by the expiry pass and read by queries.
#[derive(Debug, Default)]
pub(crate) struct InFlightGauge {
    pub(crate) in_flight: AtomicU64,
    pub(crate) stalled: AtomicU64,
}

/// Cumulative counters of one partition since its state was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Events beyond the allowed lateness.
    pub late: u64,
    /// Events beyond the future skew.
    pub rejected_future: u64,
    /// Events whose [`MotIdx`] is outside the topology.
    pub unknown_mot_index: u64,
    /// Events with an unidentified MOT id.
    pub unidentified: u64,
    /// Journeys opened, completed (SCO), abandoned (timed out without SCO).
    pub journeys_started: u64,
    pub journeys_completed: u64,
    pub journeys_abandoned: u64,
    /// New journeys not tracked because the journey table was full.
    pub journeys_overflow: u64,
    /// Journeys currently open.
    pub journeys_open: u64,
    /// The largest event time applied, ms; `None` before the first.
    pub watermark_ms: Option<i64>,
    /// Whether the partition is being rebuilt.
    pub warming: bool,
}

/// All window state of one Kafka partition. Readers use it through `&self` at any time;
/// the single writer goes through [`PartitionState::writer`].
// Aligned to a pair of cache lines (what the adjacent-line prefetcher moves together): the
// states of partitions assigned together are allocated side by side, and each one's writer
// stores into its own (the writer mutex, the watermark) while the other's writer reads its own.
#[repr(align(128))]
pub struct PartitionState {
    id: PartitionId,
    /// Unique to this incarnation of the partition in the process (see [`Self::generation`]).
    generation: u64,
    pub(crate) shared: Arc<Shared>,
    /// Per MOT, the current counter buckets: the only memory most events write.
    pub(crate) heads: Box<[MotHead]>,
    /// Per MOT, the rings, allocated on first need.
    pub(crate) mots: Box<[OnceLock<Box<MotState>>]>,
    /// Per experience, the current impact-weighted-failure buckets (written per failure).
    pub(crate) exp_heads: Box<[ExpHead]>,
    /// Per experience, the rings, allocated on first need.
    pub(crate) exps: Box<[OnceLock<Box<ExpState>>]>,
    pub(crate) reasons: LabelTable,
    pub(crate) channels: LabelTable,
    pub(crate) unidentified: UnidentifiedTable,
    pub(crate) watermark: AtomicI64,
    warming: AtomicBool,
    pub(crate) stats: Stats,
    /// Per experience, its journeys under way as of the latest expiry pass (gauges).
    pub(crate) in_flight: Box<[InFlightGauge]>,
    /// Counters of live-applied events, shared by every incarnation of this partition id
    /// (see [`crate::live`]); `None` when the aggregator keeps none.
    pub(crate) live: Option<Arc<LiveTotals>>,
    /// A std mutex, not a lock-free scheme: it is taken once per batch by the partition's
    /// one consumer, so it is uncontended, and it lets the writer keep plain (non-atomic)
    /// state: cursors, interners, the journey table. Readers never take it (except
    /// [`PartitionState::journey`] and [`PartitionState::memory_bytes`], briefly).
    writer: Mutex<WriterState>,
}

impl fmt::Debug for PartitionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionState")
            .field("id", &self.id)
            .field("warming", &self.is_warming())
            .field("watermark_ms", &self.watermark_ms())
            .finish_non_exhaustive()
    }
}

/// The next [`PartitionState::generation`].
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl PartitionState {
    /// Publishes the journeys' in-flight gauges for queries: by the expiry pass, and by a
    /// restore, which installs the original's.
    pub(crate) fn store_in_flight(&self, gauges: &[crate::journey::InFlight]) {
        for (g, f) in self.in_flight.iter().zip(gauges) {
            // Relaxed: standalone gauges.
            g.in_flight.store(f.in_flight, Ordering::Relaxed);
            g.stalled.store(f.stalled, Ordering::Relaxed);
        }
    }

    pub(crate) fn new(
        id: PartitionId,
        shared: Arc<Shared>,
        warming: bool,
        live: Option<Arc<LiveTotals>>,
    ) -> Self {
        let c = &shared.layout.config;
        let writer = WriterState::new(&shared.layout, &shared.topology);
        Self {
            id,
            // Relaxed: only uniqueness matters; no other memory is published with it.
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            heads: (0..shared.topology.mot_count())
                .map(|_| MotHead::default())
                .collect(),
            mots: (0..shared.topology.mot_count())
                .map(|_| OnceLock::new())
                .collect(),
            exp_heads: (0..shared.topology.experience_count())
                .map(|_| ExpHead::default())
                .collect(),
            exps: (0..shared.topology.experience_count())
                .map(|_| OnceLock::new())
                .collect(),
            reasons: LabelTable::new(c.max_reasons_per_partition),
            channels: LabelTable::new(c.max_channels_per_partition),
            unidentified: UnidentifiedTable::new(c.max_unidentified_per_partition),
            watermark: AtomicI64::new(NO_WATERMARK),
            warming: AtomicBool::new(warming),
            stats: Stats::default(),
            in_flight: (0..shared.topology.experience_count())
                .map(|_| InFlightGauge::default())
                .collect(),
            live,
            writer: Mutex::new(writer),
            shared,
        }
    }

    /// This partition's id.
    pub fn id(&self) -> PartitionId {
        self.id
    }

    /// This incarnation's number, never reused in the process: a partition rebuilt or
    /// reassigned gets a new one, so caches keyed by it never reuse another incarnation's
    /// sums (an address could be reused once the old state is freed).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes the partition's writer for a batch of events. Blocks while another thread holds
    /// it (there should be none: one consumer per partition). A writer that panicked leaves
    /// consistent state (every update is a complete atomic store), so poisoning is ignored.
    pub fn writer(&self) -> PartitionWriter<'_> {
        PartitionWriter::new(
            self,
            self.writer.lock().unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// For [`crate::snapshot`]: the writer's private state, locked.
    pub(crate) fn lock_writer(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the partition is being rebuilt (its windows are incomplete).
    pub fn is_warming(&self) -> bool {
        // Relaxed: an advisory flag; no data is published through it.
        self.warming.load(Ordering::Relaxed)
    }

    pub(crate) fn set_warming(&self, warming: bool) {
        // Relaxed: see `is_warming`.
        self.warming.store(warming, Ordering::Relaxed);
    }

    /// The largest event time applied, ms; `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        // Relaxed: a standalone value.
        let w = self.watermark.load(Ordering::Relaxed);
        (w != NO_WATERMARK).then_some(w)
    }

    /// Cumulative counters since the state was created.
    pub fn stats(&self) -> PartitionStats {
        // Relaxed loads: standalone statistics.
        let s = &self.stats;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PartitionStats {
            late: ld(&s.late),
            rejected_future: ld(&s.rejected_future),
            unknown_mot_index: ld(&s.unknown_mot_index),
            unidentified: ld(&s.unidentified),
            journeys_started: ld(&s.journeys_started),
            journeys_completed: ld(&s.journeys_completed),
            journeys_abandoned: ld(&s.journeys_abandoned),
            journeys_overflow: ld(&s.journeys_overflow),
            journeys_open: ld(&s.journeys_open),
            watermark_ms: self.watermark_ms(),
            warming: self.is_warming(),
        }
    }

    /// MOTs that have window state in this partition, in index order.
    pub fn mots_with_state(&self) -> Vec<MotIdx> {
        (0..self.mots.len())
            .filter(|&i| self.heads[i].touched() || self.mots[i].get().is_some())
            .map(|i| MotIdx(i as u32))
            .collect()
    }

    /// A journey's progress, if open. Takes the writer lock briefly: for diagnostics, not
    /// for hot loops.
    pub fn journey(&self, journey_id: &str, exp: ExpIdx) -> Option<JourneyView> {
        let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        w.journeys.view(hash_str(journey_id, u64::from(exp.0)))
    }

    /// Heap bytes held by this partition's state. Takes the writer lock briefly.
    pub fn memory_bytes(&self) -> usize {
        let mots: usize = self
            .mots
            .iter()
            .filter_map(OnceLock::get)
            .map(|m| m.memory_bytes())
            .sum();
        let exps: usize = self
            .exps
            .iter()
            .filter_map(OnceLock::get)
            .map(|e| e.memory_bytes())
            .sum();
        let slots = self.mots.len() * (size_of::<OnceLock<Box<MotState>>>() + size_of::<MotHead>())
            + self.exps.len() * size_of::<ExpHead>()
            + self.exps.len() * size_of::<OnceLock<Box<ExpState>>>();
        let writer = {
            let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            w.journeys.memory_bytes() + w.memos.len() * size_of::<SlotMemo>()
        };
        size_of::<Self>()
            + mots
            + exps
            + slots
            + self.reasons.memory_bytes()
            + self.channels.memory_bytes()
            + self.unidentified.memory_bytes()
            + writer
    }

    /// The live counters to write for the next events: `None` while the partition is being
    /// rebuilt (replayed events were counted when first applied live) or when none are kept.
    #[inline]
    pub(crate) fn live_totals(&self) -> Option<&LiveTotals> {
        if self.is_warming() {
            None
        } else {
            self.live.as_deref()
        }
    }

    pub(crate) fn unidentified(&self) -> &UnidentifiedTable {
        &self.unidentified
    }

    /// This partition's contribution to one MOT over `plan`.
    pub fn mot_aggregate(&self, mot: MotIdx, plan: &WindowPlan) -> MotAggregate {
        let mut a = MotAggregate {
            trend: plan.trend.map(|_| Default::default()),
            ..Default::default()
        };
        self.add_mot(mot, plan, &mut a);
        a
    }

    /// Adds this partition's contribution to one MOT over `plan` into `a` (whose `trend`
    /// must be `Some` when the plan has one).
    pub(crate) fn add_mot(&self, mot: MotIdx, plan: &WindowPlan, a: &mut MotAggregate) {
        let l = &self.shared.layout;
        let i = mot.0 as usize;
        let Some(head) = self.heads.get(i) else {
            return;
        };
        let ring = self.mots.get(i).and_then(OnceLock::get).map(|m| &**m);
        a.data_since_ms = crate::aggregate::min_time(a.data_since_ms, head.earliest_ms());
        let read = |r: crate::plan::Range| {
            l.counter
                .get(r.tier)
                .and_then(|t| read_mot_counts(head, r.tier, t, ring, r.first, r.last))
        };
        match read(plan.counts) {
            Some(c) => a.counts.add(c),
            None => a.evicted |= EVICTED_COUNTS,
        }
        if let Some((cur, prev)) = plan.trend {
            match (read(cur), read(prev), a.trend.as_mut()) {
                (Some(c), Some(p), Some((ac, ap))) => {
                    ac.add(c);
                    ap.add(p);
                }
                _ => a.evicted |= EVICTED_TREND,
            }
        }
        let Some(m) = ring else {
            return;
        };
        let r = plan.counts;
        match l
            .counter
            .get(r.tier)
            .and_then(|t| m.read_funnel(t, r.first, r.last))
        {
            Some([reached, abandoned]) => {
                a.journeys_reached += reached;
                a.journeys_abandoned_here += abandoned;
            }
            None => a.evicted |= EVICTED_COUNTS,
        }
        if let Some(d) = plan.detail
            && let Some(tier) = l.detail.get(d.tier)
        {
            let mut ids = DetailIds::default();
            if !m.read_detail(tier, d.first, d.last, &mut a.latency, &mut ids) {
                a.evicted |= EVICTED_DETAIL;
            }
            a.late += ids.late;
            a.rejected_future += ids.future;
            for (id, [n]) in ids.reasons {
                a.add_reason(id.and_then(|i| self.reasons.name(i)), n);
            }
            for (id, [successes, failures]) in ids.channels {
                let c = Counts {
                    successes,
                    failures,
                };
                a.add_channel(id.and_then(|i| self.channels.name(i)), c);
            }
        }
    }

    /// This partition's contribution to one experience over `plan`.
    pub fn experience_aggregate(&self, exp: ExpIdx, plan: &WindowPlan) -> ExperienceAggregate {
        let l = &self.shared.layout;
        let mut a = ExperienceAggregate::default();
        let i = exp.0 as usize;
        let Some(head) = self.exp_heads.get(i) else {
            return a;
        };
        let ring = self.exps.get(i).and_then(OnceLock::get).map(|e| &**e);
        let r = plan.counts;
        match l
            .counter
            .get(r.tier)
            .and_then(|t| read_exp_counters(head, r.tier, t, ring, r.first, r.last))
        {
            Some(([s, c, ab], wf)) => {
                (a.started, a.completed, a.abandoned, a.weighted_failures) = (s, c, ab, wf)
            }
            None => a.evicted |= EVICTED_COUNTS,
        }
        if let Some(g) = self.in_flight.get(i) {
            // Relaxed: standalone gauges.
            a.in_flight = g.in_flight.load(Ordering::Relaxed);
            a.stalled = g.stalled.load(Ordering::Relaxed);
        }
        if let Some(e) = ring
            && let Some(d) = plan.detail
            && let Some(tier) = l.detail.get(d.tier)
            && !e.read_mps(tier, d.first, d.last, &mut a.mots_per_sco)
        {
            a.evicted |= EVICTED_DETAIL;
        }
        a
    }
}

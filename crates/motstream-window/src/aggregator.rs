//! The aggregator: all partitions of one instance, their lifecycle on rebalance, and the
//! status queries that merge them.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

use crate::aggregate::{ExperienceAggregate, MotAggregate};
use crate::config::{Layout, WindowConfig};
use crate::error::{ConfigError, QueryError};
use crate::live::{LiveSnapshot, LiveTotals};
use crate::partition::{PartitionId, PartitionState, Shared};
use crate::plan::WindowPlan;
use crate::state::{full_mot_bytes, funnel_bytes};
use crate::status::{
    ExperienceStatus, MotStatus, Spans, experience_status, funnel_step, mot_status,
};
use crate::topology::{ExpIdx, MotIdx, Topology};
use crate::unidentified::UnidentifiedReport;

/// What a dropped partition held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPartition {
    /// The partition.
    pub id: PartitionId,
    /// MOTs that had window state in it (now missing from this instance's views).
    pub mots: Vec<MotIdx>,
}

/// Partitions being rebuilt and the MOTs whose views are incomplete meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmingReport {
    /// Partitions marked warming, by id.
    pub partitions: Vec<PartitionId>,
    /// MOTs with state in a warming partition or in its previous incarnation, by index.
    /// A partition never held before reports only the MOTs its replay has reached so far.
    pub mots: Vec<MotIdx>,
}

/// Every partition of one instance. `Send + Sync`: share it in an `Arc`.
///
/// Writers: call [`Aggregator::partition`] (or [`Aggregator::begin_rebuild`]) once per
/// assignment, keep the `Arc<PartitionState>`, and write through
/// [`PartitionState::writer`]; the partition registry is not touched per event.
#[derive(Debug)]
pub struct Aggregator {
    shared: Arc<Shared>,
    /// dashmap: registry changes (rebalance) and reader iteration lock one shard briefly;
    /// writers do not touch it per event.
    partitions: DashMap<PartitionId, Arc<PartitionState>>,
    /// For partitions being rebuilt: the MOTs their previous incarnation held.
    previous: DashMap<PartitionId, Vec<MotIdx>>,
    /// Live counters per partition id, never removed (see [`crate::live`]); `None` unless
    /// [`Aggregator::with_live_totals`] asked for them.
    live: Option<DashMap<PartitionId, Arc<LiveTotals>>>,
}

/// Aggregates of one query, all read with the same (possibly coarsened) plan.
struct Gathered {
    plan: WindowPlan,
    mots: Vec<MotAggregate>,
    exps: Vec<ExperienceAggregate>,
    /// Per MOT index: affected by a warming partition (empty when none is).
    warming: Vec<bool>,
}

impl Aggregator {
    /// An aggregator with no partitions yet.
    pub fn new(topology: Topology, config: WindowConfig) -> Result<Self, ConfigError> {
        let layout = Layout::new(config)?;
        Ok(Self {
            shared: Arc::new(Shared { layout, topology }),
            partitions: DashMap::new(),
            previous: DashMap::new(),
            live: None,
        })
    }

    /// Also keeps cumulative counters of live-applied events per partition id, for exporters
    /// that need monotonic counters ([`Aggregator::live_snapshot`]). Costs a few relaxed stores
    /// per event.
    pub fn with_live_totals(mut self) -> Self {
        self.live = Some(DashMap::new());
        self
    }

    fn new_state(&self, id: PartitionId, warming: bool) -> PartitionState {
        let live = self.live.as_ref().map(|m| {
            let topo = &self.shared.topology;
            Arc::clone(&m.entry(id).or_insert_with(|| {
                Arc::new(LiveTotals::new(topo.mot_count(), topo.experience_count()))
            }))
        });
        PartitionState::new(id, Arc::clone(&self.shared), warming, live)
    }

    /// Live-applied counters summed over every partition this aggregator has held, by MOT and
    /// experience index; `None` without [`Aggregator::with_live_totals`]. Never decreases.
    pub fn live_snapshot(&self) -> Option<LiveSnapshot> {
        let map = self.live.as_ref()?;
        let topo = &self.shared.topology;
        let mut out = LiveSnapshot::new(topo.mot_count(), topo.experience_count());
        for t in map.iter() {
            t.value().add_into(&mut out);
        }
        Some(out)
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.shared.layout.config
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// For [`crate::snapshot`]: a fresh state for `id`, not yet registered.
    pub(crate) fn new_partition_state(&self, id: PartitionId, warming: bool) -> PartitionState {
        self.new_state(id, warming)
    }

    /// Registers `fresh` in place of its partition's state, keeping (like
    /// [`Aggregator::begin_rebuild`]) the MOTs the old state held for the warming report
    /// when `fresh` is warming.
    pub(crate) fn install(&self, fresh: PartitionState) -> Arc<PartitionState> {
        let fresh = Arc::new(fresh);
        let id = fresh.id();
        if let Some(old) = self.partitions.insert(id, Arc::clone(&fresh))
            && fresh.is_warming()
        {
            let mut mots = old.mots_with_state();
            if let Some(prev) = self.previous.get(&id) {
                mots.extend_from_slice(&prev);
                mots.sort_unstable();
                mots.dedup();
            }
            self.previous.insert(id, mots);
        }
        fresh
    }

    /// The partition's state, created empty (not warming) if absent.
    pub fn partition(&self, id: PartitionId) -> Arc<PartitionState> {
        Arc::clone(
            &self
                .partitions
                .entry(id)
                .or_insert_with(|| Arc::new(self.new_state(id, false))),
        )
    }

    /// The partition's state if present.
    pub fn get_partition(&self, id: PartitionId) -> Option<Arc<PartitionState>> {
        self.partitions.get(&id).map(|p| Arc::clone(&p))
    }

    /// All partitions, by id.
    pub fn partitions(&self) -> Vec<Arc<PartitionState>> {
        let mut v: Vec<_> = self
            .partitions
            .iter()
            .map(|p| Arc::clone(p.value()))
            .collect();
        v.sort_by_key(|p| p.id());
        v
    }

    /// Drops a revoked partition's state; its numbers leave every view at once. A writer
    /// still holding its `Arc` writes into the detached state harmlessly.
    pub fn drop_partition(&self, id: PartitionId) -> Option<DroppedPartition> {
        self.previous.remove(&id);
        self.partitions.remove(&id).map(|(id, p)| DroppedPartition {
            id,
            mots: p.mots_with_state(),
        })
    }

    /// Replaces the partition's state with an empty one marked warming, to be filled by
    /// replaying its events (from `offsets_for_times(now - longest window - allowed
    /// lateness)`); call [`Aggregator::finish_rebuild`] once caught up. The MOTs the old
    /// state held are reported as warming meanwhile.
    pub fn begin_rebuild(&self, id: PartitionId) -> Arc<PartitionState> {
        let fresh = Arc::new(self.new_state(id, true));
        if let Some(old) = self.partitions.insert(id, Arc::clone(&fresh)) {
            let mut mots = old.mots_with_state();
            if let Some(prev) = self.previous.get(&id) {
                mots.extend_from_slice(&prev);
                mots.sort_unstable();
                mots.dedup();
            }
            self.previous.insert(id, mots);
        }
        fresh
    }

    /// Marks the partition caught up; returns `false` if it is absent.
    pub fn finish_rebuild(&self, id: PartitionId) -> bool {
        self.previous.remove(&id);
        self.partitions
            .get(&id)
            .map(|p| p.set_warming(false))
            .is_some()
    }

    /// Which partitions are warming and which MOTs they affect.
    pub fn warming(&self) -> WarmingReport {
        let mut r = WarmingReport::default();
        let parts = self.partitions();
        let affected = self.affected_mots(&parts);
        r.partitions = parts
            .iter()
            .filter(|p| p.is_warming())
            .map(|p| p.id())
            .collect();
        r.mots = affected
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| MotIdx(i as u32))
            .collect();
        r
    }

    /// Per MOT index: affected by a warming partition. Empty when none is warming.
    pub(crate) fn affected_mots(&self, parts: &[Arc<PartitionState>]) -> Vec<bool> {
        let warming: Vec<_> = parts.iter().filter(|p| p.is_warming()).collect();
        if warming.is_empty() {
            return Vec::new();
        }
        let mut v = vec![false; self.topology().mot_count()];
        for p in &warming {
            for m in p.mots_with_state() {
                if let Some(x) = v.get_mut(m.0 as usize) {
                    *x = true;
                }
            }
            if let Some(prev) = self.previous.get(&p.id()) {
                for m in prev.iter() {
                    if let Some(x) = v.get_mut(m.0 as usize) {
                        *x = true;
                    }
                }
            }
        }
        v
    }

    /// Resolves `(window, now)` into the tiers and buckets every partition will read.
    /// `window_ms` in 1..=longest counter retention.
    pub fn plan(&self, window_ms: u64, now_ms: i64) -> Result<WindowPlan, QueryError> {
        WindowPlan::new(&self.shared.layout, window_ms, now_ms)
    }

    fn spans(&self, plan: &WindowPlan) -> Spans {
        Spans {
            window_ms: plan.window_ms(),
            counts: plan.counts_span(),
            trend: plan.trend_spans(),
            detail: plan.detail_span(),
        }
    }

    /// Reads all partitions under one plan, moving parts that met an evicted bucket (only
    /// when `now_ms` lags the writers') to a coarser tier and reading again.
    fn gather(&self, mut plan: WindowPlan, mots: &[MotIdx], exps: &[ExpIdx]) -> Gathered {
        let parts = self.partitions();
        let warming = self.affected_mots(&parts);
        loop {
            let empty = MotAggregate {
                trend: plan.trend.map(|_| Default::default()),
                ..Default::default()
            };
            let mut g = Gathered {
                plan,
                mots: vec![empty; mots.len()],
                exps: vec![ExperienceAggregate::default(); exps.len()],
                warming: Vec::new(),
            };
            let mut evicted = 0u8;
            for p in &parts {
                for (acc, &m) in g.mots.iter_mut().zip(mots) {
                    p.add_mot(m, &plan, acc);
                    evicted |= acc.evicted;
                }
                for (acc, &e) in g.exps.iter_mut().zip(exps) {
                    let a = p.experience_aggregate(e, &plan);
                    evicted |= a.evicted;
                    acc.merge(&a);
                }
            }
            match (evicted != 0)
                .then(|| plan.coarsen(&self.shared.layout, evicted))
                .flatten()
            {
                Some(next) => plan = next,
                None => {
                    g.warming = warming;
                    return g;
                }
            }
        }
    }

    fn one_status(
        &self,
        g: &Gathered,
        m: MotIdx,
        a: &MotAggregate,
        e: &ExperienceAggregate,
    ) -> Option<MotStatus> {
        let topo = self.topology();
        let spec = topo.mot(m)?;
        let warming = g.warming.get(m.0 as usize).copied().unwrap_or(false);
        let spans = self.spans(&g.plan);
        Some(mot_status(
            m,
            spec,
            topo.weight_fp(m),
            &spans,
            a,
            e.weighted_failures,
            &self.config().status,
            warming,
        ))
    }

    /// One MOT's status over the window ending at `now_ms`, merged over all partitions.
    /// `window_ms` in 1..=longest counter retention.
    pub fn status_mot(
        &self,
        mot: MotIdx,
        window_ms: u64,
        now_ms: i64,
    ) -> Result<MotStatus, QueryError> {
        let topo = self.topology();
        let unknown = QueryError::UnknownMot(mot.0, topo.mot_count());
        let spec = topo.mot(mot).ok_or(unknown.clone())?;
        let plan = self.plan(window_ms, now_ms)?;
        let g = self.gather(plan, &[mot], &[spec.experience]);
        match (g.mots.first(), g.exps.first()) {
            (Some(a), Some(e)) => self.one_status(&g, mot, a, e).ok_or(unknown),
            _ => Err(unknown),
        }
    }

    fn experiences_status(&self, exps: &[ExpIdx], plan: WindowPlan) -> Vec<ExperienceStatus> {
        let topo = self.topology();
        let mots: Vec<MotIdx> = exps
            .iter()
            .flat_map(|e| topo.experience_mots(*e).iter().copied())
            .collect();
        let g = self.gather(plan, &mots, exps);
        let spans = self.spans(&g.plan);
        let mut at = 0;
        let mut out = Vec::with_capacity(exps.len());
        for (e, ea) in exps.iter().zip(&g.exps) {
            let list = topo.experience_mots(*e);
            let aggs = g.mots.get(at..at + list.len()).unwrap_or(&[]);
            at += list.len();
            let statuses = list
                .iter()
                .zip(aggs)
                .filter_map(|(m, a)| self.one_status(&g, *m, a, ea))
                .collect();
            let funnel = list
                .iter()
                .zip(aggs)
                .enumerate()
                .map(|(position, (m, a))| funnel_step(*m, position, a))
                .collect();
            let timeout = topo
                .experience(*e)
                .and_then(|x| x.journey_timeout_ms)
                .unwrap_or(self.config().journey_timeout_ms);
            out.push(experience_status(*e, &spans, ea, timeout, statuses, funnel));
        }
        out
    }

    /// One experience's status (SCO rate, journeys, MOTs per SCO, and its MOT table).
    pub fn status_experience(
        &self,
        exp: ExpIdx,
        window_ms: u64,
        now_ms: i64,
    ) -> Result<ExperienceStatus, QueryError> {
        let n = self.topology().experience_count();
        if exp.0 as usize >= n {
            return Err(QueryError::UnknownExperience(exp.0, n));
        }
        let plan = self.plan(window_ms, now_ms)?;
        self.experiences_status(&[exp], plan)
            .pop()
            .ok_or(QueryError::UnknownExperience(exp.0, n))
    }

    /// Every experience's status, in experience index order.
    pub fn status_all(
        &self,
        window_ms: u64,
        now_ms: i64,
    ) -> Result<Vec<ExperienceStatus>, QueryError> {
        let plan = self.plan(window_ms, now_ms)?;
        let exps: Vec<ExpIdx> = (0..self.topology().experience_count() as u32)
            .map(ExpIdx)
            .collect();
        Ok(self.experiences_status(&exps, plan))
    }

    /// Unidentified MOTs over all partitions, most frequent first.
    pub fn unidentified(&self) -> UnidentifiedReport {
        let mut by_id = HashMap::new();
        let mut overflow = 0;
        for p in self.partitions() {
            overflow += p.unidentified().merge_into(&mut by_id);
        }
        let mut mots: Vec<_> = by_id.into_values().collect();
        mots.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
        UnidentifiedReport { mots, overflow }
    }

    /// Heap bytes held by all partitions.
    pub fn memory_bytes(&self) -> usize {
        self.partitions().iter().map(|p| p.memory_bytes()).sum()
    }

    /// Bytes one MOT takes in one partition once both its counter and detail rings exist
    /// (65,196 bytes = 63.7 KiB with the default configuration).
    pub fn mot_memory_bytes(&self) -> usize {
        full_mot_bytes(&self.shared.layout)
    }

    /// Bytes a MOT's journey funnel ring adds in one partition, allocated once a journey
    /// reaches the MOT there (16,884 bytes = 16.5 KiB with the default configuration).
    pub fn funnel_memory_bytes(&self) -> usize {
        funnel_bytes(&self.shared.layout)
    }
}

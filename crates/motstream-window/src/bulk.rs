//! Counts-only bulk reads: every MOT over several windows in one pass, for the alert engine.
//! A full [`crate::MotStatus`] also merges latency histograms, reasons and channels, which an
//! engine evaluating thousands of MOTs every second does not need until an alert changes
//! state; this reads only the counter rings.

use crate::aggregate::{Counts, EVICTED_COUNTS};
use crate::aggregator::Aggregator;
use crate::error::QueryError;
use crate::plan::{Span, WindowPlan};
use crate::state::read_mot_counts;
use crate::topology::MotIdx;

/// Successes and failures of every MOT over each of several windows ending at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkCounts {
    mot_count: usize,
    /// The windows asked for, ms, in the order asked.
    pub windows_ms: Vec<u64>,
    /// What each window's counts cover (coarsened where a bucket had been evicted).
    pub spans: Vec<Span>,
    /// `counts[w * mot_count + m]`.
    counts: Vec<Counts>,
    /// Per MOT: a partition holding (or that held) its data is being rebuilt. Empty when no
    /// partition is.
    warming: Vec<bool>,
}

impl BulkCounts {
    /// MOT `mot`'s counts over window number `w` (an index into `windows_ms`); zero for an
    /// index out of range.
    #[inline]
    pub fn get(&self, w: usize, mot: MotIdx) -> Counts {
        self.counts
            .get(w * self.mot_count + mot.0 as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Whether the MOT's numbers are incomplete because a partition is being rebuilt.
    #[inline]
    pub fn warming(&self, mot: MotIdx) -> bool {
        self.warming.get(mot.0 as usize).copied().unwrap_or(false)
    }

    /// Bulk counts from values, for tests and benchmarks of their consumers:
    /// `counts[w * mot_count + m]`, `warming` per MOT or empty.
    pub fn from_parts(
        mot_count: usize,
        windows_ms: Vec<u64>,
        counts: Vec<Counts>,
        warming: Vec<bool>,
    ) -> Self {
        Self {
            mot_count,
            spans: Vec::new(),
            windows_ms,
            counts,
            warming,
        }
    }

    /// MOTs covered.
    pub fn mot_count(&self) -> usize {
        self.mot_count
    }
}

impl Aggregator {
    /// Every MOT's counts over each of `windows_ms` ending at `now_ms`, merged over all
    /// partitions. Same spans and numbers as [`Aggregator::status_mot`]'s counts for each
    /// window. Each window in 1..=longest counter retention.
    pub fn counts_bulk(&self, windows_ms: &[u64], now_ms: i64) -> Result<BulkCounts, QueryError> {
        let n = self.topology().mot_count();
        let parts = self.partitions();
        let warming = self.warming();
        let mut out = BulkCounts {
            mot_count: n,
            windows_ms: windows_ms.to_vec(),
            spans: Vec::with_capacity(windows_ms.len()),
            counts: vec![Counts::default(); n * windows_ms.len()],
            warming: Vec::new(),
        };
        if !warming.mots.is_empty() {
            out.warming = vec![false; n];
            for m in warming.mots {
                if let Some(x) = out.warming.get_mut(m.0 as usize) {
                    *x = true;
                }
            }
        }
        for (w, &window) in windows_ms.iter().enumerate() {
            let mut plan = self.plan(window, now_ms)?;
            let row = &mut out.counts[w * n..(w + 1) * n];
            loop {
                let evicted = read_row(&parts, &plan, row);
                // Every partition shares one layout; eviction implies a partition exists.
                let layout = parts.first().map(|p| &p.shared.layout);
                match layout
                    .filter(|_| evicted)
                    .and_then(|l| plan.coarsen(l, EVICTED_COUNTS))
                {
                    Some(next) => {
                        plan = next;
                        row.fill(Counts::default());
                    }
                    None => break,
                }
            }
            out.spans.push(plan.counts_span());
        }
        Ok(out)
    }
}

/// Adds every partition's counts over `plan` into `row` (indexed by MOT); `true` if some
/// bucket had been evicted.
fn read_row(
    parts: &[std::sync::Arc<crate::partition::PartitionState>],
    plan: &WindowPlan,
    row: &mut [Counts],
) -> bool {
    let r = plan.counts;
    let mut evicted = false;
    for p in parts {
        let Some(tier) = p.shared.layout.counter.get(r.tier) else {
            continue;
        };
        for ((acc, head), ring) in row.iter_mut().zip(p.heads.iter()).zip(p.mots.iter()) {
            // A MOT never seen in this partition has an untouched head and no ring.
            let ring = ring.get().map(|m| &**m);
            if ring.is_none() && !head.touched() {
                continue;
            }
            match read_mot_counts(head, r.tier, tier, ring, r.first, r.last) {
                Some(c) => acc.add(c),
                None => evicted = true,
            }
        }
    }
    evicted
}

#[cfg(test)]
mod tests {
    use crate::{
        Aggregator, ExpIdx, ExperienceSpec, MotIdx, MotKey, MotSpec, Observation, PartitionId,
        Topology, WindowConfig,
    };

    #[test]
    fn bulk_counts_equal_each_mots_status_counts_and_flag_warming() {
        let spec = |_| MotSpec {
            experience: ExpIdx(0),
            target: 0.98,
            impact_weight: 1.0,
        };
        let topo = Topology::new(
            (0..3).map(spec).collect(),
            vec![ExperienceSpec { sco: MotIdx(2) }],
        )
        .expect("topology");
        let agg = Aggregator::new(topo, WindowConfig::default()).expect("aggregator");
        let now = 1_700_000_000_000i64;
        for (pid, warming) in [(0, false), (1, true)] {
            let p = if warming {
                agg.begin_rebuild(PartitionId(pid))
            } else {
                agg.partition(PartitionId(pid))
            };
            let mut w = p.writer();
            for i in 0..600i64 {
                let mot = if warming { 1 } else { (i % 2) as u32 };
                let obs = Observation {
                    mot: MotKey::Known(MotIdx(mot)),
                    event_time_ms: now - i * 7_000,
                    success: i % 5 != 0,
                    duration_ms: None,
                    failure_reason: None,
                    channel: None,
                    journey_id: None,
                };
                w.apply(&obs, now);
            }
        }
        let windows = [60_000, 3_600_000, 6 * 3_600_000];
        let b = agg.counts_bulk(&windows, now).expect("bulk");
        for (wi, &w) in windows.iter().enumerate() {
            for m in 0..3 {
                let s = agg.status_mot(MotIdx(m), w, now).expect("status");
                let c = b.get(wi, MotIdx(m));
                assert_eq!((c.successes, c.failures), (s.successes, s.failures));
                assert_eq!(b.warming(MotIdx(m)), s.warming, "mot {m}");
            }
        }
        assert!(b.get(1, MotIdx(1)).amount() > 0);
        assert!(b.warming(MotIdx(1)) && !b.warming(MotIdx(2)));
    }
}

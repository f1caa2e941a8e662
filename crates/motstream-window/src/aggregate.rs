//! Owned, additive window aggregates: what one partition contributes to a status view.
//! Partitions (and, later, instances) merge by addition; the status functions in
//! [`crate::status`] turn a merged aggregate into rates.

use std::sync::Arc;

use crate::histogram::{CountHistogram, LatencyHistogram};

/// Successes and failures over some span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Moments of magic: interactions that met their SMOTO.
    pub successes: u64,
    /// Moments of misery: interactions that did not.
    pub failures: u64,
}

impl Counts {
    /// Successes plus failures.
    pub fn amount(&self) -> u64 {
        self.successes + self.failures
    }

    /// Successes / amount, in 0..=1; `None` when the amount is 0.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.amount();
        (n > 0).then(|| self.successes as f64 / n as f64)
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: Counts) {
        self.successes += o.successes;
        self.failures += o.failures;
    }
}

/// Bit flags: which part of a plan could not be read because a bucket had been evicted.
pub(crate) const EVICTED_COUNTS: u8 = 1;
pub(crate) const EVICTED_TREND: u8 = 2;
pub(crate) const EVICTED_DETAIL: u8 = 4;

/// One MOT over one [`crate::WindowPlan`], from one or more partitions. Additive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MotAggregate {
    /// Counts over the plan's counter span.
    pub counts: Counts,
    /// `(current, previous)` counts over two equal, adjacent windows at the plan's trend
    /// resolution; `None` when no tier retains two windows.
    pub trend: Option<(Counts, Counts)>,
    /// Late events (beyond the allowed lateness) that arrived while the partition's
    /// watermark was in the detail span.
    pub late: u64,
    /// Events rejected as too far in the future, over the detail span.
    pub rejected_future: u64,
    /// Latencies over the detail span.
    pub latency: LatencyHistogram,
    /// Failure reasons over the detail span, unsorted.
    pub reasons: Vec<(Arc<str>, u64)>,
    /// Failures whose reason overflowed the bounded tallies.
    pub reasons_other: u64,
    /// Per channel counts over the detail span, unsorted.
    pub channels: Vec<(Arc<str>, Counts)>,
    /// Interactions whose channel overflowed the bounded tallies.
    pub channels_other: Counts,
    /// Journeys whose first interaction with this MOT is in the counter span (the journey
    /// funnel's "reached"; never counted for a MOT beyond its experience's 64th).
    pub journeys_reached: u64,
    /// Journeys abandoned in the counter span (at last interaction + timeout, like the
    /// experience's abandoned count) whose latest interaction was with this MOT.
    pub journeys_abandoned_here: u64,
    /// The earliest event time counted for this MOT in the partitions read, ms (any window:
    /// where its data begins); `None` without data. Merges by minimum.
    pub data_since_ms: Option<i64>,
    pub(crate) evicted: u8,
}

/// The earlier of two optional times.
pub(crate) fn min_time(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn merge_named<T: Copy>(
    into: &mut Vec<(Arc<str>, T)>,
    from: &[(Arc<str>, T)],
    add: impl Fn(&mut T, T),
) {
    for (name, v) in from {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, acc)) => add(acc, *v),
            None => into.push((Arc::clone(name), *v)),
        }
    }
}

impl MotAggregate {
    /// `false` if some bucket of the plan had been evicted when it was read (only when the
    /// plan's `now_ms` lags the writers'); [`crate::Aggregator`] then re-reads at a coarser
    /// tier.
    pub fn is_complete(&self) -> bool {
        self.evicted == 0
    }

    /// Adds `o` into `self` (aggregates of the same plan).
    pub fn merge(&mut self, o: &MotAggregate) {
        self.counts.add(o.counts);
        self.trend = match (self.trend, o.trend) {
            (Some((mut c, mut p)), Some((oc, op))) => {
                c.add(oc);
                p.add(op);
                Some((c, p))
            }
            (a, b) => a.or(b),
        };
        self.late += o.late;
        self.rejected_future += o.rejected_future;
        self.latency.merge(&o.latency);
        merge_named(&mut self.reasons, &o.reasons, |a, b| *a += b);
        self.reasons_other += o.reasons_other;
        merge_named(&mut self.channels, &o.channels, Counts::add);
        self.channels_other.add(o.channels_other);
        self.journeys_reached += o.journeys_reached;
        self.journeys_abandoned_here += o.journeys_abandoned_here;
        self.data_since_ms = min_time(self.data_since_ms, o.data_since_ms);
        self.evicted |= o.evicted;
    }

    pub(crate) fn add_reason(&mut self, name: Option<&Arc<str>>, n: u64) {
        match name {
            Some(name) => merge_named(&mut self.reasons, &[(Arc::clone(name), n)], |a, b| *a += b),
            None => self.reasons_other += n,
        }
    }

    pub(crate) fn add_channel(&mut self, name: Option<&Arc<str>>, c: Counts) {
        match name {
            Some(name) => merge_named(&mut self.channels, &[(Arc::clone(name), c)], Counts::add),
            None => self.channels_other.add(c),
        }
    }
}

/// One experience over one [`crate::WindowPlan`]: journeys and the impact-weighted failures
/// of its MOTs. Additive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperienceAggregate {
    /// Journeys whose first interaction is in the counter span.
    pub started: u64,
    /// Journeys that reached the SCO in the counter span (at the SCO's event time).
    pub completed: u64,
    /// Journeys closed without SCO, at last interaction + timeout, in the counter span.
    pub abandoned: u64,
    /// Σ over its MOTs of impact weight × failures in the counter span, in 1/256 units
    /// (the denominator of every MOT's impact share).
    pub weighted_failures: u64,
    /// Interactions per SCO of the journeys completed in the detail span.
    pub mots_per_sco: CountHistogram,
    /// Journeys under way now (open, SCO not reached), as of the latest expiry pass: a gauge,
    /// not a count over the window.
    pub in_flight: u64,
    /// Of those, the ones whose latest interaction failed (same gauge).
    pub stalled: u64,
    pub(crate) evicted: u8,
}

impl ExperienceAggregate {
    /// Adds `o` into `self` (aggregates of the same plan).
    pub fn merge(&mut self, o: &ExperienceAggregate) {
        self.weighted_failures += o.weighted_failures;
        self.started += o.started;
        self.completed += o.completed;
        self.abandoned += o.abandoned;
        self.in_flight += o.in_flight;
        self.stalled += o.stalled;
        self.mots_per_sco.merge(&o.mots_per_sco);
        self.evicted |= o.evicted;
    }
}

//! A MOT's counts over time: the window a status reads, cut into equal steps, for charts of
//! the SMOTO rate against its target. Read from the same counter rings and with the same
//! plan as [`crate::Aggregator::status_mot`], so the steps of a series add up to that
//! status's counts.

use crate::aggregate::Counts;
use crate::aggregator::Aggregator;
use crate::bulk::{mot_windows, read_span};
use crate::error::QueryError;
use crate::plan::Span;
use crate::topology::MotIdx;

/// One step of a [`MotSeries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPoint {
    /// Start of the step, ms since the epoch.
    pub from_ms: i64,
    /// Successes and failures in the step, merged over all partitions; `None` when a bucket
    /// of it had already been evicted (only when `now_ms` lags the writers).
    pub counts: Option<Counts>,
}

/// A MOT's counts over `span`, in steps of `step_ms`, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct MotSeries {
    /// The MOT.
    pub mot: MotIdx,
    /// What the series covers: the status's counts span (the last step holds `now_ms` and
    /// is partial).
    pub span: Span,
    /// Width of each step, ms: a whole number of the span's buckets.
    pub step_ms: u64,
    /// The steps, oldest first; the first may be narrower when the span's buckets do not
    /// divide evenly (it starts at `span.from_ms`).
    pub points: Vec<SeriesPoint>,
}

impl Aggregator {
    /// MOT `mot`'s counts over the window `window_ms` ending at `now_ms`, in at most
    /// `max_points` steps (at least 1), each a whole number of the buckets the status reads.
    /// `window_ms` in 1..=longest counter retention.
    pub fn mot_series(
        &self,
        mot: MotIdx,
        window_ms: u64,
        max_points: usize,
        now_ms: i64,
    ) -> Result<MotSeries, QueryError> {
        let topo = self.topology();
        if topo.mot(mot).is_none() {
            return Err(QueryError::UnknownMot(mot.0, topo.mot_count()));
        }
        let plan = self.plan(window_ms, now_ms)?;
        let r = plan.counts;
        let buckets = r.last - r.first + 1;
        let max_points = i64::try_from(max_points.max(1)).unwrap_or(i64::MAX);
        // Ceiling division: never more than `max_points` steps.
        let per_step = (buckets + max_points - 1) / max_points;
        let parts = self.partitions();
        let mut points = Vec::with_capacity(usize::try_from(buckets / per_step + 1).unwrap_or(0));
        // Steps are aligned to the end (the newest bucket closes the last step), so that the
        // chart's newest point moves with time and the oldest one absorbs the remainder.
        let mut last = r.last;
        while last >= r.first {
            let first = (last - per_step + 1).max(r.first);
            let mut acc = Some(Counts::default());
            for p in &parts {
                let c = match mot_windows(p, mot.0 as usize) {
                    Some((head, ring)) => {
                        read_span(&p.shared.layout, head, ring, r.tier, first, last)
                    }
                    None => Some(Counts::default()),
                };
                acc = acc.zip(c).map(|(mut a, c)| {
                    a.add(c);
                    a
                });
            }
            points.push(SeriesPoint {
                from_ms: first.saturating_mul(r.res_ms),
                counts: acc,
            });
            last = first - 1;
        }
        points.reverse();
        Ok(MotSeries {
            mot,
            span: plan.counts_span(),
            step_ms: u64::try_from(per_step.saturating_mul(r.res_ms)).unwrap_or(u64::MAX),
            points,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::one_experience;
    use crate::{Aggregator, MotIdx, MotKey, Observation, PartitionId, QueryError, WindowConfig};

    fn obs(mot: u32, t: i64, success: bool) -> Observation<'static> {
        Observation::new(MotKey::Known(MotIdx(mot)), t, success)
    }

    #[test]
    fn the_steps_add_up_to_the_status_counts_at_every_standard_window() {
        let agg = Aggregator::new(one_experience(2), WindowConfig::default()).expect("aggregator");
        let now = 1_700_000_400_000i64 + 700;
        let mut times: Vec<i64> = (0..3 * 24 * 20)
            .map(|i| now - 3 * 86_400_000 + i * 180_000 + 11)
            .collect();
        times.extend((0..1_200).map(|i| now - 600_000 + i * 500));
        times.sort_unstable();
        let (p0, p1) = (agg.partition(PartitionId(0)), agg.partition(PartitionId(1)));
        for (k, &t) in times.iter().enumerate() {
            let p = if k % 2 == 0 { &p0 } else { &p1 };
            p.writer().apply(&obs(0, t, k % 5 != 0), t);
        }
        for w in [300_000, 3_600_000, 86_400_000, 259_200_000] {
            let s = agg.status_mot(MotIdx(0), w, now).expect("status");
            let series = agg.mot_series(MotIdx(0), w, 60, now).expect("series");
            assert!(series.points.len() <= 60, "window {w}");
            assert_eq!(series.span, s.span, "window {w}");
            let (mut ok, mut bad) = (0, 0);
            for p in &series.points {
                let c = p.counts.expect("nothing evicted at now");
                ok += c.successes;
                bad += c.failures;
            }
            assert_eq!((ok, bad), (s.successes, s.failures), "window {w}");
            assert!(s.amount > 0, "window {w} has data");
            let first = series.points.first().expect("points").from_ms;
            assert_eq!(
                first, s.span.from_ms,
                "window {w} starts where the span does"
            );
            for pair in series.points.windows(2) {
                assert!(pair[0].from_ms < pair[1].from_ms);
            }
        }
    }

    #[test]
    fn the_newest_step_holds_now_and_steps_are_whole_buckets() {
        let agg = Aggregator::new(one_experience(1), WindowConfig::default()).expect("aggregator");
        let now = 1_700_000_000_500i64;
        agg.partition(PartitionId(0))
            .writer()
            .apply(&obs(0, now, false), now);
        let s = agg.mot_series(MotIdx(0), 300_000, 60, now).expect("series");
        assert_eq!(s.step_ms % s.span.resolution_ms, 0);
        let last = s.points.last().expect("points");
        assert!(last.from_ms <= now && now < last.from_ms + s.step_ms as i64);
        assert_eq!(last.counts.map(|c| c.failures), Some(1));
    }

    #[test]
    fn an_unknown_mot_or_window_is_an_error() {
        let agg = Aggregator::new(one_experience(1), WindowConfig::default()).expect("aggregator");
        assert!(matches!(
            agg.mot_series(MotIdx(9), 60_000, 10, 0),
            Err(QueryError::UnknownMot(9, 1))
        ));
        assert!(agg.mot_series(MotIdx(0), 0, 10, 0).is_err());
    }
}

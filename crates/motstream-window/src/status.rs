//! Status views: the one place where window aggregates become rates, budgets, burn rates,
//! trends, percentiles and rankings. Every consumer (gRPC, Prometheus, alert engine) gets its
//! numbers from here, so they agree. Empty windows give amount 0 and rates `None`, never NaN.

use crate::aggregate::{Counts, ExperienceAggregate, MotAggregate};
use crate::config::StatusOptions;
use crate::plan::Span;
use crate::topology::{ExpIdx, MotIdx, MotSpec};

/// Direction of the SMOTO rate against the previous equal window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendDirection {
    /// The success rate rose by more than the flat threshold (better).
    Up,
    /// The success rate fell by more than the flat threshold (worse).
    Down,
    /// Within the threshold.
    Flat,
}

/// The window against the previous window of equal length, both read at one resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// The current window at the trend's resolution (may be coarser than the status span).
    pub span: Span,
    /// The previous window: the same number of buckets, just before.
    pub previous_span: Span,
    /// Counts over `span`.
    pub current: Counts,
    /// Counts over `previous_span`.
    pub previous: Counts,
    /// Current minus previous SMOTO rate (a ratio in -1..=1); `None` if either is empty.
    pub rate_delta: Option<f64>,
    /// `None` if either window is empty.
    pub direction: Option<TrendDirection>,
}

/// Latency percentiles over the detail span, each within 2% of the exact value (values
/// ≥ 2^24 ms report the largest recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySummary {
    /// Interactions that reported a duration.
    pub count: u64,
    /// Median, ms; `None` when `count` is 0.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Largest recorded, ms.
    pub max_ms: Option<u32>,
}

/// One failure reason and how many failures gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCount {
    /// The reason as emitted (cut to `max_label_bytes`).
    pub reason: String,
    /// Failures with this reason over the detail span.
    pub count: u64,
}

/// One channel's interactions.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStatus {
    /// The channel as emitted.
    pub channel: String,
    /// Its successes and failures over the detail span.
    pub counts: Counts,
    /// successes / amount, 0..=1.
    pub success_rate: f64,
}

/// How one MOT performs over one window, merged over all partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct MotStatus {
    /// The MOT.
    pub mot: MotIdx,
    /// Its experience.
    pub experience: ExpIdx,
    /// The window asked for, ms.
    pub window_ms: u64,
    /// What the counts cover: every bucket overlapping `[now - window, now]`, so at least
    /// the window and less than one bucket more; `resolution_ms` is the bucket width used.
    pub span: Span,
    /// Interactions: successes + failures.
    pub amount: u64,
    /// Moments of magic.
    pub successes: u64,
    /// Moments of misery.
    pub failures: u64,
    /// successes / amount (0..=1); `None` when amount is 0.
    pub smoto_rate: Option<f64>,
    /// The SMOTO target (0..1).
    pub target: f64,
    /// `1 - burn_rate`: 1 = untouched, 0 = spent, negative = overspent. `None` when empty.
    pub error_budget_remaining: Option<f64>,
    /// `(failures / amount) / (1 - target)`: 1 = failing exactly at the budget. `None`
    /// when empty.
    pub burn_rate: Option<f64>,
    /// Moments of magic per moment of misery; `None` without failures.
    pub magic_per_misery: Option<f64>,
    /// Against the previous equal window; `None` when no tier retains two windows (3 days
    /// by default).
    pub trend: Option<Trend>,
    /// What latency, reasons, channels, late and rejected counts cover (coarser than
    /// `span`); `None` if no detail tier holds the window.
    pub detail_span: Option<Span>,
    /// Latency percentiles over `detail_span`.
    pub latency: LatencySummary,
    /// Most frequent failure reasons over `detail_span`, most frequent first.
    pub top_reasons: Vec<ReasonCount>,
    /// Failures with a reason not listed in `top_reasons` (including overflowed tallies).
    pub reasons_other: u64,
    /// The channel with the lowest success rate among those with at least
    /// `min_channel_amount` interactions over `detail_span`.
    pub worst_channel: Option<ChannelStatus>,
    /// Every channel tallied over `detail_span`, most interactions first (ties by name), at
    /// most `top_channels` of them.
    pub channels: Vec<ChannelStatus>,
    /// Interactions over `detail_span` whose channel is not in `channels`: beyond
    /// `top_channels`, or overflowed the bounded tallies ([`crate::LABEL_SLOTS`] distinct
    /// channels per detail bucket, `max_channels_per_partition` per partition). Interactions
    /// that named no channel are in neither.
    pub channels_other: Counts,
    /// This MOT's share (0..=1) of its experience's impact-weighted failures over `span`;
    /// `None` when the experience has no weighted failures.
    pub impact: Option<f64>,
    /// Events beyond the allowed lateness over `detail_span` (by arrival watermark).
    pub late: u64,
    /// Events rejected as too far in the future over `detail_span`.
    pub rejected_future: u64,
    /// A partition holding (or that held) this MOT's data is being rebuilt: numbers are
    /// incomplete and alerts should wait.
    pub warming: bool,
    /// Where this MOT's data begins: its earliest event time held (any window), ms; `None`
    /// without data. With `now`, it says how much of a window the data covers.
    pub data_since_ms: Option<i64>,
}

/// One step of an experience's journey funnel: how many journeys reached a MOT and how many
/// stopped there, over the experience status's `span`, merged over all partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelStep {
    /// The MOT.
    pub mot: MotIdx,
    /// Journeys whose first interaction with this MOT is in the span (each journey counts
    /// once per MOT, retries included once); `None` for a MOT beyond its experience's 64th,
    /// whose visits the journey tracker does not tell apart. Journeys that started before
    /// the span count too, so a step may exceed the journeys started in it.
    pub journeys_reached: Option<u64>,
    /// Journeys abandoned in the span (at last interaction + timeout) whose latest
    /// interaction, in event time, was with this MOT: where they stopped.
    pub journeys_abandoned_here: u64,
}

/// How one experience performs over one window, merged over all partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperienceStatus {
    /// The experience.
    pub experience: ExpIdx,
    /// The window asked for, ms.
    pub window_ms: u64,
    /// What counts and journey counts cover (see [`MotStatus::span`]).
    pub span: Span,
    /// Interactions over all its MOTs.
    pub amount: u64,
    /// Successes over all its MOTs.
    pub successes: u64,
    /// Failures over all its MOTs.
    pub failures: u64,
    /// successes / amount; `None` when empty.
    pub smoto_rate: Option<f64>,
    /// Journeys that started in `span`.
    pub journeys_started: u64,
    /// Journeys that reached the SCO in `span`.
    pub journeys_completed: u64,
    /// Journeys abandoned (timed out without SCO) in `span`.
    pub journeys_abandoned: u64,
    /// completed / (completed + abandoned): the share of journeys that ended in `span`
    /// with a Successful Customer Outcome; `None` when none ended.
    pub sco_rate: Option<f64>,
    /// Journeys under way now (open, SCO not reached): a gauge as of the latest expiry pass
    /// (about a second old), not a count over the window.
    pub journeys_in_flight: u64,
    /// Of those, the ones whose latest interaction failed: customers stuck after a failure.
    /// It rises as soon as an incident strands customers, long before they count as
    /// abandoned (after the experience's journey timeout).
    pub journeys_stalled: u64,
    /// How long a journey of this experience may be idle before it counts as abandoned, ms.
    pub journey_timeout_ms: u64,
    /// SCOs recorded over `detail_span` (for the MOTs-per-SCO percentiles).
    pub mots_per_sco_count: u64,
    /// Median interactions a journey needed to reach its SCO (optimum: one per MOT).
    pub mots_per_sco_p50: Option<u32>,
    /// 95th percentile of the same.
    pub mots_per_sco_p95: Option<u32>,
    /// What the MOTs-per-SCO percentiles cover.
    pub detail_span: Option<Span>,
    /// Its MOTs' statuses, in MOT index order.
    pub mots: Vec<MotStatus>,
    /// The journey funnel over `span`: one step per MOT, in journey order (the order of
    /// `mots`). Journeys abandoned here add up, over the steps, to `journeys_abandoned`.
    pub funnel: Vec<FunnelStep>,
    /// Any of its MOTs is warming.
    pub warming: bool,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The spans of one plan, resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spans {
    pub window_ms: u64,
    pub counts: Span,
    pub trend: Option<(Span, Span)>,
    pub detail: Option<Span>,
}

/// Builds one MOT's status from its merged aggregate. `weight_fp` is its impact weight and
/// `exp_weighted_failures` the sum over its experience's MOTs of weight × failures over the
/// same span, both in 1/256 units.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mot_status(
    mot: MotIdx,
    spec: &MotSpec,
    weight_fp: u64,
    spans: &Spans,
    a: &MotAggregate,
    exp_weighted_failures: u64,
    opts: &StatusOptions,
    warming: bool,
) -> MotStatus {
    let amount = a.counts.amount();
    let failure_ratio = ratio(a.counts.failures, amount);
    let burn_rate = failure_ratio.map(|f| f / (1.0 - spec.target));
    let trend = spans
        .trend
        .zip(a.trend)
        .map(|((span, previous_span), (current, previous))| {
            let rate_delta = current
                .success_rate()
                .zip(previous.success_rate())
                .map(|(c, p)| c - p);
            let direction = rate_delta.map(|d| {
                if d > opts.trend_flat_epsilon {
                    TrendDirection::Up
                } else if d < -opts.trend_flat_epsilon {
                    TrendDirection::Down
                } else {
                    TrendDirection::Flat
                }
            });
            Trend {
                span,
                previous_span,
                current,
                previous,
                rate_delta,
                direction,
            }
        });
    let mut reasons: Vec<ReasonCount> = a
        .reasons
        .iter()
        .map(|(r, n)| ReasonCount {
            reason: r.to_string(),
            count: *n,
        })
        .collect();
    reasons.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.reason.cmp(&y.reason)));
    let listed = reasons.len().min(opts.top_reasons);
    let reasons_other = a.reasons_other + reasons[listed..].iter().map(|r| r.count).sum::<u64>();
    reasons.truncate(listed);
    let worst_channel = a
        .channels
        .iter()
        .filter(|(_, c)| c.amount() >= opts.min_channel_amount)
        .filter_map(|(name, c)| c.success_rate().map(|r| (name, *c, r)))
        .min_by(|x, y| {
            x.2.total_cmp(&y.2)
                .then_with(|| y.1.amount().cmp(&x.1.amount()))
                .then_with(|| x.0.cmp(y.0))
        })
        .map(|(name, counts, success_rate)| ChannelStatus {
            channel: name.to_string(),
            counts,
            success_rate,
        });
    let (channels, channels_other) = list_channels(a, opts.top_channels);
    let weighted = weight_fp as f64 * a.counts.failures as f64;
    let impact =
        (exp_weighted_failures > 0).then(|| (weighted / exp_weighted_failures as f64).min(1.0));
    let lat = &a.latency;
    let count = lat.count();
    MotStatus {
        mot,
        experience: spec.experience,
        window_ms: spans.window_ms,
        span: spans.counts,
        amount,
        successes: a.counts.successes,
        failures: a.counts.failures,
        smoto_rate: a.counts.success_rate(),
        target: spec.target,
        error_budget_remaining: burn_rate.map(|b| 1.0 - b),
        burn_rate,
        magic_per_misery: ratio(a.counts.successes, a.counts.failures),
        trend,
        detail_span: spans.detail,
        latency: LatencySummary {
            count,
            p50_ms: lat.percentile(0.50),
            p90_ms: lat.percentile(0.90),
            p99_ms: lat.percentile(0.99),
            max_ms: (count > 0).then(|| lat.max_ms()),
        },
        top_reasons: reasons,
        reasons_other,
        worst_channel,
        channels,
        channels_other,
        impact,
        late: a.late,
        rejected_future: a.rejected_future,
        warming,
        data_since_ms: a.data_since_ms,
    }
}

/// The channels of `a`, most interactions first, at most `top`, and the counts of the rest
/// (with the overflowed tallies).
fn list_channels(a: &MotAggregate, top: usize) -> (Vec<ChannelStatus>, Counts) {
    let mut channels: Vec<ChannelStatus> = a
        .channels
        .iter()
        .filter_map(|(name, c)| {
            c.success_rate().map(|success_rate| ChannelStatus {
                channel: name.to_string(),
                counts: *c,
                success_rate,
            })
        })
        .collect();
    channels.sort_by(|x, y| {
        y.counts
            .amount()
            .cmp(&x.counts.amount())
            .then_with(|| x.channel.cmp(&y.channel))
    });
    let mut other = a.channels_other;
    for c in channels.iter().skip(top) {
        other.add(c.counts);
    }
    channels.truncate(top);
    (channels, other)
}

/// One experience's funnel step for its MOT at `position`, from the MOT's merged aggregate.
pub(crate) fn funnel_step(mot: MotIdx, position: usize, a: &MotAggregate) -> FunnelStep {
    FunnelStep {
        mot,
        journeys_reached: (position < 64).then_some(a.journeys_reached),
        journeys_abandoned_here: a.journeys_abandoned_here,
    }
}

/// Builds one experience's status from its MOTs' statuses and funnel steps and its merged
/// journey aggregate.
pub(crate) fn experience_status(
    exp: ExpIdx,
    spans: &Spans,
    j: &ExperienceAggregate,
    journey_timeout_ms: u64,
    mots: Vec<MotStatus>,
    funnel: Vec<FunnelStep>,
) -> ExperienceStatus {
    let successes = mots.iter().map(|m| m.successes).sum();
    let failures = mots.iter().map(|m| m.failures).sum();
    let counts = Counts {
        successes,
        failures,
    };
    ExperienceStatus {
        experience: exp,
        window_ms: spans.window_ms,
        span: spans.counts,
        amount: counts.amount(),
        successes,
        failures,
        smoto_rate: counts.success_rate(),
        journeys_started: j.started,
        journeys_completed: j.completed,
        journeys_abandoned: j.abandoned,
        sco_rate: ratio(j.completed, j.completed + j.abandoned),
        journeys_in_flight: j.in_flight,
        journeys_stalled: j.stalled,
        journey_timeout_ms,
        mots_per_sco_count: j.mots_per_sco.count(),
        mots_per_sco_p50: j.mots_per_sco.percentile(0.50),
        mots_per_sco_p95: j.mots_per_sco.percentile(0.95),
        detail_span: spans.detail,
        warming: mots.iter().any(|m| m.warming),
        mots,
        funnel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn spans() -> Spans {
        let s = Span {
            from_ms: 0,
            to_ms: 61_000,
            resolution_ms: 1_000,
        };
        Spans {
            window_ms: 60_000,
            counts: s,
            trend: Some((s, s)),
            detail: Some(s),
        }
    }

    fn spec() -> MotSpec {
        MotSpec {
            experience: ExpIdx(0),
            target: 0.98,
            impact_weight: 2.0,
        }
    }

    #[test]
    fn empty_window_gives_zero_amount_and_no_rates() {
        let a = MotAggregate {
            trend: Some(Default::default()),
            ..Default::default()
        };
        let s = mot_status(
            MotIdx(0),
            &spec(),
            512,
            &spans(),
            &a,
            0,
            &StatusOptions::default(),
            false,
        );
        assert_eq!(s.amount, 0);
        assert_eq!(
            (
                s.smoto_rate,
                s.burn_rate,
                s.error_budget_remaining,
                s.impact
            ),
            (None, None, None, None)
        );
        assert_eq!(s.latency.p99_ms, None);
        let t = s.trend.expect("the plan has a trend");
        assert_eq!((t.rate_delta, t.direction), (None, None));
    }

    #[test]
    fn burn_rate_and_budget_follow_the_failure_ratio_against_the_target() {
        let a = MotAggregate {
            counts: Counts {
                successes: 96,
                failures: 4,
            },
            trend: Some((
                Counts {
                    successes: 96,
                    failures: 4,
                },
                Counts {
                    successes: 99,
                    failures: 1,
                },
            )),
            ..Default::default()
        };
        let s = mot_status(
            MotIdx(0),
            &spec(),
            512,
            &spans(),
            &a,
            16 * 256,
            &StatusOptions::default(),
            false,
        );
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(s.burn_rate, 2.0), "{:?}", s.burn_rate);
        assert!(close(s.error_budget_remaining, -1.0));
        assert!(close(s.impact, 0.5));
        assert!(close(s.magic_per_misery, 24.0));
        let t = s.trend.expect("trend");
        assert!(close(t.rate_delta, -0.03));
        assert_eq!(t.direction, Some(TrendDirection::Down));
    }

    #[test]
    fn channels_beyond_the_top_fold_into_other_with_the_overflowed_tallies() {
        let ch = |s, f| Counts {
            successes: s,
            failures: f,
        };
        let a = MotAggregate {
            channels: vec![
                (Arc::from("b"), ch(3, 0)),
                (Arc::from("a"), ch(2, 1)),
                (Arc::from("c"), ch(1, 1)),
                (Arc::from("d"), ch(0, 9)),
            ],
            channels_other: ch(4, 4),
            ..Default::default()
        };
        let (listed, other) = list_channels(&a, 2);
        assert_eq!(
            listed
                .iter()
                .map(|c| (c.channel.as_str(), c.success_rate))
                .collect::<Vec<_>>(),
            vec![("d", 0.0), ("a", 2.0 / 3.0)],
            "most interactions first, ties by name"
        );
        assert_eq!(other, ch(4 + 3 + 1, 4 + 1));
    }

    #[test]
    fn worst_channel_needs_the_minimum_amount_and_top_reasons_keep_the_rest_as_other() {
        let ch = |s, f| Counts {
            successes: s,
            failures: f,
        };
        let a = MotAggregate {
            counts: ch(100, 30),
            channels: vec![
                (Arc::from("web"), ch(5, 10)),
                (Arc::from("kiosk"), ch(30, 20)),
                (Arc::from("app"), ch(60, 0)),
            ],
            reasons: (0..7)
                .map(|i| (Arc::from(format!("r{i}")), 10 - i))
                .collect(),
            reasons_other: 1,
            ..Default::default()
        };
        let s = mot_status(
            MotIdx(0),
            &spec(),
            512,
            &spans(),
            &a,
            60 * 256,
            &StatusOptions::default(),
            false,
        );
        let w = s.worst_channel.expect("a channel qualifies");
        assert_eq!(w.channel, "kiosk");
        assert_eq!(
            s.channels
                .iter()
                .map(|c| (c.channel.as_str(), c.counts.amount()))
                .collect::<Vec<_>>(),
            vec![("app", 60), ("kiosk", 50), ("web", 15)]
        );
        assert_eq!(s.channels_other, Counts::default());
        assert_eq!(
            s.top_reasons.iter().map(|r| r.count).collect::<Vec<_>>(),
            vec![10, 9, 8, 7, 6]
        );
        assert_eq!(s.reasons_other, 1 + 5 + 4);
    }
}

//! Which tier and buckets answer a window: computed once per query from `(window, now)` and
//! the layout, identical for every partition so their aggregates add up.
//!
//! A window of `w` ms at `now` covers every bucket that overlaps `[now - w, now]`, so the
//! span read is at least `w` and less than `w` plus one bucket; the current bucket is
//! partial. Each part picks the finest tier that holds the whole span:
//! - counts: the finest counter tier;
//! - trend: the finest counter tier that holds two such windows back to back;
//! - detail (latency, reasons, channels, late, rejected): the finest detail tier.

use crate::aggregate::{EVICTED_COUNTS, EVICTED_DETAIL, EVICTED_TREND};
use crate::config::{Layout, Tier};
use crate::error::QueryError;

/// A half-open span of event time `[from_ms, to_ms)` and the bucket width it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start of the oldest bucket read, ms since the epoch.
    pub from_ms: i64,
    /// End (exclusive) of the newest bucket read: the end of the bucket holding `now_ms`.
    pub to_ms: i64,
    /// Bucket width, ms.
    pub resolution_ms: u64,
}

/// Buckets `first..=last` of tier `tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub tier: usize,
    pub res_ms: i64,
    pub first: i64,
    pub last: i64,
}

impl Range {
    fn len(&self) -> i64 {
        self.last - self.first + 1
    }

    fn span(&self) -> Span {
        let r = self.res_ms;
        Span {
            from_ms: self.first.saturating_mul(r),
            to_ms: self.last.saturating_add(1).saturating_mul(r),
            resolution_ms: r as u64,
        }
    }
}

fn range(tiers: &[Tier], tier: usize, window_ms: u64, now_ms: i64) -> Option<Range> {
    let t = tiers.get(tier)?;
    let from = now_ms.saturating_sub(window_ms.min(i64::MAX as u64) as i64);
    Some(Range {
        tier,
        res_ms: t.res_ms,
        first: t.index(from),
        last: t.index(now_ms),
    })
}

fn pick(
    tiers: &[Tier],
    from_tier: usize,
    window_ms: u64,
    now_ms: i64,
    windows: i64,
) -> Option<Range> {
    (from_tier..tiers.len()).find_map(|i| {
        let r = range(tiers, i, window_ms, now_ms)?;
        (r.len() * windows <= tiers[i].readable()).then_some(r)
    })
}

/// A resolved window query: which buckets of which tiers each part of a status reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    window_ms: u64,
    now_ms: i64,
    pub(crate) counts: Range,
    /// (current, previous) windows of equal bucket count.
    pub(crate) trend: Option<(Range, Range)>,
    pub(crate) detail: Option<Range>,
}

impl WindowPlan {
    pub(crate) fn new(l: &Layout, window_ms: u64, now_ms: i64) -> Result<Self, QueryError> {
        if window_ms == 0 || window_ms > l.max_retention_ms {
            return Err(QueryError::BadWindow(window_ms, l.max_retention_ms));
        }
        let counts = pick(&l.counter, 0, window_ms, now_ms, 1)
            .or_else(|| {
                range(
                    &l.counter,
                    l.counter.len().saturating_sub(1),
                    window_ms,
                    now_ms,
                )
            })
            .ok_or(QueryError::BadWindow(window_ms, l.max_retention_ms))?;
        Ok(Self {
            window_ms,
            now_ms,
            counts,
            trend: Self::trend_from(l, 0, window_ms, now_ms),
            detail: pick(&l.detail, 0, window_ms, now_ms, 1),
        })
    }

    fn trend_from(l: &Layout, tier: usize, window_ms: u64, now_ms: i64) -> Option<(Range, Range)> {
        let cur = pick(&l.counter, tier, window_ms, now_ms, 2)?;
        let n = cur.len();
        Some((
            cur,
            Range {
                tier: cur.tier,
                res_ms: cur.res_ms,
                first: cur.first - n,
                last: cur.first - 1,
            },
        ))
    }

    /// The plan with every part that met an evicted bucket moved to the next coarser tier;
    /// `None` if no part can move (a counts part at the coarsest tier stays, reading the
    /// evicted buckets as empty).
    pub(crate) fn coarsen(&self, l: &Layout, evicted: u8) -> Option<Self> {
        let mut p = *self;
        let mut moved = false;
        if evicted & EVICTED_COUNTS != 0
            && let Some(r) = range(
                &l.counter,
                self.counts.tier + 1,
                self.window_ms,
                self.now_ms,
            )
        {
            p.counts = r;
            moved = true;
        }
        if evicted & EVICTED_TREND != 0
            && let Some((cur, _)) = self.trend
        {
            p.trend = Self::trend_from(l, cur.tier + 1, self.window_ms, self.now_ms);
            moved = true;
        }
        if evicted & EVICTED_DETAIL != 0
            && let Some(d) = self.detail
        {
            p.detail = pick(&l.detail, d.tier + 1, self.window_ms, self.now_ms, 1);
            moved = true;
        }
        moved.then_some(p)
    }

    /// The window length asked for, ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// The `now_ms` the plan was made for.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// What the counts (and journey counts) cover.
    pub fn counts_span(&self) -> Span {
        self.counts.span()
    }

    /// The (current, previous) windows of the trend; `None` when no tier holds both.
    pub fn trend_spans(&self) -> Option<(Span, Span)> {
        self.trend.map(|(c, p)| (c.span(), p.span()))
    }

    /// What latency, reasons, channels, late/rejected counts and MOTs per SCO cover;
    /// `None` when no detail tier holds the window.
    pub fn detail_span(&self) -> Option<Span> {
        self.detail.map(|d| d.span())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WindowConfig;

    const MIN: u64 = 60_000;

    fn plan(w: u64) -> (Layout, WindowPlan) {
        let l = Layout::new(WindowConfig::default()).expect("default config");
        let p = WindowPlan::new(&l, w, 1_700_000_012_345).expect("valid window");
        (l, p)
    }

    #[test]
    fn each_standard_window_is_read_at_the_finest_tier_that_holds_it() {
        for (w, res, trend_res, detail_res) in [
            (MIN, 1_000, Some(1_000), Some(MIN)),
            (5 * MIN, 1_000, Some(MIN), Some(MIN)),
            (30 * MIN, MIN, Some(MIN), Some(30 * MIN)),
            (60 * MIN, MIN, Some(MIN), Some(30 * MIN)),
            (120 * MIN, MIN, Some(MIN), Some(30 * MIN)),
            (360 * MIN, MIN, Some(10 * MIN), Some(30 * MIN)),
            (1_440 * MIN, 10 * MIN, Some(10 * MIN), Some(720 * MIN)),
            (4_320 * MIN, 10 * MIN, None, Some(720 * MIN)),
        ] {
            let (_, p) = plan(w);
            let s = p.counts_span();
            assert_eq!(s.resolution_ms, res, "window {w}");
            assert!(
                s.to_ms - s.from_ms >= w as i64,
                "window {w} spans at least w"
            );
            assert!(
                s.to_ms - s.from_ms < (w + 2 * res) as i64,
                "window {w} spans under w + 2 buckets"
            );
            assert_eq!(
                p.trend_spans().map(|(c, _)| c.resolution_ms),
                trend_res,
                "trend {w}"
            );
            assert_eq!(
                p.detail_span().map(|d| d.resolution_ms),
                detail_res,
                "detail {w}"
            );
        }
    }

    #[test]
    fn windows_outside_retention_are_rejected() {
        let l = Layout::new(WindowConfig::default()).expect("default config");
        assert!(WindowPlan::new(&l, 0, 0).is_err());
        assert!(WindowPlan::new(&l, 4_320 * MIN + 1, 0).is_err());
    }
}

//! Window coverage: a rule judges a window only once the MOT's data covers enough of it.
//!
//! Without this, a restart on a fresh topic or a new MOT judged a 3-day window from a few
//! seconds of traffic: the embedded default ticketed bag-drop 4 s after start on a burn of
//! 1.33 from a handful of events. A rule now waits until the MOT's data (from its earliest
//! event held in the windows, which after a restart includes the replayed history) spans at
//! least `min_coverage` of the rule's longest window; until then it reports insufficient
//! data, and nothing about it changes (as while a partition rebuilds).
//!
//! The default share, [`DEFAULT_MIN_COVERAGE`], is just below 1/12, the ratio of the short to
//! the long window of each of the SRE Workbook's multiwindow rules (5m/1h, 30m/6h, 2h/24h,
//! 6h/3d): a burn from a MOT's first second pages as soon as its short window could have
//! filled (1h × 0.08 = 4.8 min for the fast page), while the ticket rules need 1.9 h (24h) and
//! 5.8 h (3d) of data, so minutes of data never ticket.

use crate::policy::{Rule, RuleKind};

/// The default share of a rule's longest window the data must cover (see the module doc).
pub const DEFAULT_MIN_COVERAGE: f64 = 0.08;

/// The longest window `rule` reads, ms (`windows_ms` is [`crate::Policy::windows_ms`]).
pub fn rule_span_ms(rule: &Rule, windows_ms: &[u64]) -> u64 {
    let at = |i: usize| windows_ms.get(i).copied().unwrap_or(0);
    match rule.kind {
        RuleKind::Burn { long, short, .. } => at(long).max(at(short)),
        RuleKind::Floor { over, .. } => at(over),
    }
}

/// The share (0..=1) of a `span_ms` window ending at `now_ms` that data from `since_ms` on
/// covers; 0 without data.
pub fn coverage(since_ms: Option<i64>, now_ms: i64, span_ms: u64) -> f64 {
    match since_ms {
        Some(since) if span_ms > 0 => {
            let covered = now_ms.saturating_sub(since).max(0) as f64;
            (covered / span_ms as f64).min(1.0)
        }
        _ => 0.0,
    }
}

/// Whether data from `since_ms` on covers at least `min_coverage` of the rule's longest window
/// at `now_ms`.
pub fn covered(
    rule: &Rule,
    windows_ms: &[u64],
    since_ms: Option<i64>,
    now_ms: i64,
    min_coverage: f64,
) -> bool {
    let Some(since) = since_ms else { return false };
    let need = (rule_span_ms(rule, windows_ms) as f64 * min_coverage).ceil();
    now_ms.saturating_sub(since) as f64 >= need
}

/// The names of `rules` that report insufficient data at `now_ms` (for status views).
pub fn insufficient<'r>(
    rules: &'r [Rule],
    windows_ms: &[u64],
    since_ms: Option<i64>,
    now_ms: i64,
    min_coverage: f64,
) -> Vec<&'r str> {
    rules
        .iter()
        .filter(|r| !covered(r, windows_ms, since_ms, now_ms, min_coverage))
        .map(|r| r.name.as_str())
        .collect()
}

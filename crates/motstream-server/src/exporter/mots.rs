//! Per-MOT, per-experience and unidentified-MOT series, derived from the aggregator when
//! scraped: nothing here runs per event.
//!
//! Counters come from the aggregator's live totals (events counted once, when first applied
//! live; see motstream_window's `live` module), so they never decrease across rebalances.
//! Gauges over windows (`window` label) are the aggregator's status views at scrape time.
//! Label values are bounded by the catalog: MOT and experience ids, owners and teams, the
//! channels a MOT declares (`_other` beyond them), the ten biggest failure reasons of the last
//! hour (`_other` beyond them), the twenty most frequent unidentified ids (`_overflow` beyond
//! them). A MOT that leaves the catalog leaves the next scrape with it.

use std::collections::BTreeMap;

use motstream_core::Catalog;
use motstream_window::{
    Counts, DURATION_BOUNDS_MS, ExperienceStatus, LiveSnapshot, MPS_BOUNDS, MotIdx,
};

use super::text::{Labels, Text};
use crate::alert_feed::{AlertFeed, AlertState};
use crate::state::AggregatorState;

/// Failure reasons kept per MOT; the rest are summed under `_other`.
const TOP_REASONS: usize = 10;
/// Unidentified ids kept; the rest are summed under `_overflow`.
const TOP_UNIDENTIFIED: usize = 20;
/// The window of the reason and channel breakdowns.
const BREAKDOWN_WINDOW: (&str, u64) = ("1h", 3_600_000);

/// The four labels of every per-MOT series, by MOT index.
fn mot_labels(cat: &Catalog) -> Vec<[(&'static str, &str); 4]> {
    cat.mots
        .iter()
        .map(|m| {
            let exp = cat
                .experiences
                .get(m.experience.0 as usize)
                .map_or("", |e| e.id.as_str());
            [
                ("experience", exp),
                ("mot", m.id.as_str()),
                ("owner", m.owner.name.as_str()),
                ("team", m.owner.team.as_str()),
            ]
        })
        .collect()
}

/// Renders every per-MOT and per-experience family. `windows` are `(label, ms)`, each within
/// the retention; `statuses` the aggregator's status of every experience for each of them.
pub(crate) fn render(
    t: &mut Text,
    state: &AggregatorState,
    alerts: &AlertFeed,
    statuses: &[(&str, Vec<ExperienceStatus>)],
    now_ms: i64,
) {
    let cat = &*state.catalog;
    let labels = mot_labels(cat);
    catalog_facts(t, cat, &labels);
    let live = state.agg.live_snapshot();
    if let Some(live) = &live {
        live_counters(t, cat, &labels, live);
    }
    windowed(t, cat, &labels, statuses);
    let warming = state.agg.warming();
    t.family(
        "motstream_mot_warming",
        "gauge",
        "1 while a partition carrying the MOT is being rebuilt (its windows are incomplete).",
    );
    for (i, l) in labels.iter().enumerate() {
        let w = warming.mots.contains(&MotIdx(i as u32));
        t.int("motstream_mot_warming", l, &[], u64::from(w));
    }
    alert_state(t, cat, &labels, alerts);
    breakdowns(t, state, &labels, now_ms);
    unidentified(t, state, live.as_ref());
}

fn catalog_facts(t: &mut Text, cat: &Catalog, labels: &[[(&str, &str); 4]]) {
    t.family(
        "motstream_mot_info",
        "gauge",
        "Catalog facts of a MOT, always 1: its type and runbook.",
    );
    for (m, l) in cat.mots.iter().zip(labels) {
        let extra = [
            ("type", m.kind.as_str()),
            ("runbook", m.runbook.as_deref().unwrap_or("")),
        ];
        t.int("motstream_mot_info", l, &extra, 1);
    }
    t.family(
        "motstream_mot_smoto_target",
        "gauge",
        "The MOT's SMOTO target: the share of interactions that should succeed (0..1).",
    );
    for (m, l) in cat.mots.iter().zip(labels) {
        t.num("motstream_mot_smoto_target", l, &[], m.target);
    }
}

fn live_counters(t: &mut Text, cat: &Catalog, labels: &[[(&str, &str); 4]], live: &LiveSnapshot) {
    let name = "motstream_mot_interactions_total";
    t.family(
        name,
        "counter",
        "Interactions applied live, by SMOTO outcome (success: a moment of magic).",
    );
    for (c, l) in live.mots.iter().zip(labels) {
        t.int(name, l, &[("outcome", "success")], c.successes);
        t.int(name, l, &[("outcome", "failure")], c.failures);
    }
    let name = "motstream_mot_late_events_total";
    t.family(
        name,
        "counter",
        "Events later than the allowed lateness: counted, not applied.",
    );
    for (c, l) in live.mots.iter().zip(labels) {
        t.int(name, l, &[], c.late);
    }
    let name = "motstream_mot_future_events_total";
    t.family(
        name,
        "counter",
        "Events further ahead of the clock than the allowed skew: rejected, not applied.",
    );
    for (c, l) in live.mots.iter().zip(labels) {
        t.int(name, l, &[], c.rejected_future);
    }
    let name = "motstream_mot_duration_seconds";
    t.family(
        name,
        "histogram",
        "Duration of interactions that reported one.",
    );
    let bounds: Vec<String> = DURATION_BOUNDS_MS
        .iter()
        .map(|ms| format!("{}", f64::from(*ms) / 1000.0))
        .collect();
    for (c, l) in live.mots.iter().zip(labels) {
        let sum = c.duration_sum_ms as f64 / 1000.0;
        t.histogram(name, l, &bounds, &c.duration_buckets, sum);
    }

    let exp_labels: Vec<[(&str, &str); 1]> = cat
        .experiences
        .iter()
        .map(|e| [("experience", e.id.as_str())])
        .collect();
    let journeys = [
        (
            "motstream_experience_journeys_started_total",
            "Journeys that began (first interaction applied live).",
        ),
        (
            "motstream_experience_journeys_completed_total",
            "Journeys that reached the experience's SCO: successful customer outcomes.",
        ),
        (
            "motstream_experience_journeys_abandoned_total",
            "Journeys that timed out before reaching the SCO.",
        ),
    ];
    for (k, (name, help)) in journeys.iter().enumerate() {
        t.family(name, "counter", help);
        for (c, l) in live.experiences.iter().zip(&exp_labels) {
            let v = [
                c.journeys_started,
                c.journeys_completed,
                c.journeys_abandoned,
            ];
            t.int(name, l, &[], v[k]);
        }
    }
    let name = "motstream_experience_mots_per_sco";
    t.family(
        name,
        "histogram",
        "Interactions a journey needed to reach its SCO (one is the optimum).",
    );
    let bounds: Vec<String> = MPS_BOUNDS.iter().map(u32::to_string).collect();
    for (c, l) in live.experiences.iter().zip(&exp_labels) {
        t.histogram(name, l, &bounds, &c.mps_buckets, c.mps_sum as f64);
    }
}

/// The status views' gauges, one series per MOT (or experience) and window.
fn windowed(
    t: &mut Text,
    cat: &Catalog,
    labels: &[[(&str, &str); 4]],
    statuses: &[(&str, Vec<ExperienceStatus>)],
) {
    type Pick = fn(&motstream_window::MotStatus) -> Option<f64>;
    let families: [(&str, &str, Pick); 4] = [
        (
            "motstream_mot_smoto_rate",
            "Share of the window's interactions that met the SMOTO (absent without interactions).",
            |s| s.smoto_rate,
        ),
        (
            "motstream_mot_burn_rate",
            "Failure ratio over the window divided by the error budget (1 - target).",
            |s| s.burn_rate,
        ),
        (
            "motstream_mot_error_budget_remaining",
            "1 - burn rate over the window; negative when the budget is spent.",
            |s| s.error_budget_remaining,
        ),
        (
            "motstream_mot_impact",
            "The MOT's share of its experience's impact-weighted failures over the window (0..1).",
            |s| s.impact,
        ),
    ];
    for (name, help, pick) in families {
        t.family(name, "gauge", help);
        for (w, exps) in statuses {
            for s in exps.iter().flat_map(|e| &e.mots) {
                if let (Some(l), Some(v)) = (labels.get(s.mot.0 as usize), pick(s)) {
                    t.num(name, l, &[("window", w)], v);
                }
            }
        }
    }
    let name = "motstream_mot_window_interactions";
    t.family(
        name,
        "gauge",
        "Interactions in the window, from the rolling windows (includes rebuilt history).",
    );
    for (w, exps) in statuses {
        for s in exps.iter().flat_map(|e| &e.mots) {
            if let Some(l) = labels.get(s.mot.0 as usize) {
                t.int(name, l, &[("window", w)], s.amount);
            }
        }
    }
    let name = "motstream_experience_sco_rate";
    t.family(
        name,
        "gauge",
        "Finished journeys that reached the SCO over the window (absent when none finished).",
    );
    for (w, exps) in statuses {
        for e in exps {
            let id = cat
                .experiences
                .get(e.experience.0 as usize)
                .map_or("", |x| x.id.as_str());
            if let Some(v) = e.sco_rate {
                t.num(name, &[("experience", id)], &[("window", w)], v);
            }
        }
    }
}

fn alert_state(t: &mut Text, cat: &Catalog, labels: &[[(&str, &str); 4]], alerts: &AlertFeed) {
    let name = "motstream_mot_alert_firing";
    t.family(
        name,
        "gauge",
        "Built-in alert engine: 1 while the alert fires, 0 while pending; absent otherwise.",
    );
    for a in alerts.active() {
        let v = match a.state {
            AlertState::Firing => 1,
            AlertState::Pending => 0,
            AlertState::Resolved => continue,
        };
        // Alerts for MOTs outside the catalog would be unbounded label values: not exported.
        let Some(l) = cat
            .mot_idx(a.mot_id())
            .and_then(|i| labels.get(i.0 as usize))
            .filter(|l| l[0].1 == a.experience_id())
        else {
            continue;
        };
        let extra = [("alertname", a.alertname()), ("severity", a.severity())];
        t.int(name, l, &extra, v);
    }
}

/// Failure reasons and channels over the last hour, merged over partitions.
fn breakdowns(t: &mut Text, state: &AggregatorState, labels: &[[(&str, &str); 4]], now_ms: i64) {
    let agg = &state.agg;
    let Ok(plan) = agg.plan(BREAKDOWN_WINDOW.1, now_ms) else {
        return;
    };
    let n = labels.len();
    let mut reasons: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n];
    let mut other_reasons = vec![0u64; n];
    let mut channels: Vec<BTreeMap<&str, Counts>> = vec![BTreeMap::new(); n];
    let parts = agg.partitions();
    for (i, m) in state.catalog.mots.iter().enumerate() {
        for p in &parts {
            let a = p.mot_aggregate(MotIdx(i as u32), &plan);
            for (r, c) in &a.reasons {
                *reasons[i].entry(r.to_string()).or_default() += c;
            }
            other_reasons[i] += a.reasons_other;
            let mut other = a.channels_other;
            for (ch, c) in &a.channels {
                match m.channels.iter().find(|d| d.as_str() == &**ch) {
                    Some(d) => channels[i].entry(d.as_str()).or_default().add(*c),
                    None => other.add(*c),
                }
            }
            if other.amount() > 0 {
                channels[i].entry("_other").or_default().add(other);
            }
        }
    }
    let name = "motstream_mot_failure_reasons";
    t.family(
        name,
        "gauge",
        "Moments of misery in the window by failure reason (top ten, then _other).",
    );
    let w = [("window", BREAKDOWN_WINDOW.0)];
    for (i, l) in labels.iter().enumerate() {
        let mut v: Vec<(&String, &u64)> = reasons[i].iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let rest: u64 =
            v.iter().skip(TOP_REASONS).map(|(_, c)| **c).sum::<u64>() + other_reasons[i];
        for (r, c) in v.into_iter().take(TOP_REASONS) {
            t.int(name, l, &[w[0], ("reason", r)], *c);
        }
        if rest > 0 {
            t.int(name, l, &[w[0], ("reason", "_other")], rest);
        }
    }
    let name = "motstream_mot_channel_interactions";
    t.family(
        name,
        "gauge",
        "Interactions in the window by channel (as declared in the catalog, then _other) and outcome.",
    );
    for (i, l) in labels.iter().enumerate() {
        for (ch, c) in &channels[i] {
            t.int(
                name,
                l,
                &[w[0], ("channel", ch), ("outcome", "success")],
                c.successes,
            );
            t.int(
                name,
                l,
                &[w[0], ("channel", ch), ("outcome", "failure")],
                c.failures,
            );
        }
    }
}

fn unidentified(t: &mut Text, state: &AggregatorState, live: Option<&LiveSnapshot>) {
    if let Some(live) = live {
        let name = "motstream_unidentified_interactions_total";
        t.family(
            name,
            "counter",
            "Events, applied live, for MOT ids the catalog does not declare.",
        );
        t.int(name, &[], &[], live.unidentified);
    }
    let report = state.agg.unidentified();
    let name = "motstream_unidentified_mots";
    t.family(
        name,
        "gauge",
        "Distinct MOT ids the catalog does not declare, held in the window state.",
    );
    t.int(name, &[], &[], report.mots.len() as u64);
    let name = "motstream_unidentified_mot_interactions";
    t.family(
        name,
        "gauge",
        "Interactions held in the window state per undeclared MOT id (top twenty, then _overflow).",
    );
    let rest: u64 = report
        .mots
        .iter()
        .skip(TOP_UNIDENTIFIED)
        .map(|u| u.count)
        .sum::<u64>()
        + report.overflow;
    let none: &Labels<'_> = &[];
    for u in report.mots.iter().take(TOP_UNIDENTIFIED) {
        t.int(name, &[("mot", &u.id)], none, u.count);
    }
    if rest > 0 {
        t.int(name, &[("mot", "_overflow")], none, rest);
    }
}

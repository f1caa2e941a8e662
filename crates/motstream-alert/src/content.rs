//! What an alert says: the labels receivers route by and the annotations an owner acts on.

use std::collections::BTreeMap;

use motstream_core::{Catalog, MotIdx};
use motstream_window::MotStatus;

use crate::engine::Evaluation;
use crate::policy::{Rule, RuleKind};

/// An alert's identity and text, ready for any receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertContent {
    /// Stable for one episode of one (MOT, rule): `experience/mot/rule/episode_ms`.
    pub alert_id: String,
    /// alertname, severity, experience, mot, owner, team, rule, source.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The id of an episode.
pub fn alert_id(catalog: &Catalog, mot: MotIdx, rule: &str, episode_ms: i64) -> String {
    let m = catalog.mot(mot);
    let e = catalog.experience(m.experience);
    format!("{}/{}/{rule}/{episode_ms}", e.id, m.id)
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".into(), |r| format!("{:.2}%", r * 100.0))
}

fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".into(), |r| format!("{r:.2}x"))
}

fn human_ms(ms: u64) -> String {
    humanize(std::time::Duration::from_millis(ms))
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s >= 3_600 && s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// Builds an alert's labels and annotations. `detail` is the MOT's status over the rule's
/// short window (reasons, channel, SMOTO rate); without it those annotations are left out.
pub fn build(
    catalog: &Catalog,
    windows_ms: &[u64],
    mot: MotIdx,
    rule: &Rule,
    episode_ms: i64,
    eval: &Evaluation,
    detail: Option<&MotStatus>,
) -> AlertContent {
    let m = catalog.mot(mot);
    let e = catalog.experience(m.experience);
    let mut labels = BTreeMap::new();
    for (k, v) in [
        ("alertname", rule.alertname.as_str()),
        ("severity", rule.severity.as_str()),
        ("experience", e.id.as_str()),
        ("mot", m.id.as_str()),
        ("owner", m.owner.name.as_str()),
        ("team", m.owner.team.as_str()),
        ("rule", rule.name.as_str()),
        ("source", "motstream"),
    ] {
        labels.insert(k.to_owned(), v.to_owned());
    }
    let w = |i: usize| windows_ms.get(i).copied().unwrap_or(0);
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        a.insert(k.to_owned(), v);
    };
    let (what, long_ms, short_ms) = match rule.kind {
        RuleKind::Burn {
            factor,
            threshold,
            long,
            short,
        } => {
            let cap = if threshold < factor {
                format!(" (catalog asks {factor}x; capped for the low target)")
            } else {
                String::new()
            };
            (
                format!(
                    "burns its error budget at {} over {} and {} over {}, above {threshold:.2}x{cap}",
                    times(eval.burn_long),
                    human_ms(w(long)),
                    times(eval.burn_short),
                    human_ms(w(short)),
                ),
                w(long),
                w(short),
            )
        }
        RuleKind::Floor { below, over } => (
            format!(
                "SMOTO rate {} over {}, below the floor of {}",
                pct(eval.long.success_rate()),
                human_ms(w(over)),
                pct(Some(below))
            ),
            w(over),
            w(over),
        ),
    };
    put("summary", format!("{} ({}) {what}", m.id, e.id));
    put(
        "description",
        format!(
            "MOT {} of experience {}, owned by {} (team {}, {}): {what}. Rule {} ({}).",
            m.name,
            e.name,
            m.owner.name,
            m.owner.team,
            m.owner.contact,
            rule.name,
            rule.severity.as_str()
        ),
    );
    let rate = detail
        .and_then(|d| d.smoto_rate)
        .or(eval.short.success_rate());
    put("smoto_rate", pct(rate));
    put("target", pct(Some(m.target)));
    put("burn_rate_long", times(eval.burn_long));
    put("burn_rate_short", times(eval.burn_short));
    put("window_long", human_ms(long_ms));
    put("window_short", human_ms(short_ms));
    put("threshold", format!("{}", eval.threshold));
    put("burn_state", eval.burn_state.as_str().to_owned());
    put("error_budget_left", pct(eval.burn_long.map(|b| 1.0 - b)));
    put(
        "interactions",
        format!(
            "{} over {} ({} failed)",
            eval.long.amount(),
            human_ms(long_ms),
            eval.long.failures
        ),
    );
    if let Some(d) = detail {
        if !d.top_reasons.is_empty() {
            put(
                "top_failure_reasons",
                d.top_reasons
                    .iter()
                    .map(|r| format!("{} ({})", r.reason, r.count))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if let Some(c) = &d.worst_channel {
            put(
                "most_affected_channel",
                format!(
                    "{} ({} successful of {})",
                    c.channel,
                    pct(Some(c.success_rate)),
                    c.counts.amount()
                ),
            );
        }
    }
    if let Some(r) = &m.runbook {
        put("runbook_url", r.clone());
    }
    if let Some(t) = &catalog.dashboard_url {
        put(
            "dashboard_url",
            t.replace("{mot}", &m.id).replace("{experience}", &e.id),
        );
    }
    AlertContent {
        alert_id: alert_id(catalog, mot, &rule.name, episode_ms),
        labels,
        annotations: a,
    }
}

//! How the client shows answers: aligned tables for people, JSON for scripts. JSON keys are
//! the proto field names; absent optional values are `null`.

use std::fmt::Write as _;

use motstream_proto::v1 as pb;
use serde_json::{Value, json};

/// Left-aligned columns, two spaces apart; numeric-looking cells right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = |c: &str| {
        c.chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_digit() || ch == '-' || ch == '+')
            && c.chars().any(|ch| ch.is_ascii_digit())
    };
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut parts = Vec::new();
        for (c, w) in cells.zip(&width) {
            let pad = w.saturating_sub(c.chars().count());
            parts.push(if numeric(c) {
                format!("{}{c}", " ".repeat(pad))
            } else {
                format!("{c}{}", " ".repeat(pad))
            });
        }
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut header.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
}

/// A ratio as a percentage with two decimals; `-` when absent.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// A signed percentage-point change; `-` when absent.
pub fn delta(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:+.2}pp", v * 100.0))
}

pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// A duration in ms, in the unit that reads best.
pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 1_000.0 => format!("{v:.0}ms"),
        Some(v) if v < 60_000.0 => format!("{:.1}s", v / 1_000.0),
        Some(v) => format!("{:.1}m", v / 60_000.0),
    }
}

/// The columns `mot top` and `watch` show.
pub const STATUS_HEADER: &[&str] = &[
    "MOT",
    "WINDOW",
    "AMOUNT",
    "SMOTO",
    "TARGET",
    "BURN",
    "BUDGET",
    "TREND",
    "P99",
    "IMPACT",
    "WORST CHANNEL",
    "ALERT",
];

pub fn status_row(s: &pb::MotStatus) -> Vec<String> {
    vec![
        format!("{}{}", s.mot_id, if s.warming { " (warming)" } else { "" }),
        s.window.clone(),
        s.amount.to_string(),
        pct(s.smoto_rate),
        pct(Some(s.target)),
        num(s.burn_rate, 2),
        pct(s.error_budget_remaining),
        delta(s.trend),
        ms(s.latency_p99_ms),
        pct(Some(s.impact)),
        if s.worst_channel.is_empty() {
            "-".into()
        } else {
            s.worst_channel.clone()
        },
        s.alert_state.clone(),
    ]
}

pub fn status_json(s: &pb::MotStatus) -> Value {
    json!({
        "mot_id": s.mot_id, "experience_id": s.experience_id, "window": s.window,
        "resolution_ms": s.resolution_ms, "as_of_ms": s.as_of_ms, "amount": s.amount,
        "successes": s.successes, "failures": s.failures, "late": s.late,
        "smoto_rate": s.smoto_rate, "target": s.target,
        "error_budget_remaining": s.error_budget_remaining, "burn_rate": s.burn_rate,
        "trend": s.trend, "latency_p50_ms": s.latency_p50_ms, "latency_p90_ms": s.latency_p90_ms,
        "latency_p99_ms": s.latency_p99_ms,
        "top_failure_reasons": s.top_failure_reasons.iter().map(|r| json!({"reason": r.reason, "count": r.count})).collect::<Vec<_>>(),
        "worst_channel": s.worst_channel,
        "channels": s.channels.iter().map(channel_json).collect::<Vec<_>>(),
        "channels_other": s.channels_other.as_ref().map(channel_json),
        "impact": s.impact, "alert_state": s.alert_state, "warming": s.warming,
    })
}

fn channel_json(c: &pb::ChannelStatus) -> Value {
    json!({
        "channel": c.channel, "amount": c.amount, "successes": c.successes,
        "failures": c.failures, "smoto_rate": c.smoto_rate,
    })
}

/// `mot get`: the catalog facts, then one block per window.
pub fn get_mot(r: &pb::GetMotResponse) -> String {
    let mut out = String::new();
    if let Some(m) = &r.mot {
        let _ = writeln!(
            out,
            "{} ({}), experience {}",
            m.mot_id, m.name, m.experience_id
        );
        let _ = writeln!(
            out,
            "  owner {} <{}>, team {}; type {}; target {}; impact weight {}",
            m.owner_name,
            m.owner_contact,
            m.owner_team,
            m.r#type,
            pct(Some(m.target)),
            m.impact_weight
        );
        if !m.runbook_url.is_empty() {
            let _ = writeln!(out, "  runbook {}", m.runbook_url);
        }
    }
    let rows: Vec<Vec<String>> = r
        .windows
        .iter()
        .map(|s| {
            vec![
                s.window.clone(),
                s.amount.to_string(),
                s.successes.to_string(),
                s.failures.to_string(),
                pct(s.smoto_rate),
                num(s.burn_rate, 2),
                pct(s.error_budget_remaining),
                delta(s.trend),
                format!(
                    "{}/{}/{}",
                    ms(s.latency_p50_ms),
                    ms(s.latency_p90_ms),
                    ms(s.latency_p99_ms)
                ),
                pct(Some(s.impact)),
                s.alert_state.clone(),
                format!("{}s", s.resolution_ms / 1000),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "WINDOW",
            "AMOUNT",
            "MAGIC",
            "MISERY",
            "SMOTO",
            "BURN",
            "BUDGET",
            "TREND",
            "P50/P90/P99",
            "IMPACT",
            "ALERT",
            "RESOLUTION",
        ],
        &rows,
    ));
    for s in &r.windows {
        if !s.channels.is_empty() {
            let channels: Vec<String> = s
                .channels
                .iter()
                .map(|c| format!("{} {} ({})", c.channel, c.amount, pct(c.smoto_rate)))
                .collect();
            let other = s.channels_other.as_ref().map_or(0, |c| c.amount);
            let _ = writeln!(
                out,
                "{}: channels {}{}",
                s.window,
                channels.join(", "),
                if other > 0 {
                    format!(", other {other}")
                } else {
                    String::new()
                },
            );
        }
        if s.top_failure_reasons.is_empty() && s.worst_channel.is_empty() {
            continue;
        }
        let reasons: Vec<String> = s
            .top_failure_reasons
            .iter()
            .map(|r| format!("{} ({})", r.reason, r.count))
            .collect();
        let _ = writeln!(
            out,
            "{}: top failure reasons {}; worst channel {}{}",
            s.window,
            if reasons.is_empty() {
                "-".into()
            } else {
                reasons.join(", ")
            },
            if s.worst_channel.is_empty() {
                "-"
            } else {
                &s.worst_channel
            },
            if s.warming {
                " (warming: partitions rebuilding, numbers incomplete)"
            } else {
                ""
            },
        );
    }
    out
}

pub fn get_mot_json(r: &pb::GetMotResponse) -> Value {
    json!({
        "mot": r.mot.as_ref().map(|m| json!({
            "mot_id": m.mot_id, "name": m.name, "experience_id": m.experience_id, "type": m.r#type,
            "owner_name": m.owner_name, "owner_team": m.owner_team, "owner_contact": m.owner_contact,
            "target": m.target, "runbook_url": m.runbook_url, "impact_weight": m.impact_weight,
        })),
        "windows": r.windows.iter().map(status_json).collect::<Vec<_>>(),
    })
}

/// `experience get`: the headline numbers and the MOT table.
pub fn experience(r: &pb::GetExperienceResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}), window {}", r.experience_id, r.name, r.window);
    let _ = writeln!(
        out,
        "  SCO rate {} (SCO: {}); journeys started {}, completed {}, abandoned {} (idle {}); now in flight {}, stalled after a failure {}; MOTs per SCO p50 {} p95 {}\n",
        pct(r.sco_rate),
        r.sco_mot_id,
        r.journeys_started,
        r.journeys_completed,
        r.journeys_abandoned,
        motstream_core::units::short_duration_ms(r.journey_timeout_ms),
        r.journeys_in_flight,
        r.journeys_stalled,
        num(r.mots_per_sco_p50, 0),
        num(r.mots_per_sco_p95, 0),
    );
    let rows: Vec<Vec<String>> = r
        .mots
        .iter()
        .map(|m| {
            vec![
                m.mot_id.clone(),
                m.amount.to_string(),
                m.r#type.clone(),
                format!("{} ({})", m.owner_name, m.owner_team),
                delta(m.alignment),
                delta(m.trend),
                pct(m.ratio),
                pct(Some(m.impact)),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "MOT",
            "AMOUNT",
            "TYPE",
            "OWNERSHIP",
            "ALIGNMENT",
            "TREND",
            "SMOTO",
            "IMPACT",
        ],
        &rows,
    ));
    if !r.funnel.is_empty() {
        out.push_str("\nJourney funnel\n");
        let rows: Vec<Vec<String>> = r
            .funnel
            .iter()
            .map(|f| {
                vec![
                    f.mot_id.clone(),
                    f.journeys_reached
                        .map_or_else(|| "-".into(), |n| n.to_string()),
                    f.journeys_abandoned_here.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(&["MOT", "REACHED", "ABANDONED HERE"], &rows));
    }
    out
}

pub fn experience_json(r: &pb::GetExperienceResponse) -> Value {
    json!({
        "experience_id": r.experience_id, "name": r.name, "window": r.window,
        "sco_mot_id": r.sco_mot_id, "sco_rate": r.sco_rate,
        "journeys_started": r.journeys_started, "journeys_completed": r.journeys_completed,
        "journeys_abandoned": r.journeys_abandoned,
        "journeys_in_flight": r.journeys_in_flight, "journeys_stalled": r.journeys_stalled,
        "journey_timeout_ms": r.journey_timeout_ms,
        "mots_per_sco_p50": r.mots_per_sco_p50, "mots_per_sco_p95": r.mots_per_sco_p95,
        "mots": r.mots.iter().map(|m| json!({
            "mot_id": m.mot_id, "name": m.name, "amount": m.amount, "type": m.r#type,
            "owner_name": m.owner_name, "owner_team": m.owner_team, "alignment": m.alignment,
            "trend": m.trend, "ratio": m.ratio, "impact": m.impact, "target": m.target,
        })).collect::<Vec<_>>(),
        "funnel": r.funnel.iter().map(|f| json!({
            "mot_id": f.mot_id, "journeys_reached": f.journeys_reached,
            "journeys_abandoned_here": f.journeys_abandoned_here,
        })).collect::<Vec<_>>(),
    })
}

pub fn unidentified(r: &pb::ListUnidentifiedMotsResponse) -> String {
    let rows: Vec<Vec<String>> = r
        .mots
        .iter()
        .map(|u| {
            vec![
                u.mot_id.clone(),
                u.count.to_string(),
                time(u.first_seen_ms),
                time(u.last_seen_ms),
                if u.example_channel.is_empty() {
                    "-".into()
                } else {
                    u.example_channel.clone()
                },
            ]
        })
        .collect();
    let mut out = table(
        &["MOT ID", "COUNT", "FIRST SEEN", "LAST SEEN", "CHANNEL"],
        &rows,
    );
    if r.overflow > 0 {
        let _ = writeln!(
            out,
            "\n{} more events had ids beyond the table's capacity",
            r.overflow
        );
    }
    out
}

pub fn unidentified_json(r: &pb::ListUnidentifiedMotsResponse) -> Value {
    json!({
        "mots": r.mots.iter().map(|u| json!({
            "mot_id": u.mot_id, "count": u.count, "first_seen_ms": u.first_seen_ms,
            "last_seen_ms": u.last_seen_ms, "example_channel": u.example_channel,
        })).collect::<Vec<_>>(),
        "overflow": r.overflow,
    })
}

pub const ALERT_HEADER: &[&str] = &[
    "AT", "STATE", "SEVERITY", "ALERT", "MOT", "TEAM", "ALERT ID",
];

pub fn alert_row(t: &pb::AlertTransition) -> Vec<String> {
    vec![
        time(t.at_ms),
        t.state.clone(),
        t.severity.clone(),
        t.alertname.clone(),
        t.mot_id.clone(),
        t.team.clone(),
        t.alert_id.clone(),
    ]
}

/// The columns of `alerts --active`.
pub const ACTIVE_HEADER: &[&str] = &[
    "SINCE", "FOR", "STATE", "SEVERITY", "ALERT", "MOT", "TEAM", "ALERT ID",
];

/// An active alert; `now_ms` for how long it has been in its state.
pub fn active_row(t: &pb::AlertTransition, now_ms: i64) -> Vec<String> {
    let age = u64::try_from(now_ms.saturating_sub(t.at_ms)).unwrap_or(0);
    vec![
        time(t.at_ms),
        motstream_core::units::short_duration_ms(age),
        t.state.clone(),
        t.severity.clone(),
        t.alertname.clone(),
        t.mot_id.clone(),
        t.team.clone(),
        t.alert_id.clone(),
    ]
}

/// One line of cells padded to `widths` (the last cell unpadded), two spaces apart: for
/// tables printed a row at a time.
pub fn fixed_line(cells: &[String], widths: &[usize]) -> String {
    let mut parts = Vec::with_capacity(cells.len());
    for (i, c) in cells.iter().enumerate() {
        let w = widths.get(i).copied().unwrap_or(0);
        parts.push(format!(
            "{c}{}",
            " ".repeat(w.saturating_sub(c.chars().count()))
        ));
    }
    format!("{}\n", parts.join("  ").trim_end())
}

pub fn alert_json(t: &pb::AlertTransition) -> Value {
    json!({
        "alert_id": t.alert_id, "alertname": t.alertname, "severity": t.severity,
        "experience_id": t.experience_id, "mot_id": t.mot_id, "owner": t.owner, "team": t.team,
        "state": t.state, "at_ms": t.at_ms, "annotations": t.annotations,
    })
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub fn time(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let t = table(
            &["MOT", "AMOUNT"],
            &[
                vec!["bag-drop".into(), "7".into()],
                vec!["security".into(), "1200".into()],
            ],
        );
        assert_eq!(t, "MOT       AMOUNT\nbag-drop       7\nsecurity    1200\n");
    }

    #[test]
    fn absent_values_show_as_dashes() {
        assert_eq!(pct(None), "-");
        assert_eq!(pct(Some(0.98765)), "98.77%");
        assert_eq!(delta(Some(-0.031)), "-3.10pp");
        assert_eq!(time(0), "1970-01-01 00:00:00");
    }
}

//! `motstream catalog check FILE`: validate a catalog and summarise it.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use motstream_core::Catalog;
use serde_json::json;

use crate::cli::{CatalogCheck, CatalogCmd};

fn pct(r: f64) -> String {
    let s = format!("{:.2}", r * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// The human summary: experiences, then a MOT table per experience.
pub fn summary(c: &Catalog) -> String {
    let mut out = String::new();
    let owners: std::collections::BTreeSet<&str> =
        c.mots.iter().map(|m| m.owner.team.as_str()).collect();
    let _ = writeln!(
        out,
        "{}: valid. {} experience{}, {} MOTs, {} owning teams",
        c.origin,
        c.experiences.len(),
        if c.experiences.len() == 1 { "" } else { "s" },
        c.mots.len(),
        owners.len()
    );
    for e in &c.experiences {
        let _ = writeln!(out, "\nexperience {} ({})", e.id, e.name);
        let _ = writeln!(
            out,
            "  manager: {} <{}>, team {}",
            e.manager.name, e.manager.contact, e.manager.team
        );
        let _ = writeln!(out, "  SCO: {} succeeds", c.mot(e.sco_mot).id);
        let rows: Vec<[String; 7]> = e
            .mots
            .iter()
            .map(|&i| {
                let m = c.mot(i);
                let p = &m.alert_policy;
                let mut rules: Vec<String> = p
                    .burn_rates
                    .iter()
                    .map(|r| format!("{}x", r.factor))
                    .collect();
                if let Some(f) = &p.floor {
                    rules.push(format!("floor<{}", pct(f.below)));
                }
                [
                    m.id.clone(),
                    m.kind.clone(),
                    m.owner.team.clone(),
                    pct(m.target),
                    m.smoto
                        .max_duration
                        .map_or("-".into(), motstream_core::units::short_duration),
                    format!("{}", m.impact_weight),
                    format!("{} (min {} events)", rules.join(" "), p.min_events),
                ]
            })
            .collect();
        let head = [
            "MOT",
            "TYPE",
            "OWNER",
            "TARGET",
            "MAX DURATION",
            "IMPACT",
            "ALERT RULES",
        ];
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.len());
            }
        }
        let mut line = |cells: &[&str]| {
            let mut l = String::from("  ");
            for (cell, w) in cells.iter().zip(widths) {
                let _ = write!(l, "{cell:<w$}  ");
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(&head);
        for r in &rows {
            line(&r.each_ref().map(String::as_str));
        }
    }
    out.push_str(&motstream_server::alerting::catalog_notes(c));
    out
}

fn summary_json(c: &Catalog) -> serde_json::Value {
    json!({
        "valid": true,
        "origin": c.origin,
        "experiences": c.experiences.iter().map(|e| json!({
            "id": e.id,
            "name": e.name,
            "manager": { "name": e.manager.name, "team": e.manager.team, "contact": e.manager.contact },
            "sco_mot": c.mot(e.sco_mot).id,
            "mots": e.mots.iter().map(|&i| {
                let m = c.mot(i);
                json!({
                    "id": m.id, "name": m.name, "type": m.kind,
                    "owner": { "name": m.owner.name, "team": m.owner.team, "contact": m.owner.contact },
                    "target": m.target,
                    "max_duration_ms": m.smoto.max_duration.map(|d| d.as_millis() as u64),
                    "impact_weight": m.impact_weight,
                    "runbook": m.runbook,
                })
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "alert_threshold_caps": motstream_alert::Policy::compile(c).capped_notes(c),
    })
}

/// An invalid catalog as JSON: every problem with its file, line and field.
fn problems_json(e: &motstream_core::CatalogError) -> serde_json::Value {
    json!({
        "valid": false,
        "origin": e.origin,
        "problems": e.problems.iter().map(|p| json!({
            "file": e.origin,
            "line": p.line,
            "column": p.column,
            "field": p.field,
            "message": p.message,
        })).collect::<Vec<_>>(),
    })
}

/// `motstream catalog ...`.
pub fn run(cmd: &CatalogCmd) -> anyhow::Result<ExitCode> {
    let CatalogCmd::Check(CatalogCheck { file, json }) = cmd;
    if *json {
        // Errors as JSON too, on stdout, with exit status 1, so that a script reads one format.
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading catalog {}", file.display()))?;
        if let Err(e) = Catalog::from_yaml(&text, &file.display().to_string()) {
            write_stdout(&format!("{:#}\n", problems_json(&e)))?;
            return Ok(ExitCode::FAILURE);
        }
    }
    let catalog = motstream_loadgen::files::load_catalog(file)?;
    let text = if *json {
        format!("{:#}\n", summary_json(&catalog))
    } else {
        summary(&catalog)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout, returning (not panicking on) a closed pipe.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

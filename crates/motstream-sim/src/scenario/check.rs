//! Checks of a parsed scenario against the catalog, each problem with its line and field.

use std::time::Duration;

use motstream_core::{Catalog, Limits, MotIdx};

use super::raw::{RawIncident, RawMotSettings};
use super::{Incident, MotSettings, ScenarioProblem};
use motstream_core::yaml::{Seg, locate};

/// Collects problems with their lines while checking.
pub(super) struct Checker<'a> {
    text: &'a str,
    catalog: &'a Catalog,
    problems: Vec<ScenarioProblem>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(text: &'a str, catalog: &'a Catalog) -> Self {
        Self {
            text,
            catalog,
            problems: Vec::new(),
        }
    }

    /// Every problem found, in the order found.
    pub(super) fn into_problems(self) -> Vec<ScenarioProblem> {
        self.problems
    }

    fn report(&mut self, field: String, path: &[Seg<'_>], message: String) {
        self.problems.push(ScenarioProblem {
            line: locate(self.text, path),
            column: None,
            field,
            message,
        });
    }

    fn mot(&mut self, field: String, path: &[Seg<'_>], id: &str) -> Option<MotIdx> {
        let found = self.catalog.mot_idx(id);
        if found.is_none() {
            let known: Vec<&str> = self.catalog.mots.iter().map(|m| m.id.as_str()).collect();
            let list = if known.len() <= 12 {
                format!("; it declares {}", known.join(", "))
            } else {
                String::new()
            };
            self.report(
                field,
                path,
                format!(
                    "`{id}` is not a MOT of the catalog ({}){list}",
                    self.catalog.origin
                ),
            );
        }
        found
    }

    fn probability(&mut self, field: String, path: &[Seg<'_>], v: f64, lo_open: bool) -> bool {
        let ok = v.is_finite() && v <= 1.0 && if lo_open { v > 0.0 } else { v >= 0.0 };
        if !ok {
            let range = if lo_open {
                "more than 0, at most 1"
            } else {
                "0 to 1"
            };
            self.report(field, path, format!("{v} is not a probability ({range})"));
        }
        ok
    }

    fn duration(&mut self, field: String, path: &[Seg<'_>], s: &str) -> Option<Duration> {
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.report(
                    field,
                    path,
                    format!("`{s}` is not a duration such as 90s or 5m ({e})"),
                );
                None
            }
        }
    }

    fn reason(&mut self, field: String, path: &[Seg<'_>], r: &str) -> bool {
        let max = Limits::default().max_reason_bytes;
        let message = if r.trim().is_empty() {
            "must not be empty".to_owned()
        } else if r.len() > max {
            format!("is {} bytes long; events allow {max}", r.len())
        } else {
            return true;
        };
        self.report(field, path, message);
        false
    }

    pub(super) fn mot_settings(
        &mut self,
        id: &str,
        s: &RawMotSettings,
    ) -> Option<(MotIdx, String, MotSettings)> {
        let at = |k: &'static str| vec![Seg::Key("mots"), Seg::Key(id), Seg::Key(k)];
        let f = |k: &str| format!("mots.{id}.{k}");
        let mot = self.mot(format!("mots.{id}"), &[Seg::Key("mots"), Seg::Key(id)], id);
        let before = self.problems.len();
        if let Some(v) = s.visit
            && self.probability(f("visit"), &at("visit"), v, true)
            && v < 1.0
            && let Some(m) = mot
        {
            let exp = self.catalog.experience(self.catalog.mot(m).experience);
            if exp.sco_mot == m {
                let msg = format!(
                    "{v}: the SCO MOT of {} is part of every journey (visit must be 1)",
                    exp.id
                );
                self.report(f("visit"), &at("visit"), msg);
            }
        }
        if let Some(v) = s.failure_rate {
            self.probability(f("failure_rate"), &at("failure_rate"), v, false);
        }
        let typical = s.typical_duration.as_deref().and_then(|t| {
            let d = self.duration(f("typical_duration"), &at("typical_duration"), t)?;
            let max = Limits::default().max_duration_ms;
            if d.is_zero() || d.as_millis() > max.unsigned_abs().into() {
                let msg = format!("`{t}` must be more than 0 and at most 24h");
                self.report(f("typical_duration"), &at("typical_duration"), msg);
                return None;
            }
            Some(d)
        });
        if let Some(reasons) = &s.reasons {
            if reasons.is_empty() {
                let msg = "must list at least one reason (or be left out)".to_owned();
                self.report(f("reasons"), &at("reasons"), msg);
            }
            for (i, r) in reasons.iter().enumerate() {
                self.reason(format!("mots.{id}.reasons[{i}]"), &at("reasons"), r);
            }
        }
        let m = mot.filter(|_| self.problems.len() == before)?;
        let settings = MotSettings {
            visit: s.visit,
            failure_rate: s.failure_rate,
            typical_duration: typical,
            reasons: s.reasons.clone(),
        };
        Some((m, id.to_owned(), settings))
    }

    pub(super) fn incident(&mut self, i: usize, inc: &RawIncident) -> Option<Incident> {
        let at = |k: &'static str| vec![Seg::Key("incidents"), Seg::Index(i), Seg::Key(k)];
        let f = |k: &str| format!("incidents[{i}].{k}");
        let before = self.problems.len();
        let mot = self.mot(f("mot"), &at("mot"), &inc.mot);
        if let (Some(m), Some(ch)) = (mot, &inc.channel) {
            let offered = crate::behaviour::channels(self.catalog.mot(m));
            if !offered.contains(ch) {
                let msg = format!(
                    "`{ch}` is not a channel of {} (it is used on {})",
                    inc.mot,
                    offered.join(", ")
                );
                self.report(f("channel"), &at("channel"), msg);
            }
        }
        if let Some(v) = inc.failure_rate {
            self.probability(f("failure_rate"), &at("failure_rate"), v, false);
        }
        if let Some(v) = inc.slowdown
            && !(v.is_finite() && v > 0.0)
        {
            let msg = format!("{v} must be a factor > 0 (2 doubles durations)");
            self.report(f("slowdown"), &at("slowdown"), msg);
        }
        if inc.failure_rate.is_none() && inc.slowdown.is_none() {
            let msg = "an incident needs failure_rate, slowdown or both".to_owned();
            self.report(
                format!("incidents[{i}]"),
                &[Seg::Key("incidents"), Seg::Index(i)],
                msg,
            );
        }
        let from = self.duration(f("from"), &at("from"), &inc.from);
        let until = inc
            .until
            .as_deref()
            .and_then(|u| self.duration(f("until"), &at("until"), u));
        if let (Some(from), Some(until)) = (from, until)
            && until <= from
        {
            let msg = format!(
                "{} must be after from ({})",
                humantime::format_duration(until),
                humantime::format_duration(from)
            );
            self.report(f("until"), &at("until"), msg);
        }
        if let Some(r) = &inc.reason {
            self.reason(f("reason"), &at("reason"), r);
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Incident {
            name: inc.name.clone(),
            mot: mot?,
            mot_id: inc.mot.clone(),
            channel: inc.channel.clone(),
            failure_rate: inc.failure_rate,
            slowdown: inc.slowdown.unwrap_or(1.0),
            from: from?,
            until,
            reason: inc.reason.clone(),
        })
    }
}

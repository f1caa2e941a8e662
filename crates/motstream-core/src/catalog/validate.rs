//! From the file's text to a [`Catalog`]: parse, apply defaults, check, and collect every
//! problem with its line.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::Catalog;
use super::model::{
    AlertPolicy, BurnRule, ExpIdx, Experience, FloorRule, Index, Mot, MotIdx, Person, Severity,
    SmotoRule,
};
use super::raw::{RawAlertPolicy, RawCatalog, RawPerson};
use super::{CatalogError, Problem};
use crate::yaml::{Seg, locate, parse_error};

type Path = Vec<Seg<'static>>;

fn with(path: &[Seg<'static>], more: &[Seg<'static>]) -> Path {
    path.iter().chain(more).copied().collect()
}

use Seg::{Index as I, Key as K};

struct Checker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, path: &[Seg<'_>], message: impl Into<String>) {
        let mut field = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if field.is_empty() => field.push_str(k),
                Seg::Key(k) => {
                    field.push('.');
                    field.push_str(k);
                }
                Seg::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        self.problems.push(Problem {
            line: locate(self.text, path),
            column: None,
            field,
            message: message.into(),
        });
    }

    fn duration(&mut self, path: &[Seg<'_>], s: &str) -> Option<Duration> {
        match humantime::parse_duration(s.trim()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.report(path, "must be longer than zero");
                None
            }
            Err(e) => {
                self.report(
                    path,
                    format!("{s:?} is not a duration such as 90s, 5m or 6h: {e}"),
                );
                None
            }
        }
    }

    fn ratio(&mut self, path: &[Seg<'_>], v: f64) -> Option<f64> {
        if v.is_finite() && v > 0.0 && v < 1.0 {
            Some(v)
        } else {
            self.report(
                path,
                format!("{v} is not a ratio between 0 and 1 (exclusive)"),
            );
            None
        }
    }

    fn id(&mut self, path: &[Seg<'_>], id: &str) {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.report(
                path,
                format!(
                    "{id:?} is not an id: 1 to 128 of a-z, A-Z, 0-9, '-', '_', '.', starting with a letter or digit"
                ),
            );
        }
    }

    fn person(&mut self, path: &[Seg<'static>], p: &RawPerson) -> Person {
        for (key, v) in [
            ("name", &p.name),
            ("team", &p.team),
            ("contact", &p.contact),
        ] {
            if v.trim().is_empty() {
                self.report(&with(path, &[K(key)]), "must not be empty");
            }
        }
        Person {
            name: p.name.clone(),
            team: p.team.clone(),
            contact: p.contact.clone(),
        }
    }

    /// `base` with `raw`'s fields laid over it.
    fn policy(
        &mut self,
        path: &[Seg<'static>],
        base: &AlertPolicy,
        raw: &RawAlertPolicy,
    ) -> AlertPolicy {
        let mut p = base.clone();
        if let Some(n) = raw.min_events {
            p.min_events = n;
        }
        if let Some(f) = &raw.for_duration {
            match humantime::parse_duration(f.trim()) {
                Ok(d) => p.for_duration = d,
                Err(e) => self.report(
                    &with(path, &[K("for")]),
                    format!("{f:?} is not a duration: {e}"),
                ),
            }
        }
        if let Some(rules) = &raw.burn_rates {
            let mut names = HashSet::new();
            p.burn_rates = Vec::new();
            for (i, r) in rules.iter().enumerate() {
                let at = with(path, &[K("burn_rates"), I(i)]);
                if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
                    self.report(
                        &with(&at, &[K("name")]),
                        format!("{:?} is empty or repeated", r.name),
                    );
                }
                let severity = Severity::parse(&r.severity);
                if severity.is_none() {
                    self.report(
                        &with(&at, &[K("severity")]),
                        format!("{:?} is not page or ticket", r.severity),
                    );
                }
                if !(r.factor.is_finite() && r.factor > 0.0) {
                    self.report(
                        &with(&at, &[K("factor")]),
                        format!("{} must be a positive number", r.factor),
                    );
                }
                let long = self.duration(&with(&at, &[K("long")]), &r.long);
                let short = self.duration(&with(&at, &[K("short")]), &r.short);
                if let (Some(l), Some(s)) = (long, short)
                    && s >= l
                {
                    self.report(&with(&at, &[K("short")]), "must be shorter than long");
                }
                if let (Some(severity), Some(long), Some(short)) = (severity, long, short) {
                    p.burn_rates.push(BurnRule {
                        name: r.name.clone(),
                        severity,
                        factor: r.factor,
                        long,
                        short,
                    });
                }
            }
        }
        if let Some(f) = &raw.floor {
            let at = with(path, &[K("floor")]);
            if !f.enabled {
                p.floor = None;
            } else {
                let below = match f.below {
                    Some(b) => self.ratio(&with(&at, &[K("below")]), b),
                    None => {
                        self.report(&with(&at, &[K("below")]), "missing");
                        None
                    }
                };
                let over = match &f.over {
                    Some(o) => self.duration(&with(&at, &[K("over")]), o),
                    None => Some(Duration::from_secs(300)),
                };
                let severity = match &f.severity {
                    None => Some(Severity::Page),
                    Some(s) => {
                        let v = Severity::parse(s);
                        if v.is_none() {
                            self.report(
                                &with(&at, &[K("severity")]),
                                format!("{s:?} is not page or ticket"),
                            );
                        }
                        v
                    }
                };
                if let (Some(below), Some(over), Some(severity)) = (below, over, severity) {
                    p.floor = Some(FloorRule {
                        below,
                        over,
                        min_events: f.min_events.unwrap_or(p.min_events),
                        severity,
                    });
                }
            }
        }
        p
    }
}

pub(super) fn load(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
    // YAML syntax first (a syntax error leaves nothing to check further), then the shape,
    // then serde on the cleaned document, which cannot fail unless `shape` and `raw` disagree.
    let doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| parse_error(&e, text, origin))?;
    let (clean, shape_problems) = super::shape::check(&doc, text);
    let raw: RawCatalog =
        serde_norway::from_value(clean).map_err(|e| parse_error(&e, text, origin))?;
    let mut c = Checker {
        text,
        problems: Vec::new(),
    };
    if raw.version != 1 {
        c.report(
            &[K("version")],
            format!("{} is not a supported version (expected 1)", raw.version),
        );
    }

    let d = &raw.defaults;
    let dp: Path = vec![K("defaults")];
    let default_target = d
        .target
        .and_then(|t| c.ratio(&with(&dp, &[K("target")]), t));
    let default_weight = d.impact_weight.unwrap_or(1.0);
    if !(default_weight.is_finite() && default_weight >= 0.0) {
        c.report(
            &with(&dp, &[K("impact_weight")]),
            format!("{default_weight} must be zero or more"),
        );
    }
    let default_owner = d
        .owner
        .as_ref()
        .map(|o| c.person(&with(&dp, &[K("owner")]), o));
    let default_smoto = match d.smoto.as_ref().and_then(|s| s.max_duration.as_deref()) {
        None => SmotoRule::default(),
        Some(s) => SmotoRule {
            max_duration: c.duration(&with(&dp, &[K("smoto"), K("max_duration")]), s),
        },
    };
    let default_policy = match &d.alert_policy {
        Some(p) => c.policy(
            &with(&dp, &[K("alert_policy")]),
            &AlertPolicy::sre_workbook(),
            p,
        ),
        None => AlertPolicy::sre_workbook(),
    };

    let default_journey_timeout = d
        .journey_timeout
        .as_deref()
        .and_then(|t| c.duration(&with(&dp, &[K("journey_timeout")]), t));

    if raw.experiences.is_empty() {
        c.report(&[K("experiences")], "declares no experience");
    }
    let mut index = Index::default();
    let mut experiences = Vec::with_capacity(raw.experiences.len());
    let mut mots: Vec<Mot> = Vec::new();
    let mut mot_lines: HashMap<String, Path> = HashMap::new();
    for (ei, re) in raw.experiences.iter().enumerate() {
        let ep: Path = vec![K("experiences"), I(ei)];
        let exp_idx = ExpIdx(u32::try_from(ei).unwrap_or(u32::MAX));
        c.id(&with(&ep, &[K("id")]), &re.id);
        if index
            .experiences
            .insert(re.id.as_str().into(), exp_idx)
            .is_some()
        {
            c.report(
                &with(&ep, &[K("id")]),
                format!("experience {:?} is declared twice", re.id),
            );
        }
        if re.name.trim().is_empty() {
            c.report(&with(&ep, &[K("name")]), "must not be empty");
        }
        let manager = c.person(&with(&ep, &[K("manager")]), &re.manager);
        if re.mots.is_empty() {
            c.report(&with(&ep, &[K("mots")]), "declares no MOT");
        }
        let mut exp_mots = Vec::with_capacity(re.mots.len());
        for (mi, rm) in re.mots.iter().enumerate() {
            let mp = with(&ep, &[K("mots"), I(mi)]);
            let idx = MotIdx(u32::try_from(mots.len()).unwrap_or(u32::MAX));
            c.id(&with(&mp, &[K("id")]), &rm.id);
            if let Some(first) = mot_lines.get(&rm.id) {
                let first_line =
                    locate(text, first).map_or(String::new(), |l| format!(" (first at line {l})"));
                c.report(&with(&mp, &[K("id")]), format!("MOT {:?} is declared twice{first_line}; MOT ids are unique across the catalog", rm.id));
            } else {
                mot_lines.insert(rm.id.clone(), mp.clone());
                index.mots.insert(rm.id.as_str().into(), idx);
            }
            if rm.name.trim().is_empty() {
                c.report(&with(&mp, &[K("name")]), "must not be empty");
            }
            let owner = match (&rm.owner, &default_owner) {
                (Some(o), _) => c.person(&with(&mp, &[K("owner")]), o),
                (None, Some(o)) => o.clone(),
                (None, None) => {
                    c.report(
                        &with(&mp, &[K("owner")]),
                        "missing (set it here or in defaults.owner): alerts need somewhere to go",
                    );
                    Person {
                        name: String::new(),
                        team: String::new(),
                        contact: String::new(),
                    }
                }
            };
            let target = match (rm.target, default_target) {
                (Some(t), _) => c.ratio(&with(&mp, &[K("target")]), t),
                (None, Some(t)) => Some(t),
                (None, None) => {
                    c.report(
                        &with(&mp, &[K("target")]),
                        "missing (set it here or in defaults.target)",
                    );
                    None
                }
            };
            let impact_weight = rm.impact_weight.unwrap_or(default_weight);
            if !(impact_weight.is_finite() && impact_weight >= 0.0) {
                c.report(
                    &with(&mp, &[K("impact_weight")]),
                    format!("{impact_weight} must be zero or more"),
                );
            }
            let smoto = match rm.smoto.as_ref().and_then(|s| s.max_duration.as_deref()) {
                None => default_smoto,
                Some("none" | "off") => SmotoRule { max_duration: None },
                Some(s) => SmotoRule {
                    max_duration: c.duration(&with(&mp, &[K("smoto"), K("max_duration")]), s),
                },
            };
            if let Some(r) = &rm.runbook
                && !(r.starts_with("https://") || r.starts_with("http://"))
            {
                c.report(
                    &with(&mp, &[K("runbook")]),
                    format!("{r:?} is not an http(s) URL"),
                );
            }
            let alert_policy = match &rm.alert_policy {
                Some(p) => c.policy(&with(&mp, &[K("alert_policy")]), &default_policy, p),
                None => default_policy.clone(),
            };
            exp_mots.push(idx);
            mots.push(Mot {
                id: rm.id.clone(),
                name: rm.name.clone(),
                experience: exp_idx,
                kind: rm
                    .kind
                    .clone()
                    .or_else(|| d.kind.clone())
                    .unwrap_or_else(|| "interaction".to_owned()),
                channels: rm.channels.clone(),
                owner,
                smoto,
                target: target.unwrap_or(0.0),
                runbook: rm.runbook.clone(),
                impact_weight,
                alert_policy,
            });
        }
        let sco = exp_mots
            .iter()
            .copied()
            .find(|m| mots[m.0 as usize].id == re.sco);
        if sco.is_none() {
            let ids: Vec<&str> = re.mots.iter().map(|m| m.id.as_str()).collect();
            c.report(
                &with(&ep, &[K("sco")]),
                format!(
                    "{:?} is not one of this experience's MOTs ({})",
                    re.sco,
                    ids.join(", ")
                ),
            );
        }
        let journey_timeout = match &re.journey_timeout {
            Some(t) => c.duration(&with(&ep, &[K("journey_timeout")]), t),
            None => default_journey_timeout,
        };
        experiences.push(Experience {
            id: re.id.clone(),
            name: re.name.clone(),
            description: re.description.clone(),
            manager,
            sco_mot: sco.unwrap_or(MotIdx(0)),
            mots: exp_mots,
            journey_timeout,
        });
    }

    // A field whose value was wrong was checked as its placeholder: what that gave is noise.
    c.problems.retain(|p| {
        !shape_problems
            .iter()
            .any(|s| super::shape::is_under(&p.field, &s.field))
    });
    c.problems.extend(shape_problems);
    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| p.line.unwrap_or(0));
        return Err(CatalogError {
            origin: origin.to_owned(),
            problems: c.problems,
        });
    }
    Ok(Catalog {
        origin: origin.to_owned(),
        experiences,
        mots,
        dashboard_url: d.dashboard_url.clone(),
        index,
    })
}

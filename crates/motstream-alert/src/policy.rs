//! The alert policy compiled from the catalog: per MOT, its rules with thresholds resolved
//! (low targets capped), and the distinct windows every rule reads, so one bulk read per
//! window serves every MOT.
//!
//! Low targets: a MOT with target `t` can burn at most `1 / (1 - t)` (every interaction
//! failing), so a 14.4x rule on a 0.85 target (max 6.7x) could never fire. The threshold
//! applied is `min(factor, 0.9 / (1 - t))`: a failure ratio of 90% always crosses it. For
//! ordinary targets the cap is far above every factor (45x at 0.98) and changes nothing.
//! deploy/prometheus/rules/recording.yml applies the same cap (`motstream:mot_burn_threshold`).

use motstream_core::catalog::Severity;
use motstream_core::{Catalog, MotIdx};

/// The failure ratio at which a capped rule fires: its threshold is at most this share of
/// the MOT's highest possible burn rate.
pub const LOW_TARGET_CAP: f64 = 0.9;

/// What a rule compares.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Burn rate above `threshold` over both the long and the short window.
    Burn {
        /// The factor the catalog asks for.
        factor: f64,
        /// The factor applied: `factor` capped for low targets.
        threshold: f64,
        /// Index into [`Policy::windows_ms`].
        long: usize,
        /// Index into [`Policy::windows_ms`].
        short: usize,
    },
    /// SMOTO rate below `below` over one window.
    Floor {
        below: f64,
        /// Index into [`Policy::windows_ms`].
        over: usize,
    },
}

/// One rule of one MOT, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The catalog's rule name (`page-fast-burn`, or `floor` for the floor rule).
    pub name: String,
    /// The alert name: `Mot` + the rule name in CamelCase (`MotPageFastBurn`, `MotSmotoFloor`),
    /// the same names as deploy/prometheus/rules/alerts.yml.
    pub alertname: String,
    pub severity: Severity,
    pub kind: RuleKind,
    /// Interactions each window must hold before the rule may fire.
    pub min_events: u64,
    /// How long the condition must hold before firing, ms.
    pub for_ms: i64,
}

/// One MOT's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct MotPolicy {
    pub mot: MotIdx,
    pub target: f64,
    pub rules: Vec<Rule>,
}

/// A burn rule whose factor a low target made unreachable, and what is applied instead.
#[derive(Debug, Clone, PartialEq)]
pub struct CappedRule {
    pub mot: MotIdx,
    pub rule: String,
    pub factor: f64,
    pub threshold: f64,
    /// The MOT's highest possible burn rate, `1 / (1 - target)`.
    pub max_burn: f64,
}

/// Every MOT's compiled policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Distinct windows read by any rule, ms, ascending.
    pub windows_ms: Vec<u64>,
    /// Indexed by MOT index.
    pub mots: Vec<MotPolicy>,
    /// Rules whose thresholds were capped, for `catalog check` and the start-up log.
    pub capped: Vec<CappedRule>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// `page-fast-burn` -> `PageFastBurn`.
fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The threshold applied for `factor` on a MOT with target `target`.
pub fn capped_threshold(factor: f64, target: f64) -> f64 {
    factor.min(LOW_TARGET_CAP / (1.0 - target))
}

impl Policy {
    /// Compiles every MOT's alert policy.
    pub fn compile(catalog: &Catalog) -> Self {
        let mut windows: Vec<u64> = Vec::new();
        let mut slot = |w: u64| match windows.iter().position(|&x| x == w) {
            Some(i) => i,
            None => {
                windows.push(w);
                windows.len() - 1
            }
        };
        let mut capped = Vec::new();
        let mut mots = Vec::with_capacity(catalog.mots.len());
        for (i, m) in catalog.mots.iter().enumerate() {
            let idx = MotIdx(i as u32);
            let p = &m.alert_policy;
            let for_ms = i64::try_from(p.for_duration.as_millis()).unwrap_or(i64::MAX);
            let mut rules = Vec::with_capacity(p.burn_rates.len() + 1);
            for r in &p.burn_rates {
                let threshold = capped_threshold(r.factor, m.target);
                if threshold < r.factor {
                    capped.push(CappedRule {
                        mot: idx,
                        rule: r.name.clone(),
                        factor: r.factor,
                        threshold,
                        max_burn: 1.0 / (1.0 - m.target),
                    });
                }
                rules.push(Rule {
                    name: r.name.clone(),
                    alertname: format!("Mot{}", camel(&r.name)),
                    severity: r.severity,
                    kind: RuleKind::Burn {
                        factor: r.factor,
                        threshold,
                        long: slot(ms(r.long)),
                        short: slot(ms(r.short)),
                    },
                    min_events: p.min_events,
                    for_ms,
                });
            }
            if let Some(f) = &p.floor {
                rules.push(Rule {
                    name: "floor".into(),
                    alertname: "MotSmotoFloor".into(),
                    severity: f.severity,
                    kind: RuleKind::Floor {
                        below: f.below,
                        over: slot(ms(f.over)),
                    },
                    min_events: f.min_events,
                    for_ms,
                });
            }
            mots.push(MotPolicy {
                mot: idx,
                target: m.target,
                rules,
            });
        }
        // Ascending windows; remap every rule's indexes.
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| windows[i]);
        let mut remap = vec![0; windows.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old] = new;
        }
        for r in mots.iter_mut().flat_map(|m| m.rules.iter_mut()) {
            match &mut r.kind {
                RuleKind::Burn { long, short, .. } => {
                    *long = remap[*long];
                    *short = remap[*short];
                }
                RuleKind::Floor { over, .. } => *over = remap[*over],
            }
        }
        let windows_ms = order.iter().map(|&i| windows[i]).collect();
        Self {
            windows_ms,
            mots,
            capped,
        }
    }

    /// Rules over all MOTs.
    pub fn rule_count(&self) -> usize {
        self.mots.iter().map(|m| m.rules.len()).sum()
    }

    /// One line per capped rule, for `catalog check`: says what fires instead of never.
    pub fn capped_notes(&self, catalog: &Catalog) -> Vec<String> {
        self.capped
            .iter()
            .map(|c| {
                let m = catalog.mot(c.mot);
                format!(
                    "{}: rule {} asks for {}x but target {} allows at most {:.1}x; it fires above {:.2}x ({}% of the maximum, i.e. when {}% of interactions fail)",
                    m.id,
                    c.rule,
                    c.factor,
                    m.target,
                    c.max_burn,
                    c.threshold,
                    LOW_TARGET_CAP * 100.0,
                    LOW_TARGET_CAP * 100.0,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = "
version: 1
defaults:
  owner: { name: O, team: t, contact: o@example.com }
  alert_policy:
    min_events: 20
    burn_rates:
      - { name: page-fast-burn, severity: page, factor: 14.4, long: 1h, short: 5m }
      - { name: ticket-slow-burn, severity: ticket, factor: 1, long: 3d, short: 6h }
experiences:
  - id: e
    name: E
    manager: { name: M, team: t, contact: m@example.com }
    sco: high
    mots:
      - { id: high, name: High, target: 0.98 }
      - id: low
        name: Low
        target: 0.85
        alert_policy: { floor: { below: 0.5, over: 5m, min_events: 30, severity: page } }
";

    fn catalog() -> Catalog {
        Catalog::from_yaml(CATALOG, "t.yaml").expect("valid catalog")
    }

    #[test]
    fn low_targets_cap_unreachable_factors_and_say_so() {
        let c = catalog();
        let p = Policy::compile(&c);
        let thr = |m: usize, r: usize| match p.mots[m].rules[r].kind {
            RuleKind::Burn { threshold, .. } => threshold,
            RuleKind::Floor { .. } => f64::NAN,
        };
        assert_eq!(thr(0, 0), 14.4, "0.98 allows 50x: uncapped");
        // 0.85: max 6.67x; capped at 0.9 / 0.15 = 6.0, reachable when 90% fail.
        assert!((thr(1, 0) - 6.0).abs() < 1e-9, "{}", thr(1, 0));
        assert_eq!(thr(1, 1), 1.0, "1x is reachable: unchanged");
        assert_eq!(p.capped.len(), 1);
        let notes = p.capped_notes(&c);
        assert!(
            notes[0].starts_with("low: rule page-fast-burn asks for 14.4x but target 0.85 allows at most 6.7x; it fires above 6.00x"),
            "{notes:?}"
        );
    }

    #[test]
    fn windows_are_shared_and_ascending_and_names_follow_the_prometheus_rules() {
        let p = Policy::compile(&catalog());
        assert_eq!(
            p.windows_ms,
            vec![300_000, 3_600_000, 6 * 3_600_000, 3 * 86_400_000]
        );
        let low = &p.mots[1];
        assert_eq!(low.rules[0].alertname, "MotPageFastBurn");
        assert_eq!(
            low.rules[2].kind,
            RuleKind::Floor {
                below: 0.5,
                over: 0
            }
        );
        assert_eq!(low.rules[2].min_events, 30);
        assert_eq!(p.rule_count(), 5);
    }
}

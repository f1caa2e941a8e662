//! The engine: every (MOT, rule) evaluated on a tick from one bulk read of the windows.

use motstream_core::MotIdx;
use motstream_window::{BulkCounts, Counts};

/// The window crate's index of a catalog MOT (the same number).
fn wmot(m: MotIdx) -> motstream_window::MotIdx {
    motstream_window::MotIdx(m.0)
}

use crate::machine::{Change, Condition, Phase, RuleState};
use crate::policy::{Policy, Rule, RuleKind};

/// How the long and the short window compare with a burn rule's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurnState {
    /// Both windows above: the budget burns fast now and has for a while.
    Critical,
    /// The long window above, the short below: the burn has stopped; the long window will
    /// follow.
    Recovering,
    /// The short window above, the long below: a new burn, not sustained yet.
    Increasing,
    /// Both below.
    Acceptable,
}

impl BurnState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Recovering => "recovering",
            Self::Increasing => "increasing",
            Self::Acceptable => "acceptable",
        }
    }
}

/// Engine settings that are not per-rule policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// A firing burn rule stays firing while both windows burn above `(1 - band)` × its
    /// threshold; a firing floor rule while the rate stays below `below + band × (1 - below)`.
    pub hysteresis_band: f64,
    /// How long a firing alert's condition must stay clear before it resolves, ms.
    pub resolve_hold_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            hysteresis_band: 0.1,
            resolve_hold_ms: 10_000,
        }
    }
}

/// What one rule saw on one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Counts over the long window (the floor rule's only window).
    pub long: Counts,
    /// Counts over the short window (the floor rule's window again).
    pub short: Counts,
    /// Burn rates `(failures / amount) / (1 - target)`; `None` when empty.
    pub burn_long: Option<f64>,
    pub burn_short: Option<f64>,
    /// The threshold applied (burn rate for burn rules, SMOTO rate for the floor rule).
    pub threshold: f64,
    pub burn_state: BurnState,
    pub condition: Condition,
}

/// A state change of one (MOT, rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub mot: MotIdx,
    /// Index into the MOT's [`crate::MotPolicy::rules`].
    pub rule: usize,
    pub change: Change,
    pub at_ms: i64,
    /// When the episode began: with the MOT and rule it names the alert.
    pub episode_ms: i64,
    pub eval: Evaluation,
}

/// Every (MOT, rule)'s state. Evaluate with [`Engine::tick`].
#[derive(Debug, Clone)]
pub struct Engine {
    policy: Policy,
    config: EngineConfig,
    /// Per MOT, the first index of its rules in `states`.
    offsets: Vec<usize>,
    states: Vec<RuleState>,
}

fn burn(c: Counts, target: f64) -> Option<f64> {
    c.success_rate().map(|s| (1.0 - s) / (1.0 - target))
}

/// Evaluates one rule against the windows. `firing` selects the hysteresis band.
pub fn evaluate(
    rule: &Rule,
    target: f64,
    counts: &BulkCounts,
    mot: MotIdx,
    band: f64,
) -> Evaluation {
    let mot = wmot(mot);
    let warming = counts.warming(mot);
    match rule.kind {
        RuleKind::Burn {
            threshold,
            long,
            short,
            ..
        } => {
            let (l, s) = (counts.get(long, mot), counts.get(short, mot));
            let (bl, bs) = (burn(l, target), burn(s, target));
            let enough = l.amount() >= rule.min_events && s.amount() >= rule.min_events;
            let above = |b: Option<f64>, t: f64| b.is_some_and(|b| b > t);
            let burn_state = match (above(bl, threshold), above(bs, threshold)) {
                (true, true) => BurnState::Critical,
                (true, false) => BurnState::Recovering,
                (false, true) => BurnState::Increasing,
                (false, false) => BurnState::Acceptable,
            };
            let kept = threshold * (1.0 - band);
            let condition = if warming {
                Condition::Suppressed
            } else if !enough {
                Condition::Clear
            } else if burn_state == BurnState::Critical {
                Condition::Met
            } else if above(bl, kept) && above(bs, kept) {
                Condition::Held
            } else {
                Condition::Clear
            };
            Evaluation {
                long: l,
                short: s,
                burn_long: bl,
                burn_short: bs,
                threshold,
                burn_state,
                condition,
            }
        }
        RuleKind::Floor { below, over } => {
            let c = counts.get(over, mot);
            let rate = c.success_rate();
            let b = burn(c, target);
            let crossed = rate.is_some_and(|r| r < below);
            let condition = if warming {
                Condition::Suppressed
            } else if c.amount() < rule.min_events {
                Condition::Clear
            } else if crossed {
                Condition::Met
            } else if rate.is_some_and(|r| r < below + band * (1.0 - below)) {
                Condition::Held
            } else {
                Condition::Clear
            };
            Evaluation {
                long: c,
                short: c,
                burn_long: b,
                burn_short: b,
                threshold: below,
                burn_state: if crossed {
                    BurnState::Critical
                } else {
                    BurnState::Acceptable
                },
                condition,
            }
        }
    }
}

impl Engine {
    /// Every (MOT, rule) inactive.
    pub fn new(policy: Policy, config: EngineConfig) -> Self {
        let mut offsets = Vec::with_capacity(policy.mots.len());
        let mut n = 0;
        for m in &policy.mots {
            offsets.push(n);
            n += m.rules.len();
        }
        Self {
            policy,
            config,
            offsets,
            states: vec![RuleState::default(); n],
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The state of one (MOT, rule), if both exist.
    pub fn state(&self, mot: MotIdx, rule: usize) -> Option<&RuleState> {
        let i = *self.offsets.get(mot.0 as usize)?;
        let n = self.policy.mots.get(mot.0 as usize)?.rules.len();
        (rule < n).then(|| self.states.get(i + rule)).flatten()
    }

    /// Marks a (MOT, rule) firing since `episode_ms`, e.g. an alert still firing when the
    /// previous process stopped, replayed from the alerts topic: the engine then resolves
    /// that same episode instead of starting a second one. `false` if the rule is unknown.
    pub fn restore_firing(&mut self, mot: MotIdx, rule_name: &str, episode_ms: i64) -> bool {
        let Some(m) = self.policy.mots.get(mot.0 as usize) else {
            return false;
        };
        let Some(r) = m.rules.iter().position(|r| r.name == rule_name) else {
            return false;
        };
        let Some(s) = self
            .offsets
            .get(mot.0 as usize)
            .and_then(|o| self.states.get_mut(o + r))
        else {
            return false;
        };
        *s = RuleState {
            phase: Phase::Firing,
            episode_ms,
            clear_since_ms: None,
        };
        true
    }

    /// Evaluates every rule of every MOT against `counts` (read for
    /// [`Policy::windows_ms`] at `now_ms`) and returns the state changes.
    pub fn tick(&mut self, counts: &BulkCounts, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        let band = self.config.hysteresis_band;
        let hold = self.config.resolve_hold_ms;
        for (m, off) in self.policy.mots.iter().zip(&self.offsets) {
            for (i, rule) in m.rules.iter().enumerate() {
                let Some(state) = self.states.get_mut(off + i) else {
                    continue;
                };
                let eval = evaluate(rule, m.target, counts, m.mot, band);
                if let Some(change) = state.step(eval.condition, now_ms, rule.for_ms, hold) {
                    out.push(Transition {
                        mot: m.mot,
                        rule: i,
                        change,
                        at_ms: now_ms,
                        episode_ms: state.episode_ms,
                        eval,
                    });
                }
            }
        }
        out
    }
}

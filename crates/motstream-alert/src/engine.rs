//! The engine: every (MOT, rule) evaluated on a tick from one bulk read of the windows.

use motstream_core::MotIdx;
use motstream_window::{BulkCounts, Counts, CountsReader};

/// The window crate's index of a catalog MOT (the same number).
fn wmot(m: MotIdx) -> motstream_window::MotIdx {
    motstream_window::MotIdx(m.0)
}

/// Where the engine gets counts: window number `w` is an index into
/// [`Policy::windows_ms`].
pub trait WindowCounts {
    fn counts(&self, w: usize, mot: MotIdx) -> Counts;
    /// A partition holding the MOT's data is rebuilding: its numbers are incomplete.
    fn warming(&self, mot: MotIdx) -> bool;
    /// Where the MOT's data begins (its earliest event time held), ms; `None` without data.
    fn data_since(&self, mot: MotIdx) -> Option<i64>;
}

impl WindowCounts for BulkCounts {
    fn counts(&self, w: usize, mot: MotIdx) -> Counts {
        self.get(w, wmot(mot))
    }
    fn warming(&self, mot: MotIdx) -> bool {
        BulkCounts::warming(self, wmot(mot))
    }
    fn data_since(&self, mot: MotIdx) -> Option<i64> {
        BulkCounts::data_since(self, wmot(mot))
    }
}

impl WindowCounts for CountsReader<'_> {
    fn counts(&self, w: usize, mot: MotIdx) -> Counts {
        self.get(w, wmot(mot))
    }
    fn warming(&self, mot: MotIdx) -> bool {
        CountsReader::warming(self, wmot(mot))
    }
    fn data_since(&self, mot: MotIdx) -> Option<i64> {
        CountsReader::data_since(self, wmot(mot))
    }
}

/// One MOT's windows, each read at most once per tick and only if a rule needs it.
struct Memo<'a, C> {
    src: &'a C,
    mot: MotIdx,
    seen: Vec<Option<Counts>>,
}

impl<C: WindowCounts> Memo<'_, C> {
    fn get(&mut self, w: usize) -> Counts {
        match self.seen.get(w).copied().flatten() {
            Some(c) => c,
            None => {
                let c = self.src.counts(w, self.mot);
                if let Some(x) = self.seen.get_mut(w) {
                    *x = Some(c);
                }
                c
            }
        }
    }
}

use crate::coverage;
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
    /// The share (0..=1) of a rule's longest window the MOT's data must cover before the rule
    /// is judged; below it the rule reports insufficient data (see [`crate::coverage`]).
    pub min_coverage: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            hysteresis_band: 0.1,
            resolve_hold_ms: 10_000,
            min_coverage: crate::coverage::DEFAULT_MIN_COVERAGE,
        }
    }
}

/// What one rule saw on one tick. A burn rule whose short window is clearly fine and that is
/// not firing does not read its long window: then `long` is empty, `burn_long` `None` and
/// `burn_state` is judged from the short window alone.
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
    /// The share (0..=1) of the rule's longest window the MOT's data covers.
    pub coverage: f64,
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

/// Evaluates one rule against the windows (all of them: for tests and tools).
pub fn evaluate<C: WindowCounts>(
    rule: &Rule,
    target: f64,
    counts: &C,
    mot: MotIdx,
    band: f64,
) -> Evaluation {
    // One rule reads each of its windows once: nothing to remember.
    let mut memo = Memo {
        src: counts,
        mot,
        seen: Vec::new(),
    };
    let judge = Judge {
        warming: counts.warming(mot),
        covered: true,
        coverage: 1.0,
    };
    eval_rule(rule, target, &mut memo, judge, band, true)
}

/// What decides whether a rule is judged at all this tick.
#[derive(Debug, Clone, Copy)]
struct Judge {
    /// A partition holding the MOT is rebuilding.
    warming: bool,
    /// The MOT's data covers enough of the rule's window (see [`crate::coverage`]).
    covered: bool,
    /// The share of the rule's longest window the data covers.
    coverage: f64,
}

fn eval_rule<C: WindowCounts>(
    rule: &Rule,
    target: f64,
    counts: &mut Memo<'_, C>,
    judge: Judge,
    band: f64,
    need_long: bool,
) -> Evaluation {
    let warming = judge.warming;
    let above = |b: Option<f64>, t: f64| b.is_some_and(|b| b > t);
    match rule.kind {
        RuleKind::Burn {
            threshold,
            long,
            short,
            ..
        } => {
            let kept = threshold * (1.0 - band);
            let s = counts.get(short);
            let bs = burn(s, target);
            // Both windows must be above; a short window below the band (or too quiet) settles
            // it, and the long window (the costly read) is skipped.
            let short_settles = s.amount() < rule.min_events || !above(bs, kept);
            let l = if need_long || !short_settles {
                counts.get(long)
            } else {
                Counts::default()
            };
            let bl = burn(l, target);
            let enough = l.amount() >= rule.min_events && s.amount() >= rule.min_events;
            let burn_state = match (above(bl, threshold), above(bs, threshold)) {
                (true, true) => BurnState::Critical,
                (true, false) => BurnState::Recovering,
                (false, true) => BurnState::Increasing,
                (false, false) => BurnState::Acceptable,
            };
            let condition = if warming {
                Condition::Suppressed
            } else if !judge.covered {
                Condition::InsufficientData
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
                coverage: judge.coverage,
            }
        }
        RuleKind::Floor { below, over } => {
            let c = counts.get(over);
            let rate = c.success_rate();
            let b = burn(c, target);
            let crossed = rate.is_some_and(|r| r < below);
            let condition = if warming {
                Condition::Suppressed
            } else if !judge.covered {
                Condition::InsufficientData
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
                coverage: judge.coverage,
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

    /// Evaluates every rule of every MOT against `counts` (for [`Policy::windows_ms`] at
    /// `now_ms`) and returns the state changes. Reads each MOT's windows at most once, and a
    /// long window only when its rule is firing or its short window is near the threshold.
    pub fn tick<C: WindowCounts>(&mut self, counts: &C, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        let band = self.config.hysteresis_band;
        let hold = self.config.resolve_hold_ms;
        let mut memo = Memo {
            src: counts,
            mot: MotIdx(0),
            seen: vec![None; self.policy.windows_ms.len()],
        };
        for (m, off) in self.policy.mots.iter().zip(&self.offsets) {
            memo.mot = m.mot;
            memo.seen.fill(None);
            let warming = counts.warming(m.mot);
            let since = counts.data_since(m.mot);
            for (i, rule) in m.rules.iter().enumerate() {
                let Some(state) = self.states.get_mut(off + i) else {
                    continue;
                };
                let need_long = state.phase == Phase::Firing;
                let windows = &self.policy.windows_ms;
                let judge = Judge {
                    warming,
                    covered: coverage::covered(
                        rule,
                        windows,
                        since,
                        now_ms,
                        self.config.min_coverage,
                    ),
                    coverage: coverage::coverage(
                        since,
                        now_ms,
                        coverage::rule_span_ms(rule, windows),
                    ),
                };
                let eval = eval_rule(rule, m.target, &mut memo, judge, band, need_long);
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

//! motstream's alert engine: the catalog's alert policy compiled into rules
//! ([`Policy`]), a pure state machine per (MOT, rule) ([`RuleState`]) driven on a tick by
//! [`Engine::tick`] from one counts-only bulk read of the windows, and the content of an
//! alert ([`content::build`]).
//!
//! **Must never:** do I/O, read a clock, spawn, or block: the service calls it from its
//! alert task and delivers what it returns.

pub mod content;
pub mod coverage;
mod engine;
mod machine;
mod policy;

pub use engine::{BurnState, Engine, EngineConfig, Evaluation, Transition, WindowCounts, evaluate};
pub use machine::{Change, Condition, Phase, RuleState};
pub use policy::{CappedRule, LOW_TARGET_CAP, MotPolicy, Policy, Rule, RuleKind, capped_threshold};

#[cfg(test)]
mod coverage_tests;
#[cfg(test)]
mod tests;

//! One customer's journey through an experience, and the rules that move it: which MOT comes
//! next, how long an interaction takes, whether it fails (healthy odds or an active incident's),
//! and whether a failure is retried, abandoned or carried past.
//!
//! Every random draw is made here, in the same order whether or not the resulting event is
//! emitted, so that skipping the emission of some events never changes the others.

use motstream_core::{Limits, Outcome};

use crate::SimConfig;
use crate::behaviour::{ExperiencePlan, GAP_SIGMA, MotPlan};
use crate::rng::Rng;
use crate::scenario::Incident;

/// A journey in progress, waiting for the end of its pending interaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Journey {
    /// Its number, unique within one simulator: the journey id is built from it.
    pub number: u64,
    /// Index of its experience in [`Rules::plans`].
    pub exp: u32,
    /// Position of the pending interaction's MOT in the experience's steps.
    pub step: u32,
    /// 1-based attempt at that MOT.
    pub attempt: u32,
    /// Index of the pending interaction's channel in the MOT's channels.
    pub channel: u32,
    /// Reported duration of the pending interaction, in ms.
    pub duration_ms: u32,
    /// Whether the SCO MOT has succeeded.
    pub reached_sco: bool,
}

/// What ending an interaction leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Another interaction is pending, ending at this time (ms since the epoch).
    Pending(i64),
    /// The journey is over.
    Ended,
}

/// The outcome of one interaction, borrowing its reason from the plan or the incident.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interaction<'r> {
    pub outcome: Outcome,
    pub reason: Option<&'r str>,
}

/// The resolved plans plus incidents and the config knobs the walk needs.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub plans: Vec<ExperiencePlan>,
    incidents: Vec<Incident>,
    /// Per experience, per step: the indices of the incidents on that MOT.
    by_step: Vec<Vec<Vec<usize>>>,
    cfg: SimConfig,
    /// Simulation start, ms since the epoch: incidents are offsets from it.
    start_ms: i64,
}

impl Rules {
    pub(crate) fn new(
        plans: Vec<ExperiencePlan>,
        incidents: &[Incident],
        cfg: &SimConfig,
        start_ms: i64,
    ) -> Self {
        let by_step = plans
            .iter()
            .map(|p| {
                p.steps
                    .iter()
                    .map(|s| {
                        (0..incidents.len())
                            .filter(|&i| incidents[i].mot == s.mot)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            plans,
            incidents: incidents.to_vec(),
            by_step,
            cfg: cfg.clone(),
            start_ms,
        }
    }

    pub(crate) fn step_plan(&self, j: &Journey) -> &MotPlan {
        &self.plans[j.exp as usize].steps[j.step as usize]
    }

    /// The incidents on the journey's pending MOT and channel active at `at_ms`.
    fn active<'s>(&'s self, j: &Journey, at_ms: i64) -> impl Iterator<Item = &'s Incident> {
        let channel = self.step_plan(j).channels[j.channel as usize].as_str();
        let offset = at_ms.saturating_sub(self.start_ms);
        self.by_step[j.exp as usize][j.step as usize]
            .iter()
            .map(|&i| &self.incidents[i])
            .filter(move |i| i.applies(offset, channel))
    }

    fn scaled(&self, real_ms: f64) -> i64 {
        (real_ms / self.cfg.speed).round() as i64
    }

    /// The first step at or after `from` that the journey visits, if any.
    fn visit_from(&self, exp: u32, from: usize, rng: &mut Rng) -> Option<usize> {
        let steps = &self.plans[exp as usize].steps;
        (from..steps.len()).find(|&i| steps[i].visit >= 1.0 || rng.chance(steps[i].visit))
    }

    /// Starts an interaction with step `step` at `start_ms`: draws its channel and duration;
    /// returns when it ends.
    fn begin(
        &self,
        j: &mut Journey,
        step: usize,
        attempt: u32,
        start_ms: i64,
        rng: &mut Rng,
    ) -> i64 {
        j.step = u32::try_from(step).unwrap_or(u32::MAX);
        j.attempt = attempt;
        let plan = self.step_plan(j);
        j.channel = u32::try_from(rng.ranked(plan.channels.len())).unwrap_or(0);
        let base = rng.log_normal(plan.median_ms, self.cfg.duration_sigma);
        let slowdown = self
            .active(j, start_ms)
            .map(|i| i.slowdown)
            .fold(1.0, f64::max);
        let max = Limits::default().max_duration_ms as f64;
        let real = (base * slowdown).clamp(0.0, max);
        j.duration_ms = real.round() as u32;
        start_ms.saturating_add(self.scaled(real))
    }

    /// A new journey arriving at `at_ms`: returns when its first interaction ends, or `None`
    /// if it visits no MOT at all.
    pub(crate) fn start(&self, j: &mut Journey, at_ms: i64, rng: &mut Rng) -> Option<i64> {
        let first = self.visit_from(j.exp, 0, rng)?;
        Some(self.begin(j, first, 1, at_ms, rng))
    }

    /// Decides the outcome of the pending interaction, which ends at `at_ms`.
    pub(crate) fn outcome(&self, j: &Journey, at_ms: i64, rng: &mut Rng) -> Interaction<'_> {
        let plan = self.step_plan(j);
        let incident = self
            .active(j, at_ms)
            .filter_map(|i| i.failure_rate.map(|r| (r, i)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let failure = incident.map_or(plan.failure, |(r, _)| r);
        let u = rng.f64();
        let pick = rng.ranked(plan.reasons.len());
        if u >= failure {
            return Interaction {
                outcome: Outcome::Success,
                reason: None,
            };
        }
        // Of the failures, the share above the healthy rate is the incident's doing.
        let reason = match incident {
            Some((r, i)) if u >= plan.failure.min(r) => i.reason.as_deref(),
            _ => None,
        };
        Interaction {
            outcome: Outcome::Failure,
            reason: Some(reason.unwrap_or(&plan.reasons[pick])),
        }
    }

    /// Moves the journey on after its pending interaction ended at `at_ms` with `outcome`.
    pub(crate) fn next(
        &self,
        j: &mut Journey,
        at_ms: i64,
        outcome: Outcome,
        rng: &mut Rng,
    ) -> Next {
        let plan = &self.plans[j.exp as usize];
        let step = j.step as usize;
        let failed = outcome == Outcome::Failure;
        if !failed && step == plan.sco_step {
            j.reached_sco = true;
        }
        let u = rng.f64();
        if failed {
            let (retry, abandon) = (self.cfg.retry_probability, self.cfg.abandon_probability);
            if u < retry && j.attempt < self.cfg.max_attempts {
                let gap = rng.log_normal(self.cfg.retry_gap.as_secs_f64() * 1e3, GAP_SIGMA);
                let start = at_ms.saturating_add(self.scaled(gap));
                return Next::Pending(self.begin(j, step, j.attempt + 1, start, rng));
            }
            // A retry the customer has no attempts left for is an abandonment.
            if u < retry + abandon {
                return Next::Ended;
            }
        }
        let Some(following) = self.visit_from(j.exp, step + 1, rng) else {
            return Next::Ended;
        };
        let gap = rng.log_normal(self.cfg.gap.as_secs_f64() * 1e3, GAP_SIGMA);
        let start = at_ms.saturating_add(self.scaled(gap));
        Next::Pending(self.begin(j, following, 1, start, rng))
    }
}

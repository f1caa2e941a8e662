//! The simulator: one schedule of everything due (arrivals and interaction ends) in event-time
//! order, driven forward by the caller's clock.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::TAU;
use std::sync::Arc;

use motstream_core::{Catalog, InteractionEvent, Outcome};

use crate::arrivals::Arrivals;
use crate::behaviour::plans;
use crate::journey::{Journey, Next, Rules};
use crate::rng::Rng;
use crate::{PRODUCER_ID, Scenario, SimConfig, SimError, SimEvent, SimStats};

/// Longest warm-up, in ms of event time.
const MAX_WARM_UP_MS: f64 = 30.0 * 60_000.0;
/// Largest number of events a warm-up simulates (and throws away), so that start-up at a high
/// rate stays well under a second.
const MAX_WARM_UP_EVENTS: f64 = 2_000_000.0;
/// The simulation covers at most 100 years after its start (in ms): later `now_ms` values are
/// treated as that, so that f64 times relative to the start keep sub-millisecond precision.
const MAX_OFFSET_MS: i64 = 100 * 365 * 86_400_000;
/// Unidentified interactions succeed this often.
const UNLISTED_SUCCESS: f64 = 0.9;
/// Median reported duration of unidentified interactions, in ms.
const UNLISTED_MEDIAN_MS: f64 = 60_000.0;

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// The pending arrival of experience `exp`, if the process is still at `generation`.
    Arrival { exp: u32, generation: u32 },
    /// The end of the pending interaction of the journey in `slot`.
    Interaction { slot: u32 },
}

/// What varies between emitted events, apart from the journey and the time.
#[derive(Debug)]
struct Body {
    mot_id: String,
    outcome: Outcome,
    reason: Option<String>,
    channel: String,
    duration_ms: u32,
}

/// An entry of the schedule, ordered by time, then by insertion: ties are broken the same way
/// on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at_ms: i64,
    seq: u64,
    what: What,
}

/// A deterministic generator of interaction events for every experience of a catalog.
///
/// Pure: it reads no clock and does no I/O. The caller passes the time to
/// [`Simulator::advance`] (wall-clock time for a live demo, any time for tests) and produces the
/// events. Memory is bounded by [`SimConfig::max_active_journeys`].
#[derive(Debug)]
pub struct Simulator {
    catalog: Arc<Catalog>,
    rules: Rules,
    cfg: SimConfig,
    rng: Rng,
    start_ms: i64,
    arrivals: Vec<Arrivals>,
    schedule: BinaryHeap<Reverse<Due>>,
    seq: u64,
    /// Journeys in progress, by slot; `None` slots are listed in `free`.
    journeys: Vec<Option<Journey>>,
    free: Vec<u32>,
    /// Everything due at or before this time has been handled.
    clock_ms: i64,
    /// Events before this time are simulated but not emitted.
    emit_from_ms: i64,
    /// How long before the first emitted event arrivals start, so that journeys are under way.
    warm_up_ms: i64,
    /// Share of extra unidentified events per journey event.
    unlisted_per_event: f64,
    next_event: u64,
    next_journey: u64,
    stats: SimStats,
}

impl Simulator {
    /// A simulator whose first events are those at `start_ms` (ms since the Unix epoch), with
    /// the scenario's incident offsets counted from it. The scenario must have been loaded
    /// against this catalog. With [`SimConfig::warm_up`], the journeys in progress at
    /// `start_ms` are simulated here.
    pub fn new(
        catalog: Arc<Catalog>,
        scenario: Scenario,
        cfg: SimConfig,
        start_ms: i64,
    ) -> Result<Self, SimError> {
        cfg.validate()?;
        for (idx, id) in scenario.referenced_mots() {
            let same = catalog.mots.get(idx.0 as usize).is_some_and(|m| m.id == id);
            if !same {
                return Err(SimError::CatalogMismatch {
                    scenario: scenario.origin().to_owned(),
                    mot: id.to_owned(),
                    catalog: catalog.origin.clone(),
                });
            }
        }
        let plans = plans(&catalog, &scenario, &cfg);
        let n = plans.len().max(1) as f64;
        let u = cfg.unidentified_ratio;
        let journey_events_per_ms = cfg.events_per_sec * (1.0 - u) / 1000.0;
        let period_ms = cfg.wave_period.as_secs_f64() * 1000.0;
        let arrivals = plans
            .iter()
            .enumerate()
            .map(|(e, p)| {
                let mean = journey_events_per_ms / n / p.events_per_journey;
                Arrivals::new(mean, cfg.wave_amplitude, period_ms, TAU * e as f64 / n)
            })
            .collect();
        let warm_up_ms = if cfg.warm_up {
            let span = plans.iter().map(|p| p.span_ms).fold(0.0, f64::max);
            let budget = MAX_WARM_UP_EVENTS / cfg.events_per_sec * 1000.0;
            (2.0 * span).min(MAX_WARM_UP_MS).min(budget).ceil() as i64
        } else {
            0
        };
        let mut sim = Self {
            rules: Rules::new(plans, scenario.incidents(), &cfg, start_ms),
            catalog,
            rng: Rng::new(cfg.seed),
            unlisted_per_event: u / (1.0 - u),
            cfg,
            start_ms,
            arrivals,
            schedule: BinaryHeap::new(),
            seq: 0,
            journeys: Vec::new(),
            free: Vec::new(),
            clock_ms: start_ms.saturating_sub(warm_up_ms + 1),
            emit_from_ms: start_ms,
            warm_up_ms,
            next_event: 0,
            next_journey: 0,
            stats: SimStats::default(),
        };
        sim.restart_arrivals(start_ms.saturating_sub(warm_up_ms));
        let mut none = Vec::new();
        sim.run_until(start_ms.saturating_sub(1), &mut none);
        Ok(sim)
    }

    /// Appends to `out` every event due at or before `now_ms` (ms since the Unix epoch), in
    /// event-time order, and never one after `now_ms`. A `now_ms` at or before the previous
    /// call's is a no-op. After a pause longer than [`SimConfig::max_catch_up`], only the last
    /// `max_catch_up` is emitted (see [`SimStats::skipped_events`]).
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<SimEvent>) {
        let now_ms = now_ms.min(self.start_ms.saturating_add(MAX_OFFSET_MS));
        if now_ms <= self.clock_ms {
            return;
        }
        let catch_up = i64::try_from(self.cfg.max_catch_up.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.clock_ms) > catch_up {
            // Journeys in progress play on through the gap without emitting; arrivals restart
            // one warm-up before the resumption, so that the rate is right when it resumes.
            let resume = now_ms - catch_up;
            self.emit_from_ms = resume;
            self.restart_arrivals(resume.saturating_sub(self.warm_up_ms).max(self.clock_ms));
        }
        self.run_until(now_ms, out);
    }

    /// When the next thing is due (an arrival or the end of an interaction, which may emit
    /// nothing), in ms since the epoch: the caller can sleep until then.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.schedule.peek().map(|Reverse(d)| d.at_ms)
    }

    /// Counters since creation.
    pub fn stats(&self) -> SimStats {
        SimStats {
            active_journeys: (self.journeys.len() - self.free.len()) as u64,
            ..self.stats
        }
    }

    /// The catalog being simulated.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    fn push(&mut self, at_ms: i64, what: What) {
        self.seq += 1;
        self.schedule.push(Reverse(Due {
            at_ms,
            seq: self.seq,
            what,
        }));
    }

    /// Restarts every arrival process at `from_ms`, in experience order.
    fn restart_arrivals(&mut self, from_ms: i64) {
        for e in 0..self.arrivals.len() {
            let rel = self.arrivals[e].restart(&mut self.rng, (from_ms - self.start_ms) as f64);
            let generation = self.arrivals[e].generation();
            let exp = u32::try_from(e).unwrap_or(u32::MAX);
            self.push(self.abs_ms(rel), What::Arrival { exp, generation });
        }
    }

    fn abs_ms(&self, rel: f64) -> i64 {
        self.start_ms.saturating_add(rel.floor() as i64)
    }

    fn run_until(&mut self, now_ms: i64, out: &mut Vec<SimEvent>) {
        while let Some(&Reverse(due)) = self.schedule.peek() {
            if due.at_ms > now_ms {
                break;
            }
            self.schedule.pop();
            match due.what {
                What::Arrival { exp, generation } => self.arrive(exp, generation, due.at_ms),
                What::Interaction { slot } => self.interaction_ends(slot, due.at_ms, out),
            }
        }
        self.clock_ms = now_ms;
    }

    fn arrive(&mut self, exp: u32, generation: u32, at_ms: i64) {
        let e = exp as usize;
        if self.arrivals[e].generation() != generation {
            return; // superseded by a restart
        }
        let rel = self.arrivals[e].step(&mut self.rng);
        self.push(self.abs_ms(rel), What::Arrival { exp, generation });
        if self.journeys.len() - self.free.len() >= self.cfg.max_active_journeys {
            self.stats.dropped_arrivals += 1;
            return;
        }
        let mut j = Journey {
            number: self.next_journey,
            exp,
            step: 0,
            attempt: 0,
            channel: 0,
            duration_ms: 0,
            reached_sco: false,
        };
        self.next_journey += 1;
        self.stats.journeys_started += 1;
        let Some(ends) = self.rules.start(&mut j, at_ms, &mut self.rng) else {
            self.stats.journeys_without_sco += 1;
            return;
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.journeys[s as usize] = Some(j);
                s
            }
            None => {
                self.journeys.push(Some(j));
                u32::try_from(self.journeys.len() - 1).expect("at most max_active_journeys slots")
            }
        };
        self.push(ends, What::Interaction { slot });
    }

    fn interaction_ends(&mut self, slot: u32, at_ms: i64, out: &mut Vec<SimEvent>) {
        let Some(mut j) = self.journeys.get(slot as usize).copied().flatten() else {
            return;
        };
        let emit = at_ms >= self.emit_from_ms;
        let counted = at_ms >= self.start_ms;
        let it = self.rules.outcome(&j, at_ms, &mut self.rng);
        let outcome = it.outcome;
        if emit {
            let reason = it.reason.map(str::to_owned);
            let plan = self.rules.step_plan(&j);
            let mot_id = self.catalog.mot(plan.mot).id.clone();
            let channel = plan.channels[j.channel as usize].clone();
            let body = Body {
                mot_id,
                outcome,
                reason,
                channel,
                duration_ms: j.duration_ms,
            };
            let event = self.event(&j, at_ms, body);
            out.push(event);
        } else if counted {
            self.stats.skipped_events += 1;
        }
        if self.rng.chance(self.unlisted_per_event) {
            self.unlisted(&j, at_ms, emit, counted, out);
        }
        match self.rules.next(&mut j, at_ms, outcome, &mut self.rng) {
            Next::Pending(ends) => {
                self.journeys[slot as usize] = Some(j);
                self.push(ends, What::Interaction { slot });
            }
            Next::Ended => {
                if j.reached_sco {
                    self.stats.journeys_with_sco += 1;
                } else {
                    self.stats.journeys_without_sco += 1;
                }
                self.journeys[slot as usize] = None;
                self.free.push(slot);
            }
        }
    }

    /// An interaction of the journey's customer with a MOT the catalog does not declare.
    fn unlisted(
        &mut self,
        j: &Journey,
        at_ms: i64,
        emit: bool,
        counted: bool,
        out: &mut Vec<SimEvent>,
    ) {
        let plan = &self.rules.plans[j.exp as usize];
        let pick = self.rng.ranked(plan.unlisted.len().max(1));
        let success = self.rng.chance(UNLISTED_SUCCESS);
        let duration = self
            .rng
            .log_normal(UNLISTED_MEDIAN_MS, self.cfg.duration_sigma)
            .round() as u32;
        let Some((id, channel)) = plan.unlisted.get(pick) else {
            return;
        };
        if emit {
            let (outcome, reason) = if success {
                (Outcome::Success, None)
            } else {
                (Outcome::Failure, Some("unresolved".to_owned()))
            };
            let body = Body {
                mot_id: id.clone(),
                outcome,
                reason,
                channel: channel.clone(),
                duration_ms: duration,
            };
            let event = self.event(j, at_ms, body);
            out.push(event);
            self.stats.unidentified_events += 1;
        } else if counted {
            self.stats.skipped_events += 1;
        }
    }

    /// Builds an emitted event of journey `j` at `at_ms`, numbering it.
    fn event(&mut self, j: &Journey, at_ms: i64, body: Body) -> SimEvent {
        let seed = self.cfg.seed;
        let key = format!("sim-{seed}-j{}", j.number);
        let event_id = format!("sim-{seed}-e{}", self.next_event);
        self.next_event += 1;
        self.stats.events += 1;
        let exp = self
            .catalog
            .experience(self.rules.plans[j.exp as usize].exp);
        SimEvent {
            event: InteractionEvent {
                event_id: Some(Cow::Owned(event_id)),
                mot_id: Cow::Owned(body.mot_id),
                experience_id: Some(Cow::Owned(exp.id.clone())),
                journey_id: Some(Cow::Owned(key.clone())),
                event_time_ms: at_ms,
                outcome: body.outcome,
                failure_reason: body.reason.map(Cow::Owned),
                channel: Some(Cow::Owned(body.channel)),
                duration_ms: Some(body.duration_ms),
                producer_id: Some(Cow::Borrowed(PRODUCER_ID)),
                attributes: Vec::new(),
            },
            key,
        }
    }
}

#[cfg(test)]
mod tests;

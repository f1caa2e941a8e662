//! How each MOT behaves when healthy, resolved once from the catalog, the scenario's `mots`
//! section and the config; and per experience, the expected number of events per journey, which
//! turns a requested rate of events into a rate of arriving customers.
//!
//! Defaults, for a MOT with SMOTO target `t` (error budget `1 - t`):
//! - failure probability `(1 - t) / 3`;
//! - durations log-normal, with the median set so that `(1 - t) / 6` of successes exceed the
//!   catalog's `smoto.max_duration` ("too slow"): a healthy MOT spends half its error budget;
//!   without a maximum, a typical duration by MOT type (`digital` 40 s, `self-service` 90 s,
//!   `assisted` 3 min, `automated` 10 s, others 1 min);
//! - channels from the catalog, or a set by type when it lists none; the first listed is the
//!   most common (Zipf weights 1, 1/2, 1/3…);
//! - a few failure reasons by type, the first the most common.

use std::time::Duration;

use motstream_core::{Catalog, ExpIdx, MotIdx, catalog::Mot};

use crate::SimConfig;
use crate::rng::normal_quantile;
use crate::scenario::{MotSettings, Scenario};

/// Spread (sigma of the logarithm) of the time between MOTs and before retries.
pub(crate) const GAP_SIGMA: f64 = 0.8;

/// Touchpoints customers use that catalogs tend to forget: the unidentified MOTs, with the
/// channel each is used on. Ids the catalog does declare are skipped.
const UNLISTED: [(&str, &str); 4] = [
    ("chat-support", "chat"),
    ("call-centre", "phone"),
    ("complaint-form", "web"),
    ("feedback-survey", "email"),
];

/// One MOT as the simulator plays it.
#[derive(Debug, Clone)]
pub(crate) struct MotPlan {
    pub mot: MotIdx,
    /// Share of journeys that pass through this MOT, in (0, 1]; 1 for the SCO MOT.
    pub visit: f64,
    /// Probability that one healthy interaction fails, in [0, 1].
    pub failure: f64,
    /// Median reported duration, in ms.
    pub median_ms: f64,
    /// Channels, most common first; never empty.
    pub channels: Vec<String>,
    /// Failure reasons, most common first; never empty.
    pub reasons: Vec<String>,
}

/// One experience as the simulator plays it.
#[derive(Debug, Clone)]
pub(crate) struct ExperiencePlan {
    pub exp: ExpIdx,
    /// The experience's MOTs in journey order.
    pub steps: Vec<MotPlan>,
    /// Position of the SCO MOT in `steps`.
    pub sco_step: usize,
    /// Expected catalog-MOT events per journey, without incidents (> 0).
    pub events_per_journey: f64,
    /// Expected length of a journey, in ms of event time.
    pub span_ms: f64,
    /// Unidentified MOTs customers of this experience use: (MOT id, channel).
    pub unlisted: Vec<(String, String)>,
}

/// The channels the simulator draws from for `mot`: the catalog's, or a set by MOT type.
pub(crate) fn channels(mot: &Mot) -> Vec<String> {
    if !mot.channels.is_empty() {
        return mot.channels.clone();
    }
    let set: &[&str] = match mot.kind.as_str() {
        "digital" => &["web", "app"],
        "self-service" => &["kiosk", "app"],
        "assisted" => &["desk", "phone"],
        "automated" => &["system"],
        _ => &["web", "app", "phone"],
    };
    set.iter().map(|&s| s.to_owned()).collect()
}

fn default_reasons(kind: &str) -> &'static [&'static str] {
    match kind {
        "digital" => &["timeout", "validation-error", "service-unavailable"],
        "self-service" => &["device-fault", "document-not-read", "timeout"],
        "assisted" => &["staff-unavailable", "document-rejected", "queue-abandoned"],
        "automated" => &["system-error", "timeout", "no-response"],
        _ => &["error", "timeout"],
    }
}

fn default_typical(kind: &str) -> Duration {
    Duration::from_secs(match kind {
        "digital" => 40,
        "self-service" => 90,
        "assisted" => 180,
        "automated" => 10,
        _ => 60,
    })
}

/// The median duration that makes `slow_share` of log-normal durations exceed `max`.
fn median_for_slow_share(max: Duration, slow_share: f64, sigma: f64) -> f64 {
    let max_ms = max.as_secs_f64() * 1000.0;
    let z = normal_quantile(1.0 - slow_share);
    // With little spread nothing is ever slow; keep the median well under the limit anyway.
    (max_ms * (-z * sigma).exp()).min(max_ms / 1.5)
}

fn mot_plan(
    mot_idx: MotIdx,
    mot: &Mot,
    settings: Option<&MotSettings>,
    cfg: &SimConfig,
) -> MotPlan {
    let budget = (1.0 - mot.target).clamp(0.0, 1.0);
    let s = settings.cloned().unwrap_or_default();
    let median_ms = match (s.typical_duration, mot.smoto.max_duration) {
        (Some(d), _) => d.as_secs_f64() * 1000.0,
        (None, Some(max)) => median_for_slow_share(max, budget / 6.0, cfg.duration_sigma),
        (None, None) => default_typical(&mot.kind).as_secs_f64() * 1000.0,
    };
    MotPlan {
        mot: mot_idx,
        visit: s.visit.unwrap_or(1.0),
        failure: s.failure_rate.unwrap_or(budget / 3.0),
        median_ms: median_ms.max(1.0),
        channels: channels(mot),
        reasons: s.reasons.unwrap_or_else(|| {
            default_reasons(&mot.kind)
                .iter()
                .map(|&r| r.to_owned())
                .collect()
        }),
    }
}

/// Per step: (expected interactions, probability of moving on) given it is visited.
fn step_odds(failure: f64, cfg: &SimConfig) -> (f64, f64) {
    let retry = failure * cfg.retry_probability;
    // Attempt k (1-based) happens with probability retry^(k-1), up to max_attempts.
    let attempts: f64 = (0..cfg.max_attempts)
        .scan(1.0, |p, _| {
            let now = *p;
            *p *= retry;
            Some(now)
        })
        .sum();
    let move_on = ((1.0 - failure) + failure * cfg.carry_on_probability()) * attempts;
    (attempts, move_on)
}

fn log_normal_mean(median: f64, sigma: f64) -> f64 {
    median * (sigma * sigma / 2.0).exp()
}

/// Resolves every experience of the catalog, in catalog order.
pub(crate) fn plans(
    catalog: &Catalog,
    scenario: &Scenario,
    cfg: &SimConfig,
) -> Vec<ExperiencePlan> {
    let gap_ms = log_normal_mean(cfg.gap.as_secs_f64() * 1000.0, GAP_SIGMA);
    let retry_gap_ms = log_normal_mean(cfg.retry_gap.as_secs_f64() * 1000.0, GAP_SIGMA);
    (0..catalog.experiences.len())
        .map(|e| {
            let exp = ExpIdx(u32::try_from(e).unwrap_or(u32::MAX));
            let x = catalog.experience(exp);
            let steps: Vec<MotPlan> = x
                .mots
                .iter()
                .map(|&m| {
                    let mut p = mot_plan(m, catalog.mot(m), scenario.settings(m), cfg);
                    if m == x.sco_mot {
                        p.visit = 1.0;
                    }
                    p
                })
                .collect();
            let sco_step = steps.iter().position(|s| s.mot == x.sco_mot).unwrap_or(0);
            let (mut reach, mut events, mut span) = (1.0, 0.0, 0.0);
            for (i, s) in steps.iter().enumerate() {
                let (attempts, move_on) = step_odds(s.failure, cfg);
                events += reach * s.visit * attempts;
                let dur = log_normal_mean(s.median_ms, cfg.duration_sigma);
                let gap = if i == 0 { 0.0 } else { gap_ms };
                span += s.visit * (gap + attempts * dur + (attempts - 1.0) * retry_gap_ms);
                reach *= 1.0 - s.visit + s.visit * move_on;
            }
            let unlisted = UNLISTED
                .iter()
                .filter(|(id, _)| catalog.mot_idx(id).is_none())
                .map(|&(id, ch)| (id.to_owned(), ch.to_owned()))
                .chain(std::iter::once((
                    format!("{}-unlisted", x.id),
                    "web".to_owned(),
                )))
                .filter(|(id, _)| catalog.mot_idx(id).is_none())
                .take(UNLISTED.len())
                .collect();
            ExperiencePlan {
                exp,
                steps,
                sco_step,
                events_per_journey: events.max(1e-9),
                span_ms: span / cfg.speed,
                unlisted,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::airline;

    fn airline_plans(cfg: &SimConfig) -> Vec<ExperiencePlan> {
        plans(&airline(), &Scenario::none(), cfg)
    }

    #[test]
    fn default_failure_is_a_third_of_the_error_budget() {
        let p = airline_plans(&SimConfig::default());
        let bag = &p[0].steps[1];
        assert!((bag.failure - 0.03 / 3.0).abs() < 1e-12);
        assert_eq!(bag.channels, ["kiosk", "desk"]);
        assert_eq!(p[0].sco_step, 4);
    }

    #[test]
    fn healthy_mot_sits_above_its_target() {
        // P(too slow) for a log-normal: P(Z > ln(max / median) / sigma).
        let cfg = SimConfig::default();
        let catalog = airline();
        for s in &airline_plans(&cfg)[0].steps {
            let mot = catalog.mot(s.mot);
            let max_ms = mot
                .smoto
                .max_duration
                .map_or(f64::INFINITY, |d| d.as_secs_f64() * 1e3);
            let z = (max_ms / s.median_ms).ln() / cfg.duration_sigma;
            let slow = 1.0 - crate::tests_support::normal_cdf(z);
            let misery = s.failure + (1.0 - s.failure) * slow;
            assert!(misery < 1.0 - mot.target, "{}: {misery}", mot.id);
            assert!(misery > 0.3 * (1.0 - mot.target), "{}: {misery}", mot.id);
        }
    }

    #[test]
    fn step_odds_follow_the_retry_and_carry_on_rules() {
        let cfg = SimConfig::default();
        // Without failures: one interaction, always moves on.
        assert_eq!(step_odds(0.0, &cfg), (1.0, 1.0));
        // Failure 0.5, retry 0.6: attempts 1 + 0.3 + 0.09 (three at most); moves on after a
        // success or a carried-on failure (1 - 0.6 - 0.25 = 0.15) at any attempt.
        let (attempts, move_on) = step_odds(0.5, &cfg);
        assert!((attempts - 1.39).abs() < 1e-12);
        assert!((move_on - (0.5 + 0.5 * 0.15) * 1.39).abs() < 1e-12);
        // The airline journey has five MOTs, a few retries, a few abandons.
        let e = airline_plans(&cfg)[0].events_per_journey;
        assert!((4.9..5.1).contains(&e), "{e}");
    }

    #[test]
    fn unlisted_mots_avoid_catalog_ids() {
        let p = airline_plans(&SimConfig::default());
        assert_eq!(p[0].unlisted.len(), 4);
        assert_eq!(p[0].unlisted[0], ("chat-support".into(), "chat".into()));
    }
}

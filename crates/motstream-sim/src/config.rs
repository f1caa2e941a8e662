//! The simulator's knobs, their defaults in one place, and their checks.

use std::time::Duration;

use crate::SimError;

/// How the simulated population behaves, apart from what the catalog and the scenario say.
///
/// Every field has a default ([`SimConfig::default`]); override with struct update syntax:
/// `SimConfig { seed: 7, events_per_sec: 500.0, ..SimConfig::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random draw: the same seed, catalog, scenario and calls give the same
    /// events. Also part of every event and journey id, so runs with different seeds never
    /// share an id. Default 1.
    pub seed: u64,
    /// Mean rate of emitted events (journey interactions plus unidentified ones), in events per
    /// second of event time, shared equally between the catalog's experiences. It is the mean
    /// over one [`wave_period`](Self::wave_period); set [`wave_amplitude`](Self::wave_amplitude)
    /// to 0 for a flat load. Incidents change it a little (retries add interactions, abandoned
    /// journeys stop early). > 0; default 100.
    pub events_per_sec: f64,
    /// How many times faster than real life journeys unfold: gaps between interactions, and
    /// the time an interaction takes, are divided by it in event time. Reported durations
    /// (`duration_ms`, which SMOTO rules judge) are real-life values and are not scaled. > 0;
    /// default 10, so an airline journey takes about a minute and a half.
    pub speed: f64,
    /// Share of emitted events whose MOT id is not in the catalog (*unidentified MOTs*), in
    /// [0, 0.5]. Default 0.
    pub unidentified_ratio: f64,
    /// Relative amplitude of the sinusoidal wave on the arrival rate, in [0, 1): the rate
    /// swings between `1 - a` and `1 + a` times its mean. Each experience's wave has its own
    /// phase. 0 is a flat (still Poisson) load. Default 0.2.
    pub wave_amplitude: f64,
    /// Period of the wave, in event time (> 0). `24h` gives a daily shape. Default 10 minutes.
    pub wave_period: Duration,
    /// Probability that a customer retries a failed interaction (another interaction with the
    /// same MOT: an extra MOT per SCO). Default 0.6.
    pub retry_probability: f64,
    /// Probability that a failed interaction ends the journey without its SCO. The rest of the
    /// failures (1 - retry - abandon) carry on to the next MOT; a failed SCO MOT that carries on
    /// ends the journey without SCO. `retry + abandon <= 1`. Default 0.25.
    pub abandon_probability: f64,
    /// Interactions one customer makes with one MOT at most (>= 1): a failure on the last
    /// attempt is not retried (the customer abandons instead). Default 3.
    pub max_attempts: u32,
    /// Median real-life time between one MOT and the next (log-normal), before `speed`.
    /// Default 2 minutes.
    pub gap: Duration,
    /// Median real-life time before a retry (log-normal), before `speed`. Default 30 seconds.
    pub retry_gap: Duration,
    /// Spread of interaction durations: the standard deviation of their logarithm, in
    /// [0, 3]. Default 0.6 (a tenth of interactions take over 2.2 times the median).
    pub duration_sigma: f64,
    /// Journeys in progress at most (>= 1): arrivals beyond it are dropped and counted in
    /// [`crate::SimStats::dropped_arrivals`], so memory stays bounded at any rate. Default
    /// 100,000.
    pub max_active_journeys: usize,
    /// Start in the steady state: the journeys already under way at the start time are
    /// simulated (their earlier events are not emitted), so that the rate is right from the
    /// first second. Costs about two journey lengths of simulation at start. Default true.
    pub warm_up: bool,
    /// Largest gap between [`crate::Simulator::advance`] calls that is caught up, in event
    /// time. After a longer pause (a suspended laptop, a stalled producer) the events of all but
    /// the last `max_catch_up` are skipped and counted in
    /// [`crate::SimStats::skipped_events`] instead of emitted in one burst. At least 1 second;
    /// `Duration::MAX` never skips (to generate a long stretch in one call). Default 10 seconds.
    pub max_catch_up: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            events_per_sec: 100.0,
            speed: 10.0,
            unidentified_ratio: 0.0,
            wave_amplitude: 0.2,
            wave_period: Duration::from_secs(600),
            retry_probability: 0.6,
            abandon_probability: 0.25,
            max_attempts: 3,
            gap: Duration::from_secs(120),
            retry_gap: Duration::from_secs(30),
            duration_sigma: 0.6,
            max_active_journeys: 100_000,
            warm_up: true,
            max_catch_up: Duration::from_secs(10),
        }
    }
}

impl SimConfig {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &'static str, value: String, expected: &str| SimError::Config {
            field,
            message: format!("{value} is out of range (expected {expected})"),
        };
        let positive = |field, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(field, v.to_string(), "a number > 0"))
            }
        };
        let within = |field, v: f64, lo: f64, hi: f64, expected: &str| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(bad(field, v.to_string(), expected))
            }
        };
        positive("events_per_sec", self.events_per_sec)?;
        positive("speed", self.speed)?;
        within(
            "unidentified_ratio",
            self.unidentified_ratio,
            0.0,
            0.5,
            "0 to 0.5",
        )?;
        if !(self.wave_amplitude.is_finite() && (0.0..1.0).contains(&self.wave_amplitude)) {
            return Err(bad(
                "wave_amplitude",
                self.wave_amplitude.to_string(),
                "0 to less than 1",
            ));
        }
        if self.wave_period.is_zero() {
            return Err(bad("wave_period", "0s".into(), "a duration > 0"));
        }
        within(
            "retry_probability",
            self.retry_probability,
            0.0,
            1.0,
            "0 to 1",
        )?;
        within(
            "abandon_probability",
            self.abandon_probability,
            0.0,
            1.0,
            "0 to 1",
        )?;
        if self.retry_probability + self.abandon_probability > 1.0 + 1e-9 {
            return Err(SimError::Config {
                field: "abandon_probability",
                message: format!(
                    "retry_probability {} + abandon_probability {} is more than 1",
                    self.retry_probability, self.abandon_probability
                ),
            });
        }
        if self.max_attempts == 0 {
            return Err(bad("max_attempts", "0".into(), "1 or more"));
        }
        within("duration_sigma", self.duration_sigma, 0.0, 3.0, "0 to 3")?;
        if self.max_active_journeys == 0 || u32::try_from(self.max_active_journeys).is_err() {
            return Err(bad(
                "max_active_journeys",
                self.max_active_journeys.to_string(),
                "1 to 4294967295",
            ));
        }
        if self.max_catch_up < Duration::from_secs(1) {
            let got = humantime::format_duration(self.max_catch_up).to_string();
            return Err(bad("max_catch_up", got, "at least 1s"));
        }
        Ok(())
    }

    /// The probability that a failure carries on to the next MOT.
    pub(crate) fn carry_on_probability(&self) -> f64 {
        (1.0 - self.retry_probability - self.abandon_probability).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(SimConfig::default().validate().is_ok());
    }

    #[test]
    fn invalid_config_names_the_field() {
        let cases = [
            (
                SimConfig {
                    events_per_sec: 0.0,
                    ..SimConfig::default()
                },
                "sim.events_per_sec: 0 is out of range",
            ),
            (
                SimConfig {
                    speed: f64::NAN,
                    ..SimConfig::default()
                },
                "sim.speed: NaN",
            ),
            (
                SimConfig {
                    retry_probability: 0.8,
                    abandon_probability: 0.3,
                    ..SimConfig::default()
                },
                "sim.abandon_probability: retry_probability 0.8 + abandon_probability 0.3",
            ),
            (
                SimConfig {
                    unidentified_ratio: 0.9,
                    ..SimConfig::default()
                },
                "sim.unidentified_ratio",
            ),
        ];
        for (cfg, want) in cases {
            let got = cfg.validate().map_err(|e| e.to_string());
            assert!(
                matches!(&got, Err(m) if m.starts_with(want)),
                "{got:?} should start with {want}"
            );
        }
    }
}

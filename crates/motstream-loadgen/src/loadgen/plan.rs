//! What a loadgen run is asked to do, and the verdicts on what it did: when it stops, how the
//! simulator is set up for the rate, whether the rate was kept. Pure: no clock, no I/O.

use std::time::Duration;

use motstream_sim::SimConfig;

/// How long a run lasts when neither `--count` nor `--duration` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);

/// The simulator's own rate with `--rate 0`: it runs on its own clock, one millisecond of it
/// per batch, so this only sets the batch size (about 1,000 events) and the journeys in
/// flight; the producer takes events as fast as it can.
pub const UNPACED_SIM_RATE: f64 = 1_000_000.0;

/// Up to this rate journeys unfold at the simulator's default speed (an airline journey takes
/// about 90 s). Above it they unfold proportionally faster, so that as many journeys are in
/// flight as at this rate (about 10,000 for the built-in catalog): the simulator's schedule
/// holds one entry per journey in flight, and popping it was a quarter of loadgen's CPU with
/// 50,000 in flight (`perf record` at `--rate 0`); the speed-up also lets the simulator's
/// warm-up (at most 2,000,000 events) cover whole journeys, so the rate is right from the
/// first second.
pub const PLAIN_SPEED_RATE: f64 = 400.0;

/// Journeys in flight at most: far above what the speed-up leaves in flight for the built-in
/// catalog, so that only a catalog with much longer journeys drops arrivals.
pub const MAX_JOURNEYS: usize = 1_000_000;

/// The sending loop counts as behind when it is this far behind the simulator's schedule:
/// more than scheduling jitter on a busy machine, much less than a progress interval.
pub const BEHIND_MS: u64 = 500;

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The simulator's schedule at this many events per second, in real time.
    Rate(f64),
    /// As fast as the producer takes them (`--rate 0`).
    Unpaced,
}

impl Pace {
    /// `--rate`: 0 is unpaced; anything else must be a positive number.
    pub fn from_rate(rate: f64) -> Result<Self, String> {
        if rate == 0.0 {
            Ok(Self::Unpaced)
        } else if rate.is_finite() && rate > 0.0 {
            Ok(Self::Rate(rate))
        } else {
            Err(format!(
                "--rate {rate}: expected events per second > 0, or 0 for as fast as possible"
            ))
        }
    }

    /// The asked rate, if any.
    pub fn asked(self) -> Option<f64> {
        match self {
            Self::Rate(r) => Some(r),
            Self::Unpaced => None,
        }
    }

    /// The simulator's settings: a flat load (no daily wave) at the asked rate, journeys sped
    /// up above [`PLAIN_SPEED_RATE`].
    pub fn sim_config(self, seed: u64) -> SimConfig {
        let rate = self.asked().unwrap_or(UNPACED_SIM_RATE);
        let plain = SimConfig::default();
        SimConfig {
            seed,
            events_per_sec: rate,
            wave_amplitude: 0.0,
            speed: plain.speed * (rate / PLAIN_SPEED_RATE).max(1.0),
            max_active_journeys: MAX_JOURNEYS,
            // The loop advances the simulator in bounded steps and never skips: when it falls
            // behind, events are late, not missing.
            max_catch_up: Duration::MAX,
            ..plain
        }
    }
}

/// When a run ends: `--count`, `--duration`, or both (whichever comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub count: Option<u64>,
    pub duration: Option<Duration>,
}

impl Limits {
    /// A count alone is never cut short by a duration; neither gives [`DEFAULT_DURATION`].
    pub fn new(count: Option<u64>, duration: Option<Duration>) -> Self {
        let duration = match (count, duration) {
            (None, None) => Some(DEFAULT_DURATION),
            (_, d) => d,
        };
        Self { count, duration }
    }

    /// Why to stop after `sent` events `elapsed` into the run, if it is time to.
    pub fn reached(&self, sent: u64, elapsed: Duration) -> Option<Stop> {
        if self.count.is_some_and(|c| sent >= c) {
            Some(Stop::Count)
        } else if self.duration.is_some_and(|d| elapsed >= d) {
            Some(Stop::Duration)
        } else {
            None
        }
    }
}

/// Why the sending stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `--count` events were sent.
    Count,
    /// `--duration` was up (first, if a count was also given).
    Duration,
}

/// Whether the loop kept to the schedule: it is behind when the simulator's clock trails real
/// time by more than [`BEHIND_MS`]. Unpaced runs are never behind.
pub fn behind(pace: Pace, lag_ms: u64) -> bool {
    matches!(pace, Pace::Rate(_)) && lag_ms > BEHIND_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_alone_has_no_duration_cap() {
        let l = Limits::new(Some(200_000), None);
        assert_eq!(l.reached(199_999, Duration::from_secs(3_600)), None);
        assert_eq!(l.reached(200_000, Duration::ZERO), Some(Stop::Count));
    }

    #[test]
    fn count_and_duration_stop_at_whichever_comes_first() {
        let l = Limits::new(Some(100), Some(Duration::from_secs(1)));
        assert_eq!(l.reached(99, Duration::from_millis(999)), None);
        assert_eq!(l.reached(99, Duration::from_secs(1)), Some(Stop::Duration));
        assert_eq!(l.reached(100, Duration::from_millis(10)), Some(Stop::Count));
    }

    #[test]
    fn neither_limit_runs_for_the_default_duration() {
        let l = Limits::new(None, None);
        assert_eq!(l.reached(u64::MAX - 1, DEFAULT_DURATION / 2), None);
        assert_eq!(l.reached(0, DEFAULT_DURATION), Some(Stop::Duration));
    }

    #[test]
    fn rate_zero_is_unpaced_and_nonsense_is_refused() {
        assert_eq!(Pace::from_rate(0.0), Ok(Pace::Unpaced));
        assert_eq!(Pace::from_rate(5.0), Ok(Pace::Rate(5.0)));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = Pace::from_rate(bad).expect_err("refused");
            assert!(e.starts_with("--rate"), "{e}");
        }
    }

    #[test]
    fn journeys_speed_up_with_the_rate_so_that_as_many_are_in_flight() {
        let plain = SimConfig::default().speed;
        assert_eq!(Pace::Rate(PLAIN_SPEED_RATE).sim_config(1).speed, plain);
        let fast = Pace::Rate(PLAIN_SPEED_RATE * 100.0).sim_config(1);
        assert_eq!(fast.speed, plain * 100.0);
        assert_eq!(fast.events_per_sec, PLAIN_SPEED_RATE * 100.0);
        assert_eq!(fast.wave_amplitude, 0.0);
        let unpaced = Pace::Unpaced.sim_config(7);
        assert_eq!(unpaced.events_per_sec, UNPACED_SIM_RATE);
        assert_eq!(unpaced.seed, 7);
        assert!(unpaced.validate().is_ok() && fast.validate().is_ok());
    }

    #[test]
    fn behind_only_when_paced_and_past_the_threshold() {
        assert!(!behind(Pace::Rate(10.0), BEHIND_MS));
        assert!(behind(Pace::Rate(10.0), BEHIND_MS + 1));
        assert!(!behind(Pace::Unpaced, u64::MAX));
    }
}

//! Customer arrivals for one experience: a Poisson process whose rate follows a sinusoidal wave
//! around its mean, drawn by thinning (Lewis and Shedler), which is exact for any wave: draw
//! candidates at the peak rate, keep each with probability `rate(t) / peak`.

use std::f64::consts::TAU;

use crate::rng::Rng;

/// The arrival process of one experience. Times are f64 ms relative to the simulation start
/// (negative during warm-up), so that sub-millisecond gaps at high rates do not round away.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    /// Mean arrivals per ms (> 0).
    mean_per_ms: f64,
    /// Relative amplitude of the wave, in [0, 1).
    amplitude: f64,
    /// Period of the wave, in ms (> 0).
    period_ms: f64,
    /// Phase of the wave, in radians.
    phase: f64,
    /// Time of the pending arrival.
    next_rel: f64,
    /// Bumped on every restart, so that the scheduler can tell a stale entry from the pending one.
    generation: u32,
}

impl Arrivals {
    /// A process with no pending arrival yet: call [`Arrivals::restart`].
    pub(crate) fn new(mean_per_ms: f64, amplitude: f64, period_ms: f64, phase: f64) -> Self {
        Self {
            mean_per_ms,
            amplitude,
            period_ms,
            phase,
            next_rel: 0.0,
            generation: 0,
        }
    }

    /// The arrival rate at `rel`, per ms.
    pub(crate) fn rate_at(&self, rel: f64) -> f64 {
        self.mean_per_ms * (1.0 + self.amplitude * (TAU * rel / self.period_ms + self.phase).sin())
    }

    /// Forgets the pending arrival and draws the first one after `from_rel`: the process is
    /// memoryless, so this is exactly a process that started at `from_rel`.
    pub(crate) fn restart(&mut self, rng: &mut Rng, from_rel: f64) -> f64 {
        self.generation = self.generation.wrapping_add(1);
        self.next_rel = from_rel;
        self.step(rng)
    }

    /// Draws the arrival after the pending one and makes it pending; returns its time.
    pub(crate) fn step(&mut self, rng: &mut Rng) -> f64 {
        let peak = self.mean_per_ms * (1.0 + self.amplitude);
        let mut t = self.next_rel;
        loop {
            t += rng.exp(1.0 / peak);
            // A flat process needs no thinning (and saves a draw per arrival).
            if self.amplitude == 0.0 || rng.chance(self.rate_at(t) / peak) {
                break;
            }
        }
        self.next_rel = t;
        t
    }

    /// Which restart the pending arrival belongs to.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: &mut Arrivals, rng: &mut Rng, from: f64, until: f64, bins: usize) -> Vec<u32> {
        let mut out = vec![0; bins];
        let mut t = a.restart(rng, from);
        while t < until {
            let bin = ((t - from) / (until - from) * bins as f64) as usize;
            out[bin.min(bins - 1)] += 1;
            t = a.step(rng);
        }
        out
    }

    #[test]
    fn flat_arrivals_come_at_the_mean_rate() {
        let mut rng = Rng::new(11);
        // 50 per second for 1,000 seconds.
        let mut a = Arrivals::new(0.05, 0.0, 600_000.0, 0.0);
        let n: u32 = count(&mut a, &mut rng, 0.0, 1_000_000.0, 1).iter().sum();
        assert!((f64::from(n) / 50_000.0 - 1.0).abs() < 0.02, "{n}");
    }

    #[test]
    fn wave_averages_to_the_mean_over_its_period_and_follows_the_sine() {
        let mut rng = Rng::new(12);
        // 50 per second, +-40%, over ten periods of 100 s, counted in quarter periods.
        let mut a = Arrivals::new(0.05, 0.4, 100_000.0, 0.0);
        let q = count(&mut a, &mut rng, 0.0, 1_000_000.0, 40);
        let total: u32 = q.iter().sum();
        assert!((f64::from(total) / 50_000.0 - 1.0).abs() < 0.02, "{total}");
        // Quarters 0-1 (rising, peak) hold more than quarters 2-3 (trough): the mean of
        // 1 + 0.4 sin over a half period is 1 +- 0.4 * 2 / pi.
        let (mut high, mut low) = (0u32, 0u32);
        for (i, n) in q.iter().enumerate() {
            if i % 4 < 2 {
                high += n;
            } else {
                low += n;
            }
        }
        let ratio = f64::from(high) / f64::from(low);
        let want = (1.0 + 0.8 / std::f64::consts::PI) / (1.0 - 0.8 / std::f64::consts::PI);
        assert!((ratio / want - 1.0).abs() < 0.05, "{ratio} vs {want}");
    }

    #[test]
    fn restart_begins_after_its_start_and_bumps_the_generation() {
        let mut rng = Rng::new(13);
        let mut a = Arrivals::new(0.001, 0.2, 1000.0, 1.0);
        let g = a.generation();
        let t = a.restart(&mut rng, 5_000.0);
        assert!(t > 5_000.0);
        assert!(a.step(&mut rng) > t);
        assert_ne!(a.generation(), g);
    }
}

//! A small seedable PRNG (xoshiro256**, seeded through SplitMix64) and the few distributions the
//! simulator draws from.
//!
//! Self-contained so that a seed means the same stream on every build: no dependency whose
//! algorithm could change under a version bump. The float functions (`ln`, `exp`, `cos`) come
//! from the platform's libm, so streams are reproducible on one platform; across platforms they
//! may differ in the last bits of a duration.

use std::f64::consts::TAU;

/// xoshiro256** (Blackman and Vigna): fast, 256 bits of state, passes BigCrush. Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

/// One step of SplitMix64, the generator recommended to seed xoshiro: it turns any seed,
/// including 0, into well-mixed state that is never all zeros.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut sm = seed;
        Self {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (`p <= 0` never, `p >= 1` always).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponential with the given mean (> 0).
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        -mean * (1.0 - self.f64()).ln()
    }

    /// Standard normal, by Box-Muller (one value per call; the twin is not kept, so that the
    /// generator has no hidden state beyond its four words).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }

    /// Log-normal with the given median (> 0) and spread `sigma` (the standard deviation of the
    /// logarithm, >= 0).
    pub(crate) fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// An index in `0..n` (`n >= 1`) where lower ranks are more common: weights 1, 1/2, 1/3…
    /// (Zipf), so the first-listed channel or reason is the usual one.
    pub(crate) fn ranked(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut x = self.f64() * total;
        for k in 0..n {
            x -= 1.0 / (k + 1) as f64;
            if x < 0.0 {
                return k;
            }
        }
        n - 1
    }
}

/// The standard normal quantile: the `z` with `P(Z < z) = p`, for `p` in (0, 1) (clamped
/// inside). Acklam's rational approximation without its refinement step: within 1e-4 of the
/// true value, ample for placing a median.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_671_348_660_68,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_stream_and_other_seeds_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert!(a.iter().all(|&x| x == r.next_u64()));
        let mut other = Rng::new(8);
        assert_ne!(a[0], other.next_u64());
        // Seed 0 is a fine seed, not a stuck generator.
        let mut zero = Rng::new(0);
        assert_ne!(zero.next_u64(), zero.next_u64());
    }

    #[test]
    fn uniform_is_in_range_with_the_right_mean() {
        let mut r = Rng::new(1);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
    }

    #[test]
    fn exponential_and_log_normal_have_their_mean_and_median() {
        let mut r = Rng::new(2);
        let n = 100_000;
        let mean = (0..n).map(|_| r.exp(4.0)).sum::<f64>() / n as f64;
        assert!((mean - 4.0).abs() < 0.08, "{mean}");
        let mut xs: Vec<f64> = (0..n).map(|_| r.log_normal(10.0, 0.6)).collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[n / 2];
        assert!((median - 10.0).abs() < 0.2, "{median}");
    }

    #[test]
    fn ranked_prefers_the_first_entries() {
        let mut r = Rng::new(3);
        let mut counts = [0u32; 3];
        for _ in 0..60_000 {
            counts[r.ranked(3)] += 1;
        }
        // Weights 1, 1/2, 1/3 of 11/6: 6/11, 3/11, 2/11.
        let share = |i: usize| f64::from(counts[i]) / 60_000.0;
        assert!((share(0) - 6.0 / 11.0).abs() < 0.01);
        assert!((share(2) - 2.0 / 11.0).abs() < 0.01);
        assert_eq!(r.ranked(1), 0);
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        for (p, z) in [
            (0.5, 0.0),
            (0.975, 1.959_964),
            (0.995, 2.575_829),
            (0.001, -3.090_232),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-4, "{p}");
        }
    }
}

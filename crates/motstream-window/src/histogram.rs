//! Compact, mergeable log-bucket latency histogram (≤ 2% relative error) and the small exact
//! histogram of MOTs per SCO.
//!
//! Latency bins: values 0..32 ms exactly, then 18 geometric bins per power of two up to
//! 2^24 ms (4.66 h), then one overflow bin: 375 bins, 1.5 KiB of `u32` counts per bucket.
//! A value's bin is found with a leading-zero count and one lookup in a 4 KiB table of the
//! 12 mantissa bits below its leading one. A bin's integer range `[lo, hi]` satisfies
//! `hi / lo < 2^(1/18) + 2^-12`, so its representative `2·lo·hi / (lo + hi)` is within
//! 1.95% of every value in it; a percentile (nearest rank) reports the representative of the
//! bin holding the true value, hence is within 1.95% of the exact percentile. The overflow
//! bin reports the largest value recorded (an upper bound, not within 2%).

use std::sync::atomic::{AtomicU32, Ordering};

/// Number of latency bins.
pub const LATENCY_BINS: usize = EXACT as usize + OCTAVES as usize * SUB as usize + 1;
/// Values at or above this many ms fall into the overflow bin.
pub const LATENCY_OVERFLOW_MS: u32 = 1 << 24;

const EXACT: u32 = 32;
const SUB: u32 = 18;
const FIRST_OCTAVE: u32 = 5;
const OCTAVES: u32 = 24 - FIRST_OCTAVE;
const OVERFLOW_BIN: usize = LATENCY_BINS - 1;
const MANTISSA_BITS: u32 = 12;

/// `ceil(4096 · 2^(k/18)) - 4096` for k in 0..=18: the sub-bin boundaries of an octave in
/// units of its 12-bit mantissa (checked against floating point in a test).
const BOUNDS: [u32; SUB as usize + 1] = [
    0, 161, 328, 502, 683, 870, 1065, 1268, 1478, 1697, 1925, 2161, 2406, 2662, 2927, 3203, 3489,
    3787, 4096,
];

const SUB_OF: [u8; 1 << MANTISSA_BITS] = {
    let mut t = [0u8; 1 << MANTISSA_BITS];
    let mut m = 0;
    while m < t.len() {
        let mut k = 0;
        while BOUNDS[k + 1] as usize <= m {
            k += 1;
        }
        t[m] = k as u8;
        m += 1;
    }
    t
};

/// Bin groups, for the per-bucket "non-empty" mask: the exact bins, one per octave, and
/// the overflow bin (21 groups).
pub(crate) const GROUPS: u32 = 2 + OCTAVES;

/// The group of a bin.
#[inline]
pub(crate) fn group_of(bin: usize) -> u32 {
    let b = bin as u32;
    if b < EXACT {
        0
    } else if bin == OVERFLOW_BIN {
        GROUPS - 1
    } else {
        1 + (b - EXACT) / SUB
    }
}

/// The bins of a group.
pub(crate) fn group_bins(g: u32) -> std::ops::Range<usize> {
    match g {
        0 => 0..EXACT as usize,
        g if g >= GROUPS - 1 => OVERFLOW_BIN..LATENCY_BINS,
        g => {
            let start = (EXACT + (g - 1) * SUB) as usize;
            start..start + SUB as usize
        }
    }
}

/// The bin of a latency in ms.
#[inline]
pub(crate) fn latency_bin(v: u32) -> usize {
    if v < EXACT {
        return v as usize;
    }
    if v >= LATENCY_OVERFLOW_MS {
        return OVERFLOW_BIN;
    }
    let e = 31 - v.leading_zeros();
    let m = if e >= MANTISSA_BITS {
        v >> (e - MANTISSA_BITS)
    } else {
        v << (MANTISSA_BITS - e)
    } & ((1 << MANTISSA_BITS) - 1);
    (EXACT + (e - FIRST_OCTAVE) * SUB) as usize + SUB_OF[m as usize] as usize
}

/// The integer range `[lo, hi]` of values in a (non-overflow) bin; `lo > hi` for a bin that
/// no integer maps to.
pub(crate) fn bin_bounds(bin: usize) -> (u32, u32) {
    let b = bin as u32;
    if b < EXACT {
        return (b, b);
    }
    let e = FIRST_OCTAVE + (b - EXACT) / SUB;
    let k = ((b - EXACT) % SUB) as usize;
    let base = 1u32 << e;
    if e >= MANTISSA_BITS {
        let step = e - MANTISSA_BITS;
        (
            base + (BOUNDS[k] << step),
            base + (BOUNDS[k + 1] << step) - 1,
        )
    } else {
        // mantissa = (v - base) << (12 - e): v - base = ceil(bound >> (12 - e)).
        let shift = MANTISSA_BITS - e;
        let lo = base + BOUNDS[k].div_ceil(1 << shift);
        let hi = base + BOUNDS[k + 1].div_ceil(1 << shift);
        (lo, hi.saturating_sub(1))
    }
}

/// The value reported for a bin: the point of least maximum relative error over its range.
fn representative(bin: usize, max_ms: u32) -> f64 {
    if bin == OVERFLOW_BIN {
        return f64::from(max_ms.max(LATENCY_OVERFLOW_MS));
    }
    let (lo, hi) = bin_bounds(bin);
    if lo == 0 || lo >= hi {
        return f64::from(lo);
    }
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    2.0 * lo * hi / (lo + hi)
}

/// Nearest-rank percentile over bins: the index of the bin holding the `ceil(q·n)`-th value.
fn rank_bin(bins: &[u64], q: f64) -> Option<usize> {
    let n: u64 = bins.iter().sum();
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0u64;
    for (i, &c) in bins.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(i);
        }
    }
    None
}

/// An owned latency histogram: the merge of latency buckets over a window and partitions.
/// Mergeable by addition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    bins: Box<[u64; LATENCY_BINS]>,
    max_ms: u32,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            bins: Box::new([0; LATENCY_BINS]),
            max_ms: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one latency in ms (any `u32`; ≥ 2^24 ms goes to the overflow bin).
    pub fn record(&mut self, ms: u32) {
        self.bins[latency_bin(ms)] += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.bins.iter_mut().zip(other.bins.iter()) {
            *a += b;
        }
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    /// Adds the bins of the groups set in `groups` (the other bins are zero).
    pub(crate) fn add_atomic_groups(
        &mut self,
        bins: &[AtomicU32; LATENCY_BINS],
        groups: u32,
        max_ms: u32,
    ) {
        for g in (0..GROUPS).filter(|g| groups & (1 << g) != 0) {
            let r = group_bins(g);
            for (a, b) in self.bins[r.clone()].iter_mut().zip(&bins[r]) {
                // Relaxed: the caller validates the bucket with its seqlock.
                *a += u64::from(b.load(Ordering::Relaxed));
            }
        }
        self.max_ms = self.max_ms.max(max_ms);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.bins.iter().sum()
    }

    /// The largest latency recorded, in ms (0 when empty).
    pub fn max_ms(&self) -> u32 {
        self.max_ms
    }

    /// The nearest-rank `q`-quantile in ms (`q` in 0..=1), within 1.95% of the exact value
    /// below 2^24 ms; `None` when empty or `q` is out of range.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        rank_bin(&self.bins[..], q).map(|b| representative(b, self.max_ms))
    }
}

/// Bins of the MOTs-per-SCO histogram: counts 1..=64 exactly, then one overflow bin.
pub const MPS_BINS: usize = 65;

/// An owned, exact histogram of how many interactions journeys needed to reach their SCO.
/// Mergeable by addition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountHistogram {
    bins: [u64; MPS_BINS],
    max: u32,
}

impl Default for CountHistogram {
    fn default() -> Self {
        Self {
            bins: [0; MPS_BINS],
            max: 0,
        }
    }
}

/// The bin of a MOTs-per-SCO count (counts ≥ 1; 0 is treated as 1).
pub(crate) fn mps_bin(n: u32) -> usize {
    (n.max(1) as usize - 1).min(MPS_BINS - 1)
}

impl CountHistogram {
    /// Records one journey that needed `n` interactions (≥ 1).
    pub fn record(&mut self, n: u32) {
        self.bins[mps_bin(n)] += 1;
        self.max = self.max.max(n);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.bins.iter_mut().zip(other.bins.iter()) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    pub(crate) fn add_bins(&mut self, bins: &[u32; MPS_BINS], max: u32) {
        for (a, &b) in self.bins.iter_mut().zip(bins.iter()) {
            *a += u64::from(b);
        }
        self.max = self.max.max(max);
    }

    /// How many journeys were recorded.
    pub fn count(&self) -> u64 {
        self.bins.iter().sum()
    }

    /// The exact nearest-rank `q`-quantile (counts above 64 report the largest recorded);
    /// `None` when empty or `q` is out of 0..=1.
    pub fn percentile(&self, q: f64) -> Option<u32> {
        rank_bin(&self.bins, q).map(|b| {
            if b == MPS_BINS - 1 {
                self.max
            } else {
                b as u32 + 1
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_bin_bounds_match_floating_point() {
        for (k, &b) in BOUNDS.iter().enumerate() {
            let want = (4096.0 * 2f64.powf(k as f64 / 18.0)).ceil() as u32 - 4096;
            assert_eq!(b, want, "bound {k}");
        }
    }

    #[test]
    fn every_latency_below_overflow_maps_to_a_bin_whose_representative_is_within_two_percent() {
        let mut worst = 0.0f64;
        let mut prev_bin = 0;
        for v in 0..LATENCY_OVERFLOW_MS {
            let b = latency_bin(v);
            assert!(b >= prev_bin, "bins are monotone in the value ({v})");
            prev_bin = b;
            let (lo, hi) = bin_bounds(b);
            assert!(lo <= v && v <= hi, "{v} outside bin {b} = [{lo}, {hi}]");
            if v > 0 {
                let err = (representative(b, 0) - f64::from(v)).abs() / f64::from(v);
                worst = worst.max(err);
            }
        }
        assert!(worst <= 0.0195, "worst relative error {worst}");
        assert_eq!(latency_bin(LATENCY_OVERFLOW_MS), LATENCY_BINS - 1);
        assert_eq!(latency_bin(u32::MAX), LATENCY_BINS - 1);
    }

    #[test]
    fn bin_groups_partition_the_bins() {
        let mut seen = 0;
        for g in 0..GROUPS {
            for b in group_bins(g) {
                assert_eq!(group_of(b), g);
                seen += 1;
            }
        }
        assert_eq!(seen, LATENCY_BINS);
    }

    #[test]
    fn empty_histograms_have_no_percentiles() {
        assert_eq!(LatencyHistogram::default().percentile(0.5), None);
        assert_eq!(CountHistogram::default().percentile(0.95), None);
        let mut h = LatencyHistogram::default();
        h.record(10);
        assert_eq!(h.percentile(1.5), None);
    }

    #[test]
    fn overflow_latency_reports_the_largest_value_recorded() {
        let mut h = LatencyHistogram::default();
        h.record(1);
        h.record(30_000_000);
        assert_eq!(h.percentile(1.0), Some(30_000_000.0));
    }

    #[test]
    fn mots_per_sco_percentiles_are_exact_and_merge_by_addition() {
        let mut a = CountHistogram::default();
        let mut b = CountHistogram::default();
        for n in [1, 2, 2, 3] {
            a.record(n);
        }
        for n in [4, 100] {
            b.record(n);
        }
        a.merge(&b);
        assert_eq!(a.count(), 6);
        assert_eq!(a.percentile(0.5), Some(2));
        assert_eq!(a.percentile(0.95), Some(100));
    }
}

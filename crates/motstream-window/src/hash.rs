//! Small, fast, deterministic hashing for the writer's private lookup tables (label interners,
//! the journey table). Not DoS-resistant: every table it serves is bounded, so the worst a
//! hostile key set can do is slow one partition's lookups inside that bound.

use std::hash::{BuildHasher, Hasher};

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xA076_1D64_78BD_642F;

/// Multiplies in 128 bits and folds the halves: a strong, cheap 64-bit mixer.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

/// Murmur3's finaliser: spreads every input bit over the whole output.
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[inline]
fn absorb(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = fold_mul(h ^ u64::from_le_bytes(w), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(w), K1);
    }
    h
}

/// A 64-bit hash of `s` under `seed`; equal inputs give equal outputs in every process.
pub(crate) fn hash_str(s: &str, seed: u64) -> u64 {
    let h = absorb(seed ^ K0 ^ (s.len() as u64).wrapping_mul(K1), s.as_bytes());
    fmix64(h)
}

/// [`BuildHasher`] for `HashMap<Arc<str>, _>` lookups keyed by `&str`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastBuild;

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(K0)
    }
}

#[derive(Debug)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        fmix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = absorb(self.0 ^ (bytes.len() as u64), bytes);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = fold_mul(self.0 ^ u64::from(i), K1);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = fold_mul(self.0 ^ i, K1);
    }
}

/// [`BuildHasher`] for maps whose `u64` keys are already well-mixed hashes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PreHashed;

impl BuildHasher for PreHashed {
    type Hasher = PreHasher;
    fn build_hasher(&self) -> PreHasher {
        PreHasher(0)
    }
}

#[derive(Debug)]
pub(crate) struct PreHasher(u64);

impl Hasher for PreHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if a non-u64 key is used by mistake; stay correct, just slower.
        self.0 = absorb(self.0, bytes);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_str_is_deterministic_and_length_sensitive() {
        assert_eq!(hash_str("journey-1", 7), hash_str("journey-1", 7));
        assert_ne!(hash_str("journey-1", 7), hash_str("journey-1", 8));
        assert_ne!(hash_str("a", 0), hash_str("a\0", 0));
        assert_ne!(hash_str("", 0), hash_str("\0", 0));
    }
}

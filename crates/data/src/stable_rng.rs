//! Randomness that is the same on every platform and every version of `rand`:
//! ChaCha streams (whose output rand_chacha documents as portable) and our own
//! Fisher–Yates shuffle, instead of `rand`'s shuffle whose algorithm may change.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// An independent random stream for each `stream` number under one seed.
pub fn stable_rng(seed: u64, stream: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A uniform index in `0..n` (n > 0); the bias of the multiply-shift is below n / 2^64.
pub fn below(rng: &mut (impl RngCore + ?Sized), n: usize) -> usize {
    assert!(n > 0, "below(0)");
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Shuffles in place (Fisher–Yates).
pub fn shuffle<T>(items: &mut [T], rng: &mut (impl RngCore + ?Sized)) {
    for i in (1..items.len()).rev() {
        items.swap(i, below(rng, i + 1));
    }
}

/// A permutation of `0..n` drawn from stream `stream` of `seed`.
pub fn permutation(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut stable_rng(seed, stream));
    order
}

/// Stream numbers are `domain | index`, so different uses of one seed never share a stream.
pub(crate) mod domain {
    pub const PAIRED_EPOCH: u64 = 1 << 48;
    pub const DESIRABLE_EPOCH: u64 = 2 << 48;
    pub const UNDESIRABLE_EPOCH: u64 = 3 << 48;
    pub const SYNTHETIC: u64 = 4 << 48;
    pub const HELD_OUT: u64 = 5 << 48;
}

/// FNV-1a (64-bit, the `fnv` crate): a fixed hash for decisions that must not depend on
/// a seed (the synthetic suite's eval hold-out, the bag-of-words embedding's buckets).
/// Part of what defines those, so it is kept rather than replaced by xxh3.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod fnv_tests {
    /// The published FNV-1a 64-bit test vectors: the same hash as the hand-written one
    /// this replaced, so the held-out split and bag-of-words buckets do not move.
    #[test]
    fn fnv1a_is_the_standard_one() {
        assert_eq!(super::fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x85944171f73967e8);
    }
}

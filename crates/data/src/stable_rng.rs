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

/// FNV-1a: a fixed hash for decisions that must not depend on a seed (the eval hold-out).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

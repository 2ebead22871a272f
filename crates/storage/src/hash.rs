//! The one content hash: xxh3 (64 bits) from `xxhash-rust`. Stable across platforms,
//! Rust releases and runs (unlike std's randomised hasher), and fast enough to hash a
//! multi-gigabyte weight file. Not cryptographic: it guards against using the wrong
//! file, not against an attacker.

/// xxh3-64 of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Hashes a sequence of 64-bit values (e.g. other hashes) in order: the hash of their
/// little-endian bytes, so the order and the count both matter.
pub fn hash_u64s(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for v in values {
        h.update(&v.to_le_bytes());
    }
    h.digest()
}

/// A hash as the 16 hex digits fingerprints are written with.
pub fn hex(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_xxh3_64() {
        // The published xxh3-64 of the empty input (seed 0), so the hash is the
        // well-known one and not a local variant.
        assert_eq!(hash_bytes(b""), 0x2d06800538d394c2);
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"b"));
        assert_eq!(
            hash_u64s([1, 2]),
            hash_bytes(&[1u64.to_le_bytes(), 2u64.to_le_bytes()].concat())
        );
        assert_ne!(hash_u64s([1, 2]), hash_u64s([2, 1]));
        assert_eq!(hex(0xab), "00000000000000ab");
    }
}

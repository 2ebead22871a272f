//! A short, stable identity of a model: a 64-bit hash of the content of every file
//! that defines what the encoder computes (configs, tokenizer, weights). It is the same
//! for a copy of the folder anywhere and changes when any of those bytes changes, so
//! it can key caches of embeddings and be recorded in run metadata.
//!
//! Not cryptographic: it guards against using the wrong model, not against an attacker.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::folder::ModelFolder;

const FNV_OFFSET: u64 = 0xcbf29ce484222325;
const FNV_PRIME: u64 = 0x100000001b3;

/// The splitmix64 finaliser: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// FNV-1a over little-endian 64-bit words (then the tail bytes), seeded with the length
/// and finalised with splitmix64. Stable across platforms and Rust releases, and fast
/// enough for a 90 MB weight file (tens of milliseconds).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET ^ mix(bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        h = (h ^ w).wrapping_mul(FNV_PRIME);
        h = h.rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
    }
    mix(h)
}

/// Folds a sequence of 64-bit hashes, in order, into one (order matters).
fn combine(start: u64, hashes: impl IntoIterator<Item = u64>) -> u64 {
    hashes
        .into_iter()
        .fold(mix(start), |h, x| mix(h.rotate_left(17) ^ x))
}

/// Combines the weights' hash with the content of `files`, in order, into 16 hex digits.
pub fn fingerprint(files: &[PathBuf], weights_hash: u64) -> Result<String> {
    let hashes = files
        .iter()
        .map(|file| {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            Ok(hash_bytes(&bytes))
        })
        .collect::<Result<Vec<u64>>>()?;
    Ok(format!("{:016x}", combine(weights_hash, hashes)))
}

/// The fingerprint [`crate::SentenceEncoder::fingerprint`] reports for the folder `dir`,
/// without building the model (it still reads and hashes the weights file).
pub fn folder_fingerprint(dir: &Path) -> Result<String> {
    let folder = ModelFolder::open(dir)?;
    let weights = folder.weights_path();
    let bytes =
        std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    fingerprint(&folder.defining_files, hash_bytes(&bytes))
}

/// The identity of one text (UTF-8 bytes), for looking rows up by text.
pub fn text_hash(text: &str) -> u64 {
    hash_bytes(text.as_bytes())
}

/// A list of texts, in order, as 16 hex digits: equal lists give equal fingerprints, and
/// a changed, added, removed or reordered text changes it.
pub fn texts_fingerprint<S: AsRef<str>>(texts: &[S]) -> String {
    let hashes = texts.iter().map(|t| text_hash(t.as_ref()));
    format!("{:016x}", combine(texts.len() as u64, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_sensitive() {
        // Pinned values: changing the hash function changes every fingerprint, which
        // must be deliberate.
        assert_eq!(hash_bytes(b""), 0xf52a15e9a9b5e89b);
        let a = hash_bytes(b"all-MiniLM-L6-v2 weights");
        assert_eq!(a, 0x00eec7ba273a3d0e);
        assert_ne!(a, hash_bytes(b"all-MiniLM-L6-v2 weightt"));
        assert_ne!(a, hash_bytes(b"all-MiniLM-L6-v2 weights\0"));
        assert_ne!(hash_bytes(&[0u8; 16]), hash_bytes(&[0u8; 17]));
        let mut big = vec![7u8; 1 << 20];
        let before = hash_bytes(&big);
        big[123_456] ^= 1;
        assert_ne!(before, hash_bytes(&big));
    }

    #[test]
    fn texts_fingerprint_sees_order_content_and_boundaries() {
        let fp = |t: &[&str]| texts_fingerprint(t);
        let base = fp(&["a b", "c"]);
        assert_eq!(base, fp(&["a b", "c"]));
        assert_eq!(base.len(), 16);
        for other in [
            fp(&["c", "a b"]),
            fp(&["a", "b c"]),
            fp(&["a b", "c", ""]),
            fp(&["a b"]),
            fp(&["a b", "d"]),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(fp(&[]), fp(&[""]));
    }
}

//! A short, stable identity of a model: a 64-bit hash of the content of every file
//! that defines what the encoder computes (configs, tokenizer, weights). It is the same
//! for a copy of the folder anywhere and changes when any of those bytes changes, so
//! it can key caches of embeddings and be recorded in run metadata.
//!
//! The hash is xxh3 ([`rpo_storage::hash`]); fingerprints made before it (FNV, embedding
//! cache version 1) differ, and such caches are refused with the command that remakes them.
//! Not cryptographic: it guards against using the wrong model, not against an attacker.

use std::path::{Path, PathBuf};

use crate::error::{EmbedError, Result};
use crate::folder::ModelFolder;

pub use rpo_storage::hash::hash_bytes;
use rpo_storage::hash::hash_u64s;

/// Folds a sequence of 64-bit hashes, in order, into one (order and count matter).
fn combine(start: u64, hashes: impl IntoIterator<Item = u64>) -> u64 {
    hash_u64s(std::iter::once(start).chain(hashes))
}

/// Combines the weights' hash with the content of `files`, in order, into 16 hex digits.
pub fn fingerprint(files: &[PathBuf], weights_hash: u64) -> Result<String> {
    let hashes = files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(file).map_err(|e| EmbedError::io("cannot read", file, e))?;
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
    let bytes = std::fs::read(&weights).map_err(|e| EmbedError::io("cannot read", &weights, e))?;
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
    fn hash_is_xxh3_and_sensitive() {
        // xxh3-64 of the empty input, as published: the fingerprints use the well-known hash.
        assert_eq!(hash_bytes(b""), 0x2d06800538d394c2);
        let a = hash_bytes(b"all-MiniLM-L6-v2 weights");
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

//! Prompt embeddings for RPO's embedding weighting.
//!
//! Until the MiniLM sentence encoder lands, the built-in embedder is a hashed
//! bag of words: each lower-cased word (and word bigram) is hashed into `dim` buckets,
//! counts are L2-normalised. Prompts built from the same template share most words,
//! so their cosine similarity is high, which is the structure RPO's weights exploit.

use tch::{Kind, Tensor};

/// Something that maps prompt texts to L2-normalised embeddings `[n, dim]` (fp32, CPU).
pub trait PromptEmbedder {
    fn embed(&self, texts: &[String]) -> Tensor;
}

pub struct BagOfWords {
    pub dim: usize,
}

/// FNV-1a: stable across platforms and runs, unlike std's randomised hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

impl BagOfWords {
    fn vector(&self, text: &str) -> Vec<f32> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut v = vec![0f32; self.dim];
        let mut add = |key: &str| v[(fnv1a(key.as_bytes()) % self.dim as u64) as usize] += 1.0;
        for w in &words {
            add(w);
        }
        for pair in words.windows(2) {
            add(&format!("{} {}", pair[0], pair[1]));
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl PromptEmbedder for BagOfWords {
    fn embed(&self, texts: &[String]) -> Tensor {
        let flat: Vec<f32> = texts.iter().flat_map(|t| self.vector(t)).collect();
        Tensor::from_slice(&flat)
            .view([texts.len() as i64, self.dim as i64])
            .to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_prompts_are_closer_than_unrelated_ones() {
        let e = BagOfWords { dim: 256 };
        let x = e.embed(&[
            "Human: What is 12 plus 7?".into(),
            "Human: What is 3 plus 40?".into(),
            "Human: What is the capital of France?".into(),
        ]);
        let sim = x.matmul(&x.tr());
        let s = |i: i64, j: i64| sim.double_value(&[i, j]);
        assert!((s(0, 0) - 1.0).abs() < 1e-6, "rows are unit vectors");
        assert!(
            s(0, 1) > s(0, 2) + 0.1,
            "same template closer: {} vs {}",
            s(0, 1),
            s(0, 2)
        );
    }

    #[test]
    fn empty_text_gives_zero_vector_not_nan() {
        let x = BagOfWords { dim: 8 }.embed(&["".into()]);
        assert_eq!(x.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}

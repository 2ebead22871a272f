//! Prompt embeddings for RPO's embedding weighting.
//!
//! - [`Encoder`] (`embedding.model = "minilm"`, the default): a sentence-transformers
//!   model run in-process by rpo-embed (all-MiniLM-L6-v2 unless `embedding.path` names
//!   another folder), as the paper does. Each distinct text is embedded once per run.
//! - [`BagOfWords`] (`"bag-of-words"`): each lower-cased word (and word bigram) hashed
//!   into `dim` buckets, counts L2-normalised; needs no model. Prompts built from the same
//!   template share most words, so their cosine similarity is high.

use anyhow::{Context, Result};
use rpo_embed::SentenceEncoder;
use std::cell::RefCell;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

use crate::config::EmbeddingConfig;

/// Something that maps prompt texts to embeddings `[n, dim]` (fp32, CPU).
pub trait PromptEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Tensor>;
}

/// The embedder a config asks for; loaded only when the objective reads embeddings.
pub fn build(cfg: &EmbeddingConfig, device: Device) -> Result<Box<dyn PromptEmbedder>> {
    Ok(match cfg.model.as_str() {
        "bag-of-words" => Box::new(BagOfWords { dim: cfg.dim }),
        _ => {
            let encoder = match &cfg.path {
                Some(dir) => SentenceEncoder::load(dir, device)
                    .with_context(|| format!("embedding.path {}", dir.display()))?,
                None => SentenceEncoder::load_default(device)?,
            };
            tracing::info!(dim = encoder.dim(), fingerprint = %encoder.fingerprint(), "prompt encoder loaded");
            Box::new(Encoder {
                encoder,
                batch_size: cfg.batch_size,
                seen: RefCell::default(),
            })
        }
    })
}

/// A sentence encoder with a memo: training revisits the same prompts every epoch.
pub struct Encoder {
    encoder: SentenceEncoder,
    batch_size: usize,
    seen: RefCell<HashMap<String, Tensor>>,
}

impl PromptEmbedder for Encoder {
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        let mut seen = self.seen.borrow_mut();
        let mut new: Vec<&str> = texts
            .iter()
            .filter(|t| !seen.contains_key(*t))
            .map(String::as_str)
            .collect();
        new.sort_unstable();
        new.dedup();
        if !new.is_empty() {
            let rows =
                tch::no_grad(|| self.encoder.encode(&new, self.batch_size))?.to_device(Device::Cpu);
            for (i, text) in new.iter().enumerate() {
                seen.insert(text.to_string(), rows.get(i as i64));
            }
        }
        let rows: Vec<&Tensor> = texts.iter().map(|t| &seen[t]).collect();
        Ok(Tensor::stack(&rows, 0))
    }
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
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        let flat: Vec<f32> = texts.iter().flat_map(|t| self.vector(t)).collect();
        Ok(Tensor::from_slice(&flat)
            .view([texts.len() as i64, self.dim as i64])
            .to_kind(Kind::Float))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_prompts_are_closer_than_unrelated_ones() {
        let e = BagOfWords { dim: 256 };
        let x = e
            .embed(&[
                "Human: What is 12 plus 7?".into(),
                "Human: What is 3 plus 40?".into(),
                "Human: What is the capital of France?".into(),
            ])
            .unwrap();
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
        let x = BagOfWords { dim: 8 }.embed(&["".into()]).unwrap();
        assert_eq!(x.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}

//! Helpers shared by the rpo-model integration tests.
#![allow(dead_code)]

use rpo_model::{preset, LlamaConfig};
use tch::{Kind, Tensor};

/// The "tiny" preset with a small vocabulary and a larger init scale than
/// transformers' 0.02, so that attention is far from uniform and a wrong
/// position or mask shows in the logits.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 97,
        initializer_range: 0.1,
        ..preset("tiny").unwrap()
    }
}

/// A Mistral config whose sliding window is shorter than the test sequences,
/// with an explicit head_dim that differs from hidden_size / heads.
pub fn mistral_config(window: i64) -> LlamaConfig {
    LlamaConfig {
        architectures: vec!["MistralForCausalLM".into()],
        model_type: "mistral".into(),
        sliding_window: Some(window),
        head_dim: Some(8),
        rope_theta: 1e6,
        tie_word_embeddings: false,
        ..tiny_config()
    }
}

/// max |a - b| / max |b|: the comparison rule for logits.
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.size(), expected.size(), "shapes differ");
    let a = actual.to_kind(Kind::Double);
    let b = expected.to_kind(Kind::Double);
    let diff = (&a - &b).abs().max().double_value(&[]);
    diff / b.abs().max().double_value(&[])
}

/// Deterministic pseudo-random token ids `[rows, len]` below `vocab` (no global RNG).
pub fn token_ids(rows: i64, len: i64, vocab: i64, seed: u64) -> Tensor {
    Tensor::from_slice(&token_list((rows * len) as usize, vocab, seed)).view([rows, len])
}

/// Deterministic pseudo-random token ids below `vocab`.
pub fn token_list(count: usize, vocab: i64, seed: u64) -> Vec<i64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % vocab as u64) as i64
        })
        .collect()
}

/// Greedy decoding without a cache: the argmax of a full forward pass at every step.
pub fn greedy_without_cache(
    model: &rpo_model::Llama,
    prompt: &[i64],
    max_new: usize,
    eos: Option<i64>,
) -> Vec<i64> {
    let mut tokens = prompt.to_vec();
    let mut new = Vec::new();
    tch::no_grad(|| {
        for _ in 0..max_new {
            let ids = Tensor::from_slice(&tokens).unsqueeze(0);
            let logits = model.forward(&ids);
            let next = logits.get(0).get(-1).argmax(-1, false).int64_value(&[]);
            tokens.push(next);
            new.push(next);
            if Some(next) == eos {
                break;
            }
        }
    });
    new
}

/// An EOS id that stops some sequences of `outputs` midway (first emitted at index 2
/// or later) and never appears earlier in any sequence, so stopping is exercised
/// on some rows while others run on.
pub fn mid_sequence_eos(outputs: &[Vec<i64>]) -> i64 {
    let first_index = |row: &Vec<i64>, token: i64| row.iter().position(|&t| t == token);
    outputs
        .iter()
        .flat_map(|row| row.iter().skip(2).copied())
        .find(|&token| {
            outputs
                .iter()
                .all(|row| first_index(row, token).is_none_or(|i| i >= 2))
        })
        .expect("some token first appears mid-sequence")
}

/// `tokens` cut after the first `eos`.
pub fn truncated_after(tokens: &[i64], eos: i64) -> Vec<i64> {
    match tokens.iter().position(|&t| t == eos) {
        Some(i) => tokens[..=i].to_vec(),
        None => tokens.to_vec(),
    }
}

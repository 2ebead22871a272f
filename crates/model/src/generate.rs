//! Greedy (temperature 0) generation with a key/value cache.

use std::collections::BTreeMap;

use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

use crate::llama::Llama;

/// Greedy continuation of each prompt, up to `max_new_tokens` new tokens.
///
/// Returns only the new tokens, one list per prompt in the order given. A sequence
/// stops after producing `eos_id`, and that EOS token **is included** as its last
/// token (as transformers' `generate` does); strip it for text. `None` never stops early.
///
/// Prompts of equal length run together as one batch (no padding, so no attention
/// mask is needed); each group prefills once and then decodes one token per step.
pub fn generate_greedy(
    model: &Llama,
    prompts: &[Vec<i64>],
    max_new_tokens: usize,
    eos_id: Option<i64>,
) -> Result<Vec<Vec<i64>>> {
    let mut outputs = vec![Vec::new(); prompts.len()];
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, prompt) in prompts.iter().enumerate() {
        ensure!(
            !prompt.is_empty(),
            "prompt {i} is empty: greedy generation needs at least one token"
        );
        let vocab = model.config().vocab_size;
        if let Some(bad) = prompt.iter().find(|&&id| !(0..vocab).contains(&id)) {
            anyhow::bail!("prompt {i} holds token id {bad}, outside the vocabulary 0..{vocab}");
        }
        groups.entry(prompt.len()).or_default().push(i);
    }
    if max_new_tokens == 0 {
        return Ok(outputs);
    }
    tch::no_grad(|| {
        for members in groups.values() {
            let group: Vec<&[i64]> = members.iter().map(|&i| prompts[i].as_slice()).collect();
            for (&i, tokens) in
                members
                    .iter()
                    .zip(generate_group(model, &group, max_new_tokens, eos_id))
            {
                outputs[i] = tokens;
            }
        }
    });
    Ok(outputs)
}

/// Greedy decoding of prompts that all have the same length.
fn generate_group(
    model: &Llama,
    prompts: &[&[i64]],
    max_new_tokens: usize,
    eos_id: Option<i64>,
) -> Vec<Vec<i64>> {
    let device = model.device();
    let flat: Vec<i64> = prompts.iter().flat_map(|p| p.iter().copied()).collect();
    let ids = Tensor::from_slice(&flat)
        .view([prompts.len() as i64, -1])
        .to_device(device);

    let mut cache = model.new_cache();
    let mut logits = model.forward_cached(&ids, &mut cache);
    let mut outputs = vec![Vec::new(); prompts.len()];
    let mut finished = vec![false; prompts.len()];
    for step in 0..max_new_tokens {
        let next = logits.select(1, -1).argmax(-1, false).to_kind(Kind::Int64);
        let next_ids = Vec::<i64>::try_from(&next).expect("argmax ids are int64");
        for (row, &token) in next_ids.iter().enumerate() {
            if !finished[row] {
                outputs[row].push(token);
                finished[row] = Some(token) == eos_id;
            }
        }
        if step + 1 == max_new_tokens || finished.iter().all(|&f| f) {
            break;
        }
        // Finished rows keep decoding alongside the others; their tokens are discarded.
        logits = model.forward_cached(&next.unsqueeze(1), &mut cache);
    }
    outputs
}

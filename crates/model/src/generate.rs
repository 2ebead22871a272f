//! Generation with a key/value cache: greedy (temperature 0, the paper's setting) or
//! sampled (temperature, nucleus top-p), with a random stream per prompt, so a prompt's
//! continuation does not depend on which other prompts share its batch or its rank.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::error::DecodeError;
use crate::kv_cache::KvCache;
use crate::llama::Llama;

/// What decoding needs of a model: a forward that continues a key/value cache. A model
/// sharded by ZeRO-3 gathers each unit for it (rpo-zero's `ShardedDecoder`), so then every
/// rank must run the same number of forwards, whatever its own prompts: before each of
/// its forwards a rank asks [`any_rank`](Self::any_rank)`(true)`, and once its prompts are
/// done it asks `any_rank(false)` and runs [`idle_forward`](Self::idle_forward) until no
/// rank has a forward left. In one process both are trivial. An implementation's own
/// failures go into [`DecodeError::Decoder`].
pub trait Decoder {
    fn config(&self) -> &LlamaConfig;
    fn device(&self) -> Device;
    /// Logits for `ids: [B, T]` continuing the sequences in `cache`, which grows by `T`.
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor, DecodeError>;
    /// Whether any rank runs a forward now (`mine`: this rank does). Every rank calls it
    /// once per forward round.
    fn any_rank(&self, mine: bool) -> Result<bool, DecodeError> {
        Ok(mine)
    }
    /// Takes part in a forward round without computing (a rank with nothing to decode).
    fn idle_forward(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl Decoder for Llama {
    fn config(&self) -> &LlamaConfig {
        Llama::config(self)
    }
    fn device(&self) -> Device {
        Llama::device(self)
    }
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor, DecodeError> {
        Ok(Llama::forward_cached(self, ids, cache))
    }
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decoding {
    Greedy,
    /// Softmax at `temperature`, restricted to the smallest set of most likely tokens
    /// whose probabilities reach `top_p`; prompt i draws from a stream seeded by
    /// `(seed, i)` in the caller's numbering.
    Sample {
        temperature: f64,
        top_p: f64,
        seed: u64,
    },
}

/// Draws the next token of each row of `last_logits: [rows, vocab]`.
fn choose(last_logits: &Tensor, decoding: Decoding, rngs: &mut [ChaCha8Rng]) -> Vec<i64> {
    match decoding {
        Decoding::Greedy => {
            Vec::<i64>::try_from(&last_logits.argmax(-1, false).to_kind(Kind::Int64))
                .expect("argmax ids are int64")
        }
        Decoding::Sample {
            temperature, top_p, ..
        } => {
            let probs = (last_logits.to_kind(Kind::Double) / temperature).softmax(-1, Kind::Double);
            rngs.iter_mut()
                .enumerate()
                .map(|(row, rng)| {
                    let p = Vec::<f64>::try_from(&probs.get(row as i64)).expect("f64 probs");
                    sample_top_p(&p, top_p, rng.gen::<f64>())
                })
                .collect()
        }
    }
}

/// The token at quantile `u` of the nucleus (most likely tokens up to mass `top_p`),
/// ties broken by id so the draw is deterministic.
fn sample_top_p(probs: &[f64], top_p: f64, u: f64) -> i64 {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut kept = 0;
    let mut mass = 0.0;
    for &i in &order {
        kept += 1;
        mass += probs[i];
        if mass >= top_p {
            break;
        }
    }
    let target = u * mass;
    let mut acc = 0.0;
    for &i in &order[..kept] {
        acc += probs[i];
        if acc > target {
            return i as i64;
        }
    }
    order[kept - 1] as i64
}

/// Greedy continuation of each prompt, up to `max_new_tokens` new tokens.
///
/// Returns only the new tokens, one list per prompt in the order given. A sequence
/// stops after producing any id of `stop` (EOS, and the extra `eos_token_id`s of a
/// generation_config.json), and that token **is included** as its last token (as
/// transformers' `generate` does); strip it for text. `&[]` never stops early.
///
/// Prompts of equal length run together as one batch (no padding, so no attention
/// mask is needed); each group prefills once and then decodes one token per step.
pub fn generate_greedy(
    model: &dyn Decoder,
    prompts: &[Vec<i64>],
    max_new_tokens: usize,
    stop: &[i64],
) -> Result<Vec<Vec<i64>>, DecodeError> {
    let ids: Vec<u64> = (0..prompts.len() as u64).collect();
    generate(model, prompts, &ids, max_new_tokens, stop, Decoding::Greedy)
}

/// As [`generate_greedy`] with any [`Decoding`]; `ids[i]` numbers prompt i for its random
/// stream (e.g. its index in the whole data set, so data-parallel ranks draw what one
/// process would).
pub fn generate(
    model: &dyn Decoder,
    prompts: &[Vec<i64>],
    ids: &[u64],
    max_new_tokens: usize,
    stop: &[i64],
    decoding: Decoding,
) -> Result<Vec<Vec<i64>>, DecodeError> {
    if ids.len() != prompts.len() {
        return Err(DecodeError::IdCount {
            ids: ids.len(),
            prompts: prompts.len(),
        });
    }
    if let Decoding::Sample {
        temperature, top_p, ..
    } = decoding
    {
        if !(temperature > 0.0 && top_p > 0.0 && top_p <= 1.0) {
            return Err(DecodeError::Sampling { temperature, top_p });
        }
    }
    let mut outputs = vec![Vec::new(); prompts.len()];
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if prompt.is_empty() {
            return Err(DecodeError::EmptyPrompt { prompt: i });
        }
        let vocab = model.config().vocab_size;
        if let Some(&token) = prompt.iter().find(|&&id| !(0..vocab).contains(&id)) {
            return Err(DecodeError::TokenOutOfVocab {
                prompt: i,
                token,
                vocab,
            });
        }
        groups.entry(prompt.len()).or_default().push(i);
    }
    if max_new_tokens == 0 {
        return Ok(outputs);
    }
    tch::no_grad(|| -> Result<(), DecodeError> {
        for members in groups.values() {
            let group: Vec<&[i64]> = members.iter().map(|&i| prompts[i].as_slice()).collect();
            let seed = match decoding {
                Decoding::Sample { seed, .. } => seed,
                Decoding::Greedy => 0,
            };
            let mut rngs: Vec<ChaCha8Rng> = members
                .iter()
                .map(|&i| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(ids[i]);
                    rng
                })
                .collect();
            let generated =
                generate_group(model, &group, max_new_tokens, stop, decoding, &mut rngs)?;
            for (&i, tokens) in members.iter().zip(generated) {
                outputs[i] = tokens;
            }
        }
        // Keep the other ranks' forwards company until they are done too.
        while model.any_rank(false)? {
            model.idle_forward()?;
        }
        Ok(())
    })?;
    Ok(outputs)
}

/// Decoding of prompts that all have the same length.
fn generate_group(
    model: &dyn Decoder,
    prompts: &[&[i64]],
    max_new_tokens: usize,
    stop: &[i64],
    decoding: Decoding,
    rngs: &mut [ChaCha8Rng],
) -> Result<Vec<Vec<i64>>, DecodeError> {
    let device = model.device();
    let flat: Vec<i64> = prompts.iter().flat_map(|p| p.iter().copied()).collect();
    let ids = Tensor::from_slice(&flat)
        .view([prompts.len() as i64, -1])
        .to_device(device);

    let mut cache = KvCache::new(model.config().num_hidden_layers as usize);
    model.any_rank(true)?;
    let mut logits = model.forward_cached(&ids, &mut cache)?;
    let mut outputs = vec![Vec::new(); prompts.len()];
    let mut finished = vec![false; prompts.len()];
    for step in 0..max_new_tokens {
        let next_ids = choose(&logits.select(1, -1), decoding, rngs);
        let next = Tensor::from_slice(&next_ids).to_device(device);
        for (row, &token) in next_ids.iter().enumerate() {
            if !finished[row] {
                outputs[row].push(token);
                finished[row] = stop.contains(&token);
            }
        }
        if step + 1 == max_new_tokens || finished.iter().all(|&f| f) {
            break;
        }
        // Finished rows keep decoding alongside the others; their tokens are discarded.
        model.any_rank(true)?;
        logits = model.forward_cached(&next.unsqueeze(1), &mut cache)?;
    }
    Ok(outputs)
}

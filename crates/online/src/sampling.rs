//! k sampled responses per prompt, data-parallel. Sample s of prompt i draws from the
//! random stream `(seed, i << 16 | s)`, so the result is the same at any rank count and a
//! prompt's first samples do not depend on k.

use indicatif::{ProgressBar, ProgressStyle};
use rpo_comm::{all_gather_varlen, Collective};
use rpo_data::PreferenceTokenizer;
use rpo_model::{generate, Decoder, Decoding};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

use crate::error::{OnlineError, Result};
use crate::prompts::PromptRecord;

/// Most samples per prompt: the sample number takes the low 16 bits of the stream id.
pub const MAX_SAMPLES_PER_PROMPT: usize = 1 << 16;

#[derive(Debug, Clone, Copy)]
pub struct SamplingParams {
    pub samples_per_prompt: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

/// Every rank samples its contiguous share of the (prompt, sample) items; rank 0 gets
/// all lines `{prompt, response, prompt_index, sample, tokens, …the record's fields}` in
/// prompt-major order, the other ranks `None`. `model` is a whole model on each rank, or
/// a sharded one whose forwards every rank takes part in (`rpo_zero::ShardedDecoder`):
/// every rank runs the same number of chunks, a rank past its share with none to decode.
pub fn sample(
    world: &dyn Collective,
    model: &dyn Decoder,
    tokenizer: &PreferenceTokenizer,
    prompts: &[PromptRecord],
    p: SamplingParams,
) -> Result<Option<Vec<Map<String, Value>>>> {
    if !(1..=MAX_SAMPLES_PER_PROMPT).contains(&p.samples_per_prompt) {
        return Err(OnlineError::Invalid(format!(
            "samples per prompt must be 1..={MAX_SAMPLES_PER_PROMPT}"
        )));
    }
    if !(p.temperature > 0.0 && p.top_p > 0.0 && p.top_p <= 1.0) {
        return Err(OnlineError::Invalid(
            "sampling needs temperature > 0 and 0 < top_p ≤ 1".into(),
        ));
    }
    let (rank, ranks) = (world.rank(), world.world_size());
    let k = p.samples_per_prompt;
    let items: Vec<(usize, usize)> = (0..prompts.len())
        .flat_map(|i| (0..k).map(move |s| (i, s)))
        .collect();
    let per_rank = items.len().div_ceil(ranks);
    let mine = &items[(rank * per_rank).min(items.len())..((rank + 1) * per_rank).min(items.len())];
    let stop = tokenizer.special().stop.clone();
    let decoding = Decoding::Sample {
        temperature: p.temperature,
        top_p: p.top_p,
        seed: p.seed,
    };
    let bar = if rank == 0 && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(mine.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("sample {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .expect("static template"),
    );
    let start = Instant::now();
    let mut encoded: std::collections::HashMap<usize, Vec<i64>> = Default::default();
    let mut lines = String::new();
    // Chunks keep the progress bar moving; prompts of equal length batch within a chunk.
    // Every rank runs per_rank / CHUNK of them (the last ones may be empty), so that a
    // sharded model's ranks call `generate` alike.
    const CHUNK: usize = 64;
    for c in 0..per_rank.div_ceil(CHUNK) {
        let chunk = &mine[(c * CHUNK).min(mine.len())..((c + 1) * CHUNK).min(mine.len())];
        let mut batch = Vec::with_capacity(chunk.len());
        for &(i, _) in chunk {
            if !encoded.contains_key(&i) {
                encoded.insert(
                    i,
                    tokenizer.encode_prompt_for_generation(&prompts[i].prompt)?,
                );
            }
            batch.push(encoded[&i].clone());
        }
        let ids: Vec<u64> = chunk
            .iter()
            .map(|&(i, s)| ((i as u64) << 16) | s as u64)
            .collect();
        let outputs = generate(model, &batch, &ids, p.max_new_tokens, &stop, decoding)?;
        for (&(i, s), tokens) in chunk.iter().zip(outputs) {
            let n_tokens = tokens.len();
            let text: Vec<i64> = tokens.into_iter().filter(|t| !stop.contains(t)).collect();
            let mut line = Map::new();
            line.insert("prompt".into(), Value::String(prompts[i].prompt.clone()));
            line.insert("response".into(), Value::String(tokenizer.decode(&text)?));
            line.insert("prompt_index".into(), i.into());
            line.insert("sample".into(), s.into());
            line.insert("tokens".into(), n_tokens.into());
            for (key, v) in &prompts[i].fields {
                line.entry(key.clone()).or_insert_with(|| v.clone());
            }
            lines.push_str(&serde_json::to_string(&line)?);
            lines.push('\n');
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // Every rank's lines, in rank order (= item order), to rank 0.
    let bytes = Tensor::from_slice(lines.as_bytes()).to_kind(Kind::Uint8);
    let (all, _) = all_gather_varlen(world, &bytes.to_device(world.device()))?;
    let seconds = start.elapsed().as_secs_f64();
    if rank != 0 {
        return Ok(None);
    }
    let text = String::from_utf8(Vec::<u8>::try_from(&all.to_device(Device::Cpu))?)?;
    let records: Vec<Map<String, Value>> = text
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|source| OnlineError::GatheredLine { source }))
        .collect::<Result<_>>()?;
    let tokens: u64 = records
        .iter()
        .map(|r| r["tokens"].as_u64().unwrap_or(0))
        .sum();
    tracing::info!(
        samples = records.len(),
        tokens,
        seconds = format!("{seconds:.1}"),
        tokens_per_s = format!("{:.0}", tokens as f64 / seconds.max(1e-9)),
        "sampled"
    );
    Ok(Some(records))
}

/// JSONL text of `records`: one JSON value a line (samples, preference rows).
pub fn to_jsonl<T: serde::Serialize>(records: &[T]) -> Result<String> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    Ok(text)
}

/// Writes `text` to `path` atomically ([`rpo_storage::atomic`]: temporary file, fsync,
/// rename, fsync of the folder), so a reader never sees half a file and a failed write
/// leaves the previous one.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    Ok(rpo_storage::write_bytes_atomically(path, text.as_bytes())?)
}

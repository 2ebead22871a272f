//! Prompt embeddings for RPO's embedding weighting.
//!
//! Where they come from (`[embedding]`):
//! - [`Encoder`] (`model = "minilm"`, the default): a sentence-transformers model run
//!   in-process by rpo-embed (all-MiniLM-L6-v2 unless `path` names another folder), as
//!   the paper does. [`build_for_run`] embeds every distinct text of the run before the
//!   first step (data-parallel over the ranks, all-gathered), so no step embeds.
//! - [`BagOfWords`] (`"bag-of-words"`): each lower-cased word (and word bigram) hashed
//!   into `dim` buckets, counts L2-normalised; needs no model. Prompts built from the same
//!   template share most words, so their cosine similarity is high.
//! - [`Cached`] (`cache = "FILE"`): rows precomputed by `rpo-shard embed`
//!   ([`crate::precompute`]), refused before training when they were made from another
//!   model, text mode or data.
//!
//! What is embedded (`text`, [`TextMode`]): each example's prompt, as the model sees it
//! after truncation; or, for the paper's appendix F.1 ablation, prompt + response, so
//! each response has its own embedding: a paired batch's win rows read prompt + chosen
//! and its lose columns prompt + rejected, an unpaired example prompt + its completion.

use rpo_data::{PairedBatch, PairedExample, UnpairedBatch, UnpairedExample};
use rpo_embed::fingerprint::{folder_fingerprint, texts_fingerprint};
use rpo_embed::{locate_default, EmbeddingCache, SentenceEncoder};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

use crate::config::{EmbedderName, EmbeddingConfig};
use crate::data_source::{RunData, TrainExamples};
use crate::error::{Result, TrainError};

/// Something that maps texts to embeddings `[n, dim]` (fp32, CPU).
pub trait PromptEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Tensor>;

    /// Which text stands for an example (the prompt unless the run says otherwise).
    fn text_mode(&self) -> TextMode {
        TextMode::Prompt
    }
}

pub use crate::choices::TextMode;

impl TextMode {
    /// The text embedded for one response of `prompt` (the model reads them joined).
    fn text(self, prompt: &str, response: &str) -> String {
        match self {
            TextMode::Prompt => prompt.to_string(),
            TextMode::PromptResponse => format!("{prompt}{response}"),
        }
    }

    fn texts(self, prompts: &[String], responses: &[String]) -> Vec<String> {
        prompts
            .iter()
            .zip(responses)
            .map(|(p, r)| self.text(p, r))
            .collect()
    }
}

/// The texts of a paired batch's win rows (chosen) and lose columns (rejected).
pub fn paired_texts(mode: TextMode, batch: &PairedBatch) -> (Vec<String>, Vec<String>) {
    (
        mode.texts(&batch.prompts, &batch.chosen_texts),
        mode.texts(&batch.prompts, &batch.rejected_texts),
    )
}

/// One text per example of an unpaired batch, in batch order.
pub fn unpaired_texts(mode: TextMode, batch: &UnpairedBatch) -> Vec<String> {
    mode.texts(&batch.prompts, &batch.completions)
}

/// Embeddings of a paired batch's win rows and lose columns, `([B, d], [B, d])`.
pub fn paired_embeddings(
    embedder: &dyn PromptEmbedder,
    batch: &PairedBatch,
) -> Result<(Tensor, Tensor)> {
    match embedder.text_mode() {
        // One prompt per pair: rows and columns share it, embedded once.
        TextMode::Prompt => {
            let e = embedder.embed(&batch.prompts)?;
            Ok((e.shallow_clone(), e))
        }
        mode => {
            let (win, lose) = paired_texts(mode, batch);
            Ok((embedder.embed(&win)?, embedder.embed(&lose)?))
        }
    }
}

/// Embeddings of an unpaired batch's examples, `[B, d]` in batch order.
pub fn unpaired_embeddings(embedder: &dyn PromptEmbedder, batch: &UnpairedBatch) -> Result<Tensor> {
    embedder.embed(&unpaired_texts(embedder.text_mode(), batch))
}

/// Every distinct text a run embeds, in a fixed order (training examples in file order,
/// then the held-out pairs; first occurrences). Texts come from the same batches
/// training builds, so truncation and text mode apply exactly as there. This is what
/// `rpo-shard embed` caches and what a cache's texts fingerprint is checked against.
pub fn run_texts(data: &RunData, mode: TextMode) -> Result<Vec<String>> {
    // Batches only to reuse their text construction; the size just bounds memory.
    const CHUNK: usize = 256;
    let tok = &data.tokenizer;
    let mut out = Distinct::default();
    let add_pairs = |out: &mut Distinct, pairs: &[PairedExample]| -> Result<()> {
        for chunk in pairs.chunks(CHUNK) {
            let refs: Vec<&PairedExample> = chunk.iter().collect();
            let (win, lose) = paired_texts(mode, &PairedBatch::from_examples(&refs, tok)?);
            out.extend(win);
            out.extend(lose);
        }
        Ok(())
    };
    match &data.train {
        TrainExamples::Paired(pairs) => add_pairs(&mut out, pairs)?,
        TrainExamples::Unpaired(examples) => {
            for chunk in examples.chunks(CHUNK) {
                let refs: Vec<&UnpairedExample> = chunk.iter().collect();
                out.extend(unpaired_texts(
                    mode,
                    &UnpairedBatch::with_rotated_kl(&refs, tok)?,
                ));
            }
        }
    }
    add_pairs(&mut out, &data.eval_pairs)?;
    Ok(out.texts)
}

/// Texts in first-occurrence order, each once.
#[derive(Default)]
struct Distinct {
    seen: HashSet<String>,
    texts: Vec<String>,
}

impl Distinct {
    fn extend(&mut self, texts: Vec<String>) {
        for t in texts {
            if !self.seen.contains(&t) {
                self.seen.insert(t.clone());
                self.texts.push(t);
            }
        }
    }
}

/// The embedding model a config names, identified by content: what a cache records and
/// is checked against.
#[derive(Debug, Clone)]
pub struct ModelIdentity {
    pub name: String,
    /// The sentence-transformers folder (none for bag-of-words).
    pub path: Option<PathBuf>,
    pub fingerprint: String,
}

impl ModelIdentity {
    /// Without building the model (the weights file is still read and hashed).
    pub fn of(cfg: &EmbeddingConfig) -> Result<Self> {
        match cfg.model {
            EmbedderName::BagOfWords => Ok(bag_of_words_identity(cfg.dim)),
            EmbedderName::MiniLm => {
                let dir = minilm_dir(cfg)?;
                let fingerprint =
                    folder_fingerprint(&dir).map_err(|source| TrainError::EmbeddingModel {
                        what: describe_dir(cfg, &dir),
                        source,
                    })?;
                Ok(ModelIdentity {
                    name: cfg.model.to_string(),
                    path: Some(dir),
                    fingerprint,
                })
            }
        }
    }
}

fn bag_of_words_identity(dim: usize) -> ModelIdentity {
    ModelIdentity {
        name: "bag-of-words".into(),
        path: None,
        // The hashing scheme and width are all that define it.
        fingerprint: format!("bag-of-words-v1-dim{dim}"),
    }
}

/// The sentence-transformers folder of a "minilm" config: `path`, else the default.
fn minilm_dir(cfg: &EmbeddingConfig) -> Result<PathBuf> {
    match &cfg.path {
        Some(dir) => Ok(dir.clone()),
        None => Ok(locate_default()?),
    }
}

fn describe_dir(cfg: &EmbeddingConfig, dir: &Path) -> String {
    match cfg.path {
        Some(_) => format!("embedding.path {}", dir.display()),
        None => format!("the default sentence encoder {}", dir.display()),
    }
}

/// A loaded embedding model: it embeds every text it is given (no memo).
pub struct LoadedModel {
    pub embedder: Box<dyn PromptEmbedder>,
    pub identity: ModelIdentity,
    pub dim: usize,
}

/// Loads the model `cfg` names onto `device`.
pub fn load_model(cfg: &EmbeddingConfig, device: Device) -> Result<LoadedModel> {
    if cfg.model == EmbedderName::BagOfWords {
        return Ok(LoadedModel {
            embedder: Box::new(BagOfWords { dim: cfg.dim }),
            identity: bag_of_words_identity(cfg.dim),
            dim: cfg.dim,
        });
    }
    let dir = minilm_dir(cfg)?;
    let encoder =
        SentenceEncoder::load(&dir, device).map_err(|source| TrainError::EmbeddingModel {
            what: describe_dir(cfg, &dir),
            source,
        })?;
    tracing::info!(dim = encoder.dim(), fingerprint = %encoder.fingerprint(), dir = %dir.display(), "sentence encoder loaded");
    Ok(LoadedModel {
        identity: ModelIdentity {
            name: cfg.model.to_string(),
            path: Some(dir),
            fingerprint: encoder.fingerprint(),
        },
        dim: encoder.dim() as usize,
        embedder: Box::new(Encoder {
            encoder,
            batch_size: cfg.batch_size,
        }),
    })
}

/// The embedder a run uses: the cache when `embedding.cache` is set (checked against
/// `data` now, before any training), else the model, embedding each text once.
pub fn build(
    cfg: &EmbeddingConfig,
    data: &RunData,
    device: Device,
) -> Result<Box<dyn PromptEmbedder>> {
    let mode = cfg.text;
    let source: Box<dyn PromptEmbedder> = match &cfg.cache {
        Some(path) => Box::new(Cached::open(path, cfg, data, mode)?),
        None => Box::new(Memo::new(load_model(cfg, device)?.embedder)),
    };
    Ok(Box::new(InMode { source, mode }))
}

/// As [`build`], but without a cache every distinct text of the run ([`run_texts`]) is
/// embedded now, before the first step: each rank embeds a contiguous share in batches
/// (progress bar on rank 0), the shares are all-gathered in order, and every rank keeps
/// all rows in memory. Training then only looks rows up. Every rank must call this.
pub fn build_for_run(
    cfg: &EmbeddingConfig,
    data: &RunData,
    device: Device,
    world: &dyn rpo_comm::Collective,
) -> Result<Box<dyn PromptEmbedder>> {
    let mode = cfg.text;
    if cfg.cache.is_some() {
        return build(cfg, data, device);
    }
    let texts = run_texts(data, mode)?;
    let model = load_model(cfg, device)?;
    let (w, r) = (world.world_size(), world.rank());
    let (start, end) = (texts.len() * r / w, texts.len() * (r + 1) / w);
    let bar = if r == 0 {
        crate::progress::progress_bar((end - start) as u64, "embed")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let mut own = Vec::new();
    for block in texts[start..end].chunks(cfg.batch_size.max(1) * 16) {
        own.push(model.embedder.embed(block)?);
        bar.inc(block.len() as u64);
    }
    bar.finish_and_clear();
    let own = if own.is_empty() {
        Tensor::zeros([0, model.dim as i64], (Kind::Float, Device::Cpu))
    } else {
        Tensor::cat(&own, 0)
    };
    let (all, _) = rpo_comm::all_gather_varlen(world, &own.to_device(world.device()))?;
    let all = all.to_device(Device::Cpu);
    tracing::info!(
        texts = texts.len(),
        ranks = w,
        seconds = started.elapsed().as_secs_f64(),
        "embedded the run's distinct texts before the first step"
    );
    let memo = Memo::new(model.embedder);
    memo.seen.borrow_mut().extend(
        texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, all.get(i as i64))),
    );
    Ok(Box::new(InMode {
        source: Box::new(memo),
        mode,
    }))
}

/// An embedder that embeds the run's text mode.
struct InMode {
    source: Box<dyn PromptEmbedder>,
    mode: TextMode,
}

impl PromptEmbedder for InMode {
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        self.source.embed(texts)
    }

    fn text_mode(&self) -> TextMode {
        self.mode
    }
}

/// A sentence encoder, `batch_size` texts per forward, without gradients.
pub struct Encoder {
    encoder: SentenceEncoder,
    batch_size: usize,
}

impl PromptEmbedder for Encoder {
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(tch::no_grad(|| self.encoder.encode(&texts, self.batch_size))?.to_device(Device::Cpu))
    }
}

/// Embeds each distinct text once: training revisits the same prompts every epoch.
pub struct Memo {
    inner: Box<dyn PromptEmbedder>,
    seen: RefCell<HashMap<String, Tensor>>,
}

impl Memo {
    pub fn new(inner: Box<dyn PromptEmbedder>) -> Self {
        Memo {
            inner,
            seen: RefCell::default(),
        }
    }
}

impl PromptEmbedder for Memo {
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        let mut seen = self.seen.borrow_mut();
        let mut new: Vec<String> = texts
            .iter()
            .filter(|t| !seen.contains_key(*t))
            .cloned()
            .collect();
        new.sort_unstable();
        new.dedup();
        if !new.is_empty() {
            let rows = self.inner.embed(&new)?;
            for (i, text) in new.into_iter().enumerate() {
                seen.insert(text, rows.get(i as i64));
            }
        }
        let rows: Vec<&Tensor> = texts.iter().map(|t| &seen[t]).collect();
        Ok(Tensor::stack(&rows, 0))
    }
}

/// Rows of a `rpo-shard embed` cache, memory-mapped, found by text.
pub struct Cached {
    cache: EmbeddingCache,
}

impl Cached {
    /// Opens `path` and refuses it unless it was made from the model `cfg` names, the
    /// text `mode`, and exactly the texts `data` gives; the error names every field
    /// that differs.
    pub fn open(
        path: &Path,
        cfg: &EmbeddingConfig,
        data: &RunData,
        mode: TextMode,
    ) -> Result<Self> {
        if !path.exists() {
            return Err(TrainError::MissingEmbeddingCache {
                path: path.to_path_buf(),
            });
        }
        let cache =
            EmbeddingCache::open(path).map_err(|error| TrainError::EmbeddingCache { error })?;
        let model = ModelIdentity::of(cfg)?;
        let texts = run_texts(data, mode)?;
        let fingerprint = texts_fingerprint(&texts);
        let h = cache.header();
        let mut stale = Vec::new();
        if h.embedder.model_fingerprint != model.fingerprint {
            stale.push(format!(
                "model fingerprint {} ({} {}) but this run's model is {} ({} {})",
                h.embedder.model_fingerprint,
                h.embedder.model,
                h.embedder.model_path.as_deref().unwrap_or("built in"),
                model.fingerprint,
                model.name,
                model
                    .path
                    .as_ref()
                    .map_or("built in".into(), |p| p.display().to_string()),
            ));
        }
        if h.embedder.text_mode != mode.name() {
            stale.push(format!(
                "text mode {:?} but this run has embedding.text = {:?}",
                h.embedder.text_mode,
                mode.name()
            ));
        }
        if h.texts_fingerprint != fingerprint {
            stale.push(format!(
                "texts fingerprint {} ({} texts) but this run's data gives {fingerprint} ({} texts)",
                h.texts_fingerprint,
                h.count,
                texts.len()
            ));
        }
        if !stale.is_empty() {
            return Err(TrainError::StaleEmbeddingCache {
                path: path.to_path_buf(),
                differences: stale,
            });
        }
        tracing::info!(cache = %path.display(), texts = h.count, dim = h.embedder.dim, dtype = %h.embedder.dtype, text = mode.name(), "embeddings from the cache");
        Ok(Cached { cache })
    }
}

impl PromptEmbedder for Cached {
    fn embed(&self, texts: &[String]) -> Result<Tensor> {
        Ok(self.cache.lookup(texts)?)
    }
}

pub struct BagOfWords {
    pub dim: usize,
}

/// Stable across platforms and runs, unlike std's randomised hasher.
use rpo_data::stable_rng::fnv1a;

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

//! `rpo-shard embed`: every text a run would embed, embedded once into a cache file
//! that training then reads (`embedding.cache`) instead of running the encoder.

use crate::error::Result;
use indicatif::{ProgressBar, ProgressStyle};
use rpo_embed::{CacheHeader, CacheModel, CacheWriter};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use rpo_embed::CacheDtype;

use crate::config::TrainConfig;
use crate::data_source::RunData;
use crate::device::{check_available, parse_device};
use crate::prompt_embedding::{load_model, run_texts};

/// What `rpo-shard embed` did, printed as one JSON line (benches/embed_throughput.sh reads it).
#[derive(Debug, Serialize)]
pub struct EmbedReport {
    pub out: PathBuf,
    pub texts: usize,
    pub dim: usize,
    pub dtype: CacheDtype,
    pub text_mode: &'static str,
    pub model: String,
    pub model_fingerprint: String,
    pub texts_fingerprint: String,
    /// Reading the data and collecting its distinct texts.
    pub collect_seconds: f64,
    pub load_model_seconds: f64,
    /// Encoding and writing the rows.
    pub embed_seconds: f64,
    pub sentences_per_s: f64,
    /// The whole command after the config was read.
    pub total_seconds: f64,
}

/// Texts per encoder call between progress updates; the encoder sorts each call's
/// texts by length, so larger calls pad less.
const BATCHES_PER_CALL: usize = 16;
/// How often a non-terminal run reports progress in the log.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Embeds every distinct text of `cfg`'s run (train and held-out data, in its text mode)
/// with its model, under no_grad, and writes the cache to `out`.
pub fn precompute(cfg: &TrainConfig, out: &Path, dtype: CacheDtype) -> Result<EmbedReport> {
    let started = Instant::now();
    let device = parse_device(&cfg.model.device)?;
    check_available(device)?;
    let mode = cfg.embedding.text;
    let data = RunData::load(cfg)?;
    let texts = run_texts(&data, mode)?;
    let collect_seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        texts = texts.len(),
        text = mode.name(),
        "collected the run's distinct texts"
    );

    let loading = Instant::now();
    let model = load_model(&cfg.embedding, device)?;
    let load_model_seconds = loading.elapsed().as_secs_f64();
    let header = CacheHeader::new(
        CacheModel {
            model: model.identity.name.clone(),
            model_path: model
                .identity
                .path
                .as_ref()
                .map(|p| p.display().to_string()),
            model_fingerprint: model.identity.fingerprint.clone(),
            text_mode: mode.name().to_string(),
            dim: model.dim,
            dtype,
        },
        &texts,
    )?;
    let texts_fingerprint = header.texts_fingerprint.clone();
    let mut writer = CacheWriter::create(out, header)?;

    let embedding = Instant::now();
    let bar = progress_bar(texts.len() as u64);
    let mut logged = Instant::now();
    tch::no_grad(|| -> Result<()> {
        for block in texts.chunks(cfg.embedding.batch_size * BATCHES_PER_CALL) {
            writer.append(&model.embedder.embed(block)?)?;
            bar.inc(block.len() as u64);
            if bar.is_hidden() && logged.elapsed() >= LOG_EVERY {
                logged = Instant::now();
                let done = bar.position();
                tracing::info!(
                    done,
                    of = texts.len(),
                    per_s = (done as f64 / embedding.elapsed().as_secs_f64()).round(),
                    "embedding"
                );
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let embed_seconds = embedding.elapsed().as_secs_f64();
    let out = writer.finish()?;
    let report = EmbedReport {
        out,
        texts: texts.len(),
        dim: model.dim,
        dtype,
        text_mode: mode.name(),
        model: model.identity.name,
        model_fingerprint: model.identity.fingerprint,
        texts_fingerprint,
        collect_seconds,
        load_model_seconds,
        embed_seconds,
        sentences_per_s: texts.len() as f64 / embed_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    tracing::info!(out = %report.out.display(), texts = report.texts, seconds = embed_seconds, "embedding cache written");
    Ok(report)
}

/// Texts embedded so far, with the rate; hidden when stderr is not a terminal (the log
/// reports progress instead).
fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "embed [{bar:30}] {pos}/{len} texts {per_sec} {elapsed}<{eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar
}

//! Everything a run reads: the tokenizer, the training examples in the shape the
//! objective needs, and the held-out sets for evaluation.

use anyhow::{Context, Result};
use rpo_data::synthetic::{self, Split, SyntheticExample};
use rpo_data::{
    pairs_to_unpaired, read_dataset_with, trained_tokenizer_files, DataFormat, Examples,
    OnMalformed, PairedExample, PreferenceTokenizer, SpecialTokens, TokenizerFiles, Truncation,
    UnpairedExample,
};
use std::path::Path;
use tokenizers::Tokenizer;

use crate::config::{TrainConfig, BUILTIN_SYNTHETIC_TOKENIZER};

pub enum TrainExamples {
    Paired(Vec<PairedExample>),
    Unpaired(Vec<UnpairedExample>),
}

impl TrainExamples {
    pub fn len(&self) -> usize {
        match self {
            TrainExamples::Paired(p) => p.len(),
            TrainExamples::Unpaired(u) => u.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (prompt, preferred response) for SFT: chosen responses, or desirable completions.
    pub fn preferred_responses(&self) -> Vec<(&str, &str)> {
        match self {
            TrainExamples::Paired(p) => p
                .iter()
                .map(|e| (e.prompt.as_str(), e.chosen.as_str()))
                .collect(),
            TrainExamples::Unpaired(u) => u
                .iter()
                .filter(|e| e.desirable)
                .map(|e| (e.prompt.as_str(), e.completion.as_str()))
                .collect(),
        }
    }
}

pub struct RunData {
    pub tokenizer: PreferenceTokenizer,
    pub train: TrainExamples,
    /// Held-out pairs for reward accuracy (empty when none was given).
    pub eval_pairs: Vec<PairedExample>,
    /// Held-out synthetic questions whose greedy answers the programmatic judge checks.
    pub judged: Vec<SyntheticExample>,
}

fn parse_format(name: &str) -> Result<DataFormat> {
    Ok(match name {
        "paired" => DataFormat::Paired,
        "unpaired" => DataFormat::Unpaired,
        "hh" => DataFormat::Hh,
        "tldr" => DataFormat::Tldr,
        other => anyhow::bail!("data.format {other:?} is not a file format"),
    })
}

/// The run's tokenizer: its tokenizer.json text and the files next to it (for the
/// built-in one, the names it was trained with).
pub fn tokenizer_source(cfg: &TrainConfig) -> Result<(String, TokenizerFiles)> {
    let path = cfg.tokenizer_path();
    if path == BUILTIN_SYNTHETIC_TOKENIZER {
        return Ok((
            synthetic::SYNTHETIC_TOKENIZER_JSON.to_string(),
            trained_tokenizer_files(),
        ));
    }
    let json =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read tokenizer {path}"))?;
    let dir = Path::new(&path).parent().unwrap_or(Path::new("."));
    Ok((json, TokenizerFiles::read(dir)?))
}

/// The tokenizer with its special tokens resolved (files, then `[tokenizer]` overrides).
pub fn load_tokenizer(cfg: &TrainConfig, truncation: Truncation) -> Result<PreferenceTokenizer> {
    let path = cfg.tokenizer_path();
    let (json, files) = tokenizer_source(cfg)?;
    let tok: Tokenizer = json
        .parse()
        .map_err(|e| anyhow::anyhow!("cannot load tokenizer {path}: {e}"))?;
    PreferenceTokenizer::from_folder_files(tok, &files, &cfg.tokenizer.overrides(), truncation)
        .with_context(|| format!("in tokenizer {path}"))
}

/// The special tokens a run resolves, for writing them into saved folders.
pub fn resolved_special_tokens(
    cfg: &TrainConfig,
) -> Result<(String, TokenizerFiles, SpecialTokens)> {
    let (json, files) = tokenizer_source(cfg)?;
    let tok: Tokenizer = json
        .parse()
        .map_err(|e| anyhow::anyhow!("cannot load tokenizer {}: {e}", cfg.tokenizer_path()))?;
    let special = SpecialTokens::resolve(&tok, &files, &cfg.tokenizer.overrides())?;
    Ok((json, files, special))
}

impl RunData {
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let d = &cfg.data;
        let on_malformed = if d.on_malformed == "skip" {
            OnMalformed::Skip
        } else {
            OnMalformed::Error
        };
        let format = if d.format == "synthetic" {
            DataFormat::Paired
        } else {
            parse_format(&d.format)?
        };
        let truncation = Truncation {
            max_length: d.max_length,
            max_prompt_length: d.max_prompt_length,
            prompt_keep: format.default_prompt_keep(),
        };
        // First, because conversational records are rendered with its chat template.
        let tokenizer = load_tokenizer(cfg, truncation)?;
        let chat = tokenizer.chat_template();
        let (train, eval_pairs, judged) = if d.format == "synthetic" {
            let train = synthetic::generate(Split::Train, d.synthetic_train, cfg.seed);
            let judged = synthetic::generate(Split::Eval, d.synthetic_eval, cfg.seed);
            let eval_pairs = judged.iter().map(SyntheticExample::to_paired).collect();
            let pairs = train.iter().map(SyntheticExample::to_paired).collect();
            (Examples::Paired(pairs), eval_pairs, judged)
        } else {
            let path = d
                .train
                .as_ref()
                .context("data.train is required for file formats")?;
            let train = read_dataset_with(path, format, on_malformed, chat)?;
            report_skipped(&train);
            let eval_pairs = match &d.eval {
                Some(p) => {
                    let eval = read_dataset_with(p, format, on_malformed, chat)?;
                    report_skipped(&eval);
                    eval.paired()
                        .map(<[PairedExample]>::to_vec)
                        .unwrap_or_default()
                }
                None => Vec::new(),
            };
            (train.examples, eval_pairs, Vec::new())
        };
        let train = match (train, cfg.unpaired()) {
            (Examples::Paired(p), false) => TrainExamples::Paired(p),
            (Examples::Paired(p), true) => TrainExamples::Unpaired(pairs_to_unpaired(p)),
            (Examples::Unpaired(u), true) => TrainExamples::Unpaired(u),
            (Examples::Unpaired(_), false) => anyhow::bail!(
                "{} needs paired data; {} is unpaired",
                cfg.loss.name,
                d.format
            ),
        };
        anyhow::ensure!(!train.is_empty(), "the training set is empty");
        Ok(Self {
            tokenizer,
            train,
            eval_pairs,
            judged,
        })
    }
}

fn report_skipped(ds: &rpo_data::Dataset) {
    if ds.skipped_count() > 0 {
        tracing::warn!(file = %ds.path.display(), skipped = ds.skipped_count(), "malformed lines skipped (data.on_malformed = \"skip\")");
        for s in ds.skipped.iter().take(5) {
            tracing::warn!("  {}:{}: {}", ds.path.display(), s.line, s.reason);
        }
    }
}

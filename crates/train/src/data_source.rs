//! Everything a run reads: the tokenizer, the training examples in the shape the
//! objective needs, and the held-out sets for evaluation.

use anyhow::{Context, Result};
use rpo_data::synthetic::{self, Split, SyntheticExample};
use rpo_data::{
    pairs_to_unpaired, read_dataset, DataFormat, Examples, PairedExample, PreferenceTokenizer,
    SpecialTokens, Truncation, UnpairedExample,
};
use tokenizers::Tokenizer;

use crate::config::{DataFormatName, TrainConfig, BUILTIN_SYNTHETIC_TOKENIZER};

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

fn load_tokenizer(cfg: &TrainConfig, truncation: Truncation) -> Result<PreferenceTokenizer> {
    let path = &cfg.tokenizer_path();
    if path == BUILTIN_SYNTHETIC_TOKENIZER {
        let tok = synthetic::synthetic_tokenizer()?;
        let special = SpecialTokens::from_tokenizer(&tok)?;
        return PreferenceTokenizer::new(tok, special, truncation);
    }
    let tok = Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("cannot load tokenizer {path}: {e}"))?;
    let special =
        SpecialTokens::from_tokenizer(&tok).with_context(|| format!("in tokenizer {path}"))?;
    PreferenceTokenizer::new(tok, special, truncation)
}

impl RunData {
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let d = &cfg.data;
        let on_malformed = d.on_malformed;
        let (train, eval_pairs, judged, format) = if d.format == DataFormatName::Synthetic {
            let train = synthetic::generate(Split::Train, d.synthetic_train, cfg.seed);
            let judged = synthetic::generate(Split::Eval, d.synthetic_eval, cfg.seed);
            let eval_pairs = judged.iter().map(SyntheticExample::to_paired).collect();
            let pairs = train.iter().map(SyntheticExample::to_paired).collect();
            (
                Examples::Paired(pairs),
                eval_pairs,
                judged,
                DataFormat::Paired,
            )
        } else {
            let format = d
                .format
                .file_format()
                .context("internal: data.format is a file format here")?;
            let path = d
                .train
                .as_ref()
                .context("data.train is required for file formats")?;
            let train = read_dataset(path, format, on_malformed)?;
            report_skipped(&train);
            let eval_pairs = match &d.eval {
                Some(p) => {
                    let eval = read_dataset(p, format, on_malformed)?;
                    report_skipped(&eval);
                    eval.paired()
                        .map(<[PairedExample]>::to_vec)
                        .unwrap_or_default()
                }
                None => Vec::new(),
            };
            (train.examples, eval_pairs, Vec::new(), format)
        };
        let truncation = Truncation {
            max_length: d.max_length,
            max_prompt_length: d.max_prompt_length,
            prompt_keep: format.default_prompt_keep(),
        };
        let tokenizer = load_tokenizer(cfg, truncation)?;
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

/// The held-out pairs whose reward accuracy evaluations report (`precompute-ref` covers them).
pub(crate) fn reward_pairs<'a>(cfg: &TrainConfig, data: &'a RunData) -> &'a [PairedExample] {
    &data.eval_pairs[..cfg.eval.max_examples.min(data.eval_pairs.len())]
}

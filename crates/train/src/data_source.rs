//! Everything a run reads: the tokenizer, the training examples in the shape the
//! objective needs, and the held-out sets for evaluation.

use rpo_data::synthetic::{self, Split, SyntheticExample};
use rpo_data::{
    expand_paths, pairs_to_unpaired, read_dataset_with, split_held_out, trained_tokenizer_files,
    ChatTemplate, DataFormat, Examples, PairedExample, PreferenceTokenizer, ReadOptions,
    SpecialTokens, TokenizerFiles, Truncation, UnpairedExample,
};
use std::path::Path;
use tokenizers::Tokenizer;

use crate::config::{DataFiles, DataFormatName, TrainConfig, BUILTIN_SYNTHETIC_TOKENIZER};
use crate::error::{Result, TrainError};

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

/// The reader's format of a file-backed `data.format`.
fn file_format(cfg: &TrainConfig) -> Result<DataFormat> {
    cfg.data
        .format
        .file_format()
        .ok_or_else(|| TrainError::Internal("data.format is a file format here".into()))
}

/// The run's tokenizer, truncating as the data format needs.
pub fn load_tokenizer(cfg: &TrainConfig) -> Result<PreferenceTokenizer> {
    let d = &cfg.data;
    let format = d.format.file_format().unwrap_or(DataFormat::Paired);
    let truncation = Truncation {
        max_length: d.max_length,
        max_prompt_length: d.max_prompt_length,
        prompt_keep: format.default_prompt_keep(),
    };
    load_tokenizer_with(cfg, truncation)
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
    let json = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::io("cannot read tokenizer", Path::new(&path), e))?;
    let dir = Path::new(&path).parent().unwrap_or(Path::new("."));
    Ok((json, TokenizerFiles::read(dir)?))
}

/// The tokenizer with its special tokens resolved (files, then `[tokenizer]` overrides).
pub fn load_tokenizer_with(
    cfg: &TrainConfig,
    truncation: Truncation,
) -> Result<PreferenceTokenizer> {
    let path = cfg.tokenizer_path();
    let (json, files) = tokenizer_source(cfg)?;
    let tok: Tokenizer = json.parse().map_err(|error| TrainError::TokenizerLoad {
        path: path.clone(),
        error,
    })?;
    PreferenceTokenizer::from_folder_files(tok, &files, &cfg.tokenizer.overrides(), truncation)
        .map_err(|e| TrainError::InTokenizer {
            path,
            source: Box::new(e.into()),
        })
}

/// The special tokens a run resolves, for writing them into saved folders.
pub fn resolved_special_tokens(
    cfg: &TrainConfig,
) -> Result<(String, TokenizerFiles, SpecialTokens)> {
    let (json, files) = tokenizer_source(cfg)?;
    let tok: Tokenizer = json.parse().map_err(|error| TrainError::TokenizerLoad {
        path: cfg.tokenizer_path(),
        error,
    })?;
    let special = SpecialTokens::resolve(&tok, &files, &cfg.tokenizer.overrides())?;
    Ok((json, files, special))
}

fn read_options<'a>(cfg: &'a TrainConfig, chat: Option<&'a ChatTemplate>) -> ReadOptions<'a> {
    ReadOptions {
        on_malformed: cfg.data.on_malformed,
        columns: &cfg.data.columns,
        chat,
    }
}

/// Every file of `files` (globs expanded), one after the other, as text examples.
fn read_files(files: &DataFiles, format: DataFormat, options: &ReadOptions) -> Result<Examples> {
    let paths = expand_paths(&files.patterns())?;
    let mut all: Option<Examples> = None;
    for path in &paths {
        let dataset = read_dataset_with(path, format, options)?;
        report_skipped(&dataset);
        match &mut all {
            None => all = Some(dataset.examples),
            Some(all) => all
                .append(dataset.examples)
                .map_err(|e| TrainError::AddingFile {
                    path: path.clone(),
                    source: Box::new(e.into()),
                })?,
        }
    }
    let examples = all.ok_or_else(|| TrainError::UnusableData("no data files given".into()))?;
    as_text(examples)
}

/// Conversational records (message lists) were rendered through the tokenizer's chat
/// template while they were read; those still here had no template to render them, or
/// left the prompt implicit.
fn as_text(examples: Examples) -> Result<Examples> {
    match examples {
        Examples::Conversational(_) => bail!(
            UnusableData,
            "the data is conversational (message lists), which needs the tokenizer's chat template to render it: \
             the tokenizer has none (give one in tokenizer_config.json's chat_template or chat_template.jinja), \
             or the records leave the prompt implicit (only chosen/rejected), which is not supported: give a prompt field"
        ),
        text => Ok(text),
    }
}

fn paired_only(examples: Examples) -> Vec<PairedExample> {
    match examples {
        Examples::Paired(p) => p,
        _ => Vec::new(),
    }
}

/// The held-out pairs: the eval files, else `data.eval_fraction` of the training pairs.
/// Returns what is left for training alongside them.
fn split_eval(
    cfg: &TrainConfig,
    train: Examples,
    format: DataFormat,
    options: &ReadOptions,
) -> Result<(Examples, Vec<PairedExample>)> {
    let d = &cfg.data;
    if let Some(eval) = &d.eval {
        return Ok((train, paired_only(read_files(eval, format, options)?)));
    }
    if d.eval_fraction == 0.0 {
        return Ok((train, Vec::new()));
    }
    let Examples::Paired(pairs) = train else {
        bail_config!(
            "data.eval_fraction",
            "data.eval_fraction holds out pairs, but the training data is unpaired"
        );
    };
    let total = pairs.len();
    let (train, eval) = split_held_out(pairs, d.eval_fraction, cfg.seed)?;
    tracing::info!(
        held_out = eval.len(),
        of = total,
        fraction = d.eval_fraction,
        seed = cfg.seed,
        "held out pairs for evaluation (data.eval_fraction)"
    );
    Ok((Examples::Paired(train), eval))
}

impl RunData {
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let d = &cfg.data;
        // First, because conversational records are rendered with its chat template.
        let tokenizer = load_tokenizer(cfg)?;
        let chat = tokenizer.chat_template();
        let (train, eval_pairs, judged) = if d.format == DataFormatName::Synthetic {
            let train = synthetic::generate(Split::Train, d.synthetic_train, cfg.seed);
            let judged = synthetic::generate(Split::Eval, d.synthetic_eval, cfg.seed);
            let eval_pairs = judged.iter().map(SyntheticExample::to_paired).collect();
            let pairs = train.iter().map(SyntheticExample::to_paired).collect();
            (Examples::Paired(pairs), eval_pairs, judged)
        } else {
            let format = file_format(cfg)?;
            let options = read_options(cfg, chat);
            let files = d.train.as_ref().ok_or_else(|| {
                TrainError::config("data.train", "data.train is required for file formats")
            })?;
            let train = read_files(files, format, &options)?;
            let (train, eval_pairs) = split_eval(cfg, train, format, &options)?;
            (train, eval_pairs, Vec::new())
        };
        let train = match (train, cfg.unpaired()) {
            (Examples::Paired(p), false) => TrainExamples::Paired(p),
            (Examples::Paired(p), true) => TrainExamples::Unpaired(pairs_to_unpaired(p)),
            (Examples::Unpaired(u), true) => TrainExamples::Unpaired(u),
            (Examples::Unpaired(_), false) => bail!(
                UnusableData,
                "{} needs paired data; {} is unpaired",
                cfg.loss.name,
                d.format
            ),
            (Examples::Conversational(_), _) => unreachable!("rendered by as_text"),
        };
        ensure!(!train.is_empty(), UnusableData, "the training set is empty");
        Ok(Self {
            tokenizer,
            train,
            eval_pairs,
            judged,
        })
    }

    /// Only what evaluation needs (tokenizer, held-out pairs, judged questions): the
    /// training files are read only when the held-out pairs are split off them.
    pub fn load_held_out(cfg: &TrainConfig) -> Result<HeldOut> {
        let d = &cfg.data;
        let tokenizer = load_tokenizer(cfg)?;
        if d.format == DataFormatName::Synthetic {
            let judged = synthetic::generate(Split::Eval, d.synthetic_eval, cfg.seed);
            let pairs = judged.iter().map(SyntheticExample::to_paired).collect();
            return Ok(HeldOut {
                tokenizer,
                pairs,
                judged,
            });
        }
        let format = file_format(cfg)?;
        let options = read_options(cfg, tokenizer.chat_template());
        let pairs = match (&d.eval, &d.train) {
            (Some(eval), _) => paired_only(read_files(eval, format, &options)?),
            (None, Some(train)) if d.eval_fraction > 0.0 => {
                split_eval(cfg, read_files(train, format, &options)?, format, &options)?.1
            }
            _ => Vec::new(),
        };
        Ok(HeldOut {
            tokenizer,
            pairs,
            judged: Vec::new(),
        })
    }
}

/// What [`RunData::load_held_out`] gives.
pub struct HeldOut {
    pub tokenizer: PreferenceTokenizer,
    pub pairs: Vec<PairedExample>,
    pub judged: Vec<SyntheticExample>,
}

fn report_skipped(ds: &rpo_data::Dataset) {
    if ds.skipped_count() > 0 {
        tracing::warn!(file = %ds.path.display(), skipped = ds.skipped_count(), "malformed records skipped (data.on_malformed = \"skip\")");
        let kind = rpo_data::formats::files::FileKind::of(&ds.path);
        for s in ds.skipped.iter().take(5) {
            let at = match kind {
                Ok(kind) => kind.locate(&ds.path, s.line),
                Err(_) => format!("{}:{}", ds.path.display(), s.line),
            };
            tracing::warn!("  {at}: {}", s.reason);
        }
    }
}

/// The held-out pairs whose reward accuracy evaluations report (`precompute-ref` covers them).
pub(crate) fn reward_pairs<'a>(cfg: &TrainConfig, data: &'a RunData) -> &'a [PairedExample] {
    &data.eval_pairs[..cfg.eval.max_examples.min(data.eval_pairs.len())]
}

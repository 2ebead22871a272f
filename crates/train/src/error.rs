//! Why a run could not be configured, started, resumed or finished. Every message is the
//! one the `anyhow` errors gave before: where a context named a file and wrapped the
//! error that stopped it, the variant's message is the context and the error is its
//! `source`, so `{:#}` (each error of the chain, joined by ": ") prints what it printed.
//! [`chain`] writes that text where the crate reports an error itself.
//!
//! The lower crates' errors are carried whole (`Model`, `Embed`, `Comm`, `Optim`,
//! `Loss`, `Contrast`, `Data`, `Checkpoint`, `ReferenceCache`, `Zero`, `Decode`), so a caller can match on
//! them through a `TrainError`.

use std::path::PathBuf;

use rpo_comm::CommError;
use rpo_contrast::ContrastError;
use rpo_data::error::DataError;
use rpo_embed::EmbedError;
use rpo_losses::LossError;
use rpo_model::safetensors_io::SafetensorsError;
use rpo_model::{DecodeError, ModelError};
use rpo_optim::OptimError;
use rpo_storage::framed::CacheError;
use rpo_zero::checkpoint::CheckpointError;
use rpo_zero::{ZeroError, ZeroStage};
use tch::TchError;

use crate::preemption::Preempted;

/// The ways a training run (or `embed`, `precompute-ref`, `eval`, `plan`) can fail.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    // --- The config -------------------------------------------------------------------
    /// A config file that cannot be read.
    #[error("cannot read config {path}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anything wrong with a config file, under the file's name (or "the embedded
    /// default config"); `source` says what.
    #[error("in {origin}")]
    InConfig {
        origin: String,
        source: Box<TrainError>,
    },
    /// A config (with its `--set` overrides applied) that is not TOML.
    #[error("invalid TOML")]
    Toml { source: toml::de::Error },
    /// A config that does not parse: an unknown key, a value of the wrong type, or an
    /// unknown choice (the message lists the allowed values). `key` is the dotted path of
    /// the value at fault, `None` for the top level.
    #[error("{}", match key { Some(k) => format!("{k}: {error}"), None => error.to_string() })]
    ConfigParse {
        key: Option<String>,
        error: toml::de::Error,
    },
    /// A `--set` that is not `key=value`, or that sets a key under a value that is not a
    /// table.
    #[error("{0}")]
    Override(String),
    /// A config value, or a combination of values, that cannot run (on this many ranks);
    /// `key` is the (first) key the message names.
    #[error("{reason}")]
    InvalidConfig { key: &'static str, reason: String },
    /// A config value that its parser refuses (`zero.memory_budget`): `source` says why.
    #[error("{key}")]
    ConfigValue {
        key: &'static str,
        source: Box<TrainError>,
    },
    /// A config that cannot be written as TOML (not expected for the types written here).
    #[error(transparent)]
    TomlWrite(#[from] toml::ser::Error),

    // --- This machine -----------------------------------------------------------------
    /// `model.device` names a CUDA device this machine does not have.
    #[error("model.device asks for cuda:{index}, but this machine has {count} CUDA device(s) (libtorch CUDA available: {cuda})")]
    NoCudaDevice {
        index: usize,
        count: i64,
        cuda: bool,
    },
    /// `zero.stage` needs more memory per rank than `zero.memory_budget`; `fits`: the
    /// lowest stage that would fit, if any. The message holds the plan's table.
    #[error("{message}")]
    OverBudget {
        stage: ZeroStage,
        fits: Option<u8>,
        message: String,
    },

    // --- The output folder ------------------------------------------------------------
    /// A fresh run where an earlier run left checkpoints or metrics (`found`).
    #[error(
        "{dir} already holds a run ({}): continue it with `--resume latest`, or start over with \
         `--overwrite` (which deletes them), or choose another out_dir",
        paths(found)
    )]
    OutDirTaken { dir: PathBuf, found: Vec<PathBuf> },
    /// Another live run holds the folder's lock file; `holder` is what it wrote there.
    #[error("{dir} is in use by another run ({holder}; lock file {lock}): wait for it to end, or choose another out_dir")]
    OutDirInUse {
        dir: PathBuf,
        holder: String,
        lock: PathBuf,
    },
    /// Ranks (`blind`: "rank R on HOST") that cannot see the file rank 0 (on `host`) wrote
    /// into the checkpoint folder `dir`: not one folder for all ranks.
    #[error(
        "the checkpoint folder {dir} is not one folder for all ranks: {} cannot see the file rank 0 (on {host}) wrote there. \
         Every rank writes its shard of each checkpoint into it, so it must be on a file system all nodes share: \
         set `[checkpoint] dir` (e.g. --set checkpoint.dir=/shared/path) or put out_dir on a shared path",
        blind.join(", ")
    )]
    NotShared {
        dir: PathBuf,
        blind: Vec<String>,
        host: String,
    },

    // --- Checkpoints and resuming -----------------------------------------------------
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A folder of checkpoints none of which is intact; `source`: why the newest is not.
    #[error("no intact checkpoint in {dir}")]
    NoIntactCheckpoint {
        dir: PathBuf,
        source: CheckpointError,
    },
    /// The newest checkpoint of a folder is damaged (`error`), but `intact` (of `step`)
    /// is not: resuming from it needs `--fallback`.
    #[error(
        "{}\nThe newest intact checkpoint is {intact} (step {step}): resume from it with \
         `--resume latest --fallback` (or `--resume {intact}`)",
        chain(error)
    )]
    DamagedCheckpoint {
        error: CheckpointError,
        intact: PathBuf,
        step: usize,
    },
    /// A checkpoint whose manifest holds no trainer state this build reads.
    #[error("{dir} holds no trainer state")]
    NoTrainerState {
        dir: PathBuf,
        source: serde_json::Error,
    },
    /// A checkpoint this config would not continue as it was written: another global
    /// micro-batch, phase, warm-up, objective or optimizer (the message names both sides
    /// and how to resume).
    #[error("{0}")]
    ResumeMismatch(String),
    /// A checkpoint of another model than this run's (both described); `source` is the
    /// difference found.
    #[error("the checkpoint's model ({theirs}) is not this run's ({ours})")]
    ModelMismatch {
        theirs: String,
        ours: String,
        source: Box<TrainError>,
    },
    /// The frozen reference folder a checkpoint names cannot be read.
    #[error("checkpoint {checkpoint} uses the reference {folder}")]
    CheckpointReference {
        checkpoint: PathBuf,
        folder: PathBuf,
        source: Box<TrainError>,
    },
    /// The frozen reference folder a checkpoint names is not the one it was written with.
    #[error("the reference {folder} is corrupt: {bytes} bytes with checksum {crc32:08x}, but checkpoint {checkpoint} says {expected_bytes} bytes with {expected_crc32:08x}")]
    CorruptReference {
        folder: PathBuf,
        checkpoint: PathBuf,
        bytes: u64,
        crc32: u32,
        expected_bytes: u64,
        expected_crc32: u32,
    },
    /// The run stopped at a signal after writing its checkpoint: not a failure (see
    /// [`Preempted`]).
    #[error(transparent)]
    Preempted(#[from] Preempted),
    /// A signal asked the run to stop, but the checkpoint it was to leave failed.
    #[error("stopping at a signal: the checkpoint failed")]
    PreemptedCheckpoint { source: Box<TrainError> },

    // --- Cached reference log-probs and embeddings ------------------------------------
    /// A reference cache that cannot be opened, is corrupt or stale (rpo-storage's kinds).
    #[error(transparent)]
    ReferenceCache(#[from] CacheError),
    /// `reference.mode = "precomputed"` without a cache at the path.
    #[error(
        "reference.mode = \"precomputed\" but there is no reference cache at {path}: write it first with \
         `rpo-shard precompute-ref` and this run's --config and --set options (under the same mpirun)"
    )]
    MissingReferenceCache { path: PathBuf },
    /// A reference cache without values for `missing` of a batch's `total` sequences.
    #[error(
        "the reference cache {path} has no log-prob for {missing} of this batch's {total} sequences: the cache does not \
         cover this run; rerun rpo-shard precompute-ref with this run's config"
    )]
    CacheMisses {
        path: PathBuf,
        missing: usize,
        total: usize,
    },
    /// A rank's part of an unfinished `precompute-ref` that is not its part for this
    /// reference.
    #[error("{path} is not rank {rank}'s part for this reference")]
    ForeignPart { path: PathBuf, rank: usize },
    /// `embedding.cache` names a file that is not there.
    #[error(
        "embedding.cache = {path} does not exist: create it with {EMBED_COMMAND}, or remove \
         embedding.cache to embed on the fly"
    )]
    MissingEmbeddingCache { path: PathBuf },
    /// An embedding cache that cannot be opened or is corrupt (`error`).
    #[error("{error}; regenerate it with {EMBED_COMMAND}")]
    EmbeddingCache { error: CacheError },
    /// An embedding cache made from another model, text mode or texts (`differences`,
    /// one phrase each).
    #[error(
        "embedding cache {path} is stale: it has {}; regenerate it with {EMBED_COMMAND}",
        differences.join("; it has ")
    )]
    StaleEmbeddingCache {
        path: PathBuf,
        differences: Vec<String>,
    },

    // --- Data and tokenizer -----------------------------------------------------------
    /// A data file that cannot be read, or a malformed record (file and line).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Training data this run cannot use: no files, an empty training set, unpaired data
    /// for a paired loss, conversational records without a chat template.
    #[error("{0}")]
    UnusableData(String),
    /// Training data that does not fill one global micro-batch of the objective's shape
    /// (too few examples, or too few of one class); the sampler's error says how many.
    #[error(transparent)]
    TooFewExamples(Box<TrainError>),
    /// A `tokenizer.json` the tokenizers library cannot load.
    #[error("cannot load tokenizer {path}: {error}")]
    TokenizerLoad {
        path: String,
        error: tokenizers::Error,
    },
    /// A tokenizer whose files or special tokens do not fit together (`source`).
    #[error("in tokenizer {path}")]
    InTokenizer {
        path: String,
        source: Box<TrainError>,
    },
    /// A data file whose examples cannot join those of the files before it.
    #[error("adding {path}")]
    AddingFile {
        path: PathBuf,
        source: Box<TrainError>,
    },
    /// A tokenizer with more tokens than the model's embedding has rows.
    #[error("the tokenizer has {tokenizer} tokens but the model's vocab_size is {model}: they do not belong together")]
    VocabMismatch { tokenizer: i64, model: i64 },
    /// Sequences that cannot be laid out or scored: a row without a response token,
    /// one masked to its last position, chosen and rejected counts that differ.
    #[error("{0}")]
    Sequences(String),

    // --- Models -----------------------------------------------------------------------
    /// The sentence encoder `what` names ("embedding.path DIR", "the default sentence
    /// encoder DIR") cannot be loaded or hashed.
    #[error("{what}")]
    EmbeddingModel { what: String, source: EmbedError },
    /// `reference.path` cannot be loaded.
    #[error("loading reference.path {path}")]
    LoadingReference {
        path: PathBuf,
        source: Box<TrainError>,
    },
    /// The run's tokenizer (`tokenizer`) cannot be written next to a model in `dir`.
    #[error("writing the tokenizer {tokenizer} into {dir}")]
    WriteTokenizer {
        tokenizer: String,
        dir: PathBuf,
        source: Box<TrainError>,
    },

    // --- Training ---------------------------------------------------------------------
    /// An optimizer step that failed (a non-finite gradient norm, say) at global step
    /// `step` of `phase`: the run stops before the update corrupts the weights.
    #[error("{phase} step {step} (loss {loss}): stopping before the update corrupts the weights")]
    StepFailed {
        phase: String,
        step: usize,
        loss: f64,
        source: Box<TrainError>,
    },
    /// The run trained, but some of its final checkpoint, model and summary could not be
    /// written (`problems`, one each; the rest was).
    #[error(
        "training finished, but not everything could be written (the rest was):\n  {}",
        problems.join("\n  ")
    )]
    Unwritten { problems: Vec<String> },

    // --- Generic ----------------------------------------------------------------------
    /// I/O on `path` that failed; `action` says what was tried ("cannot read",
    /// "cannot create", "--overwrite: cannot remove").
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    /// An I/O error without a path of its own: rpo-storage's atomic writes (which name
    /// it), or a plain `std::fs` call.
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    /// JSON that does not parse or cannot be written (gathered answers, manifests).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An argument out of range or a call the value does not support (keys and values of
    /// different counts, a reference without weights asked to save them).
    #[error("{0}")]
    Invalid(String),
    /// A broken invariant of this crate (a bug, not a bad input).
    #[error("internal: {0}")]
    Internal(String),

    // --- Lower crates -----------------------------------------------------------------
    /// Boxed: the largest of the lower crates' errors.
    #[error(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A collective that failed.
    #[error(transparent)]
    Comm(#[from] CommError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Loss(#[from] LossError),
    #[error(transparent)]
    Contrast(#[from] ContrastError),
    #[error(transparent)]
    Tch(#[from] TchError),
    /// The sharded model: a collective, a checkpoint or a layout that failed.
    #[error(transparent)]
    Zero(#[from] ZeroError),
    /// Generation (evaluation's greedy answers).
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// How to make or remake an embedding cache, for every error about one.
pub(crate) const EMBED_COMMAND: &str =
    "`rpo-shard embed --config <this run's config>` with the same \
                                        --set overrides as `train` (it writes to embedding.cache)";

impl From<ModelError> for TrainError {
    fn from(e: ModelError) -> Self {
        TrainError::Model(Box::new(e))
    }
}

impl From<SafetensorsError> for TrainError {
    fn from(e: SafetensorsError) -> Self {
        ModelError::from(e).into()
    }
}

impl TrainError {
    /// The [`Preempted`] stop this error is, if it is one: a caller tells it from a
    /// failure (exit status [`crate::preemption::EXIT_PREEMPTED`]).
    pub fn preempted(&self) -> Option<&Preempted> {
        match self {
            TrainError::Preempted(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        TrainError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A config value or combination that cannot run, naming `key`.
    pub(crate) fn config(key: &'static str, reason: impl Into<String>) -> Self {
        TrainError::InvalidConfig {
            key,
            reason: reason.into(),
        }
    }

    /// The sampler's refusal of data that does not fill a batch.
    pub(crate) fn too_few(e: impl Into<TrainError>) -> Self {
        TrainError::TooFewExamples(Box::new(e.into()))
    }
}

/// `error` and every cause under it, joined by ": ": what anyhow's `{:#}` prints, for
/// messages this crate writes itself (the summary's failures, logs) and for tests.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

fn paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `return Err(TrainError::InvalidConfig { key, reason: format!(..) })`.
macro_rules! bail_config {
    ($key:expr, $($fmt:tt)+) => {
        return Err($crate::error::TrainError::config($key, format!($($fmt)+)))
    };
}

/// `Err(TrainError::$variant(format!(..)))` unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::TrainError::$variant(format!($($fmt)+)));
        }
    };
}

/// `return Err(TrainError::$variant(format!(..)))`.
macro_rules! bail {
    ($variant:ident, $($fmt:tt)+) => {
        return Err($crate::error::TrainError::$variant(format!($($fmt)+)))
    };
}

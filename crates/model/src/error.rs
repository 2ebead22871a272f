//! Why a model config, a Hugging Face folder or a checkpoint could not be read or
//! written. Safetensors files have their own [`SafetensorsError`], carried whole by
//! [`ModelError::Safetensors`]. Decoding ([`crate::generate`]) fails with a
//! [`DecodeError`]: bad prompts or sampling settings, or the [`crate::Decoder`]'s own
//! error (rpo-zero's sharded one fails in collectives, which this crate cannot name).

use std::path::{Path, PathBuf};

use tch::{Kind, TchError};

use crate::names::{
    EMBED_TOKENS, PRESET_NAMES, SUPPORTED_MODEL_TYPES, WEIGHTS_FILE, WEIGHTS_INDEX_FILE,
};

/// The ways reading or writing a model can fail. Every message is the one the
/// `anyhow` contexts gave before; the cause (an `io::Error`, a JSON error) is its
/// `source`, so `{:#}` prints both.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file or folder that is not there; `action` says what was tried on it
    /// ("cannot read model config", "cannot open").
    #[error("{action} {}", path.display())]
    MissingFile {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Any other I/O failure on `path`.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON file that does not parse: `what` is "model config " for `config.json`,
    /// "" for the weight index.
    #[error("invalid {what}{}", path.display())]
    Json {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A `config.json` that parses but that this crate cannot compute as transformers
    /// does; `source` is the reason ([`UnsupportedArchitecture`](Self::UnsupportedArchitecture),
    /// [`ConfigField`](Self::ConfigField)). See [`ModelError::reason`].
    #[error("invalid model config {}", path.display())]
    Config {
        path: PathBuf,
        source: Box<ModelError>,
    },
    #[error(
        "unsupported model_type {model_type:?} (supported: {})",
        SUPPORTED_MODEL_TYPES.join(", ")
    )]
    UnsupportedArchitecture { model_type: String },
    /// A config field with a value this crate does not support; `field` names it and
    /// `reason` says why.
    #[error("{reason}")]
    ConfigField { field: &'static str, reason: String },
    #[error("unknown model preset {name:?} (valid presets: {})", PRESET_NAMES.join(", "))]
    UnknownPreset { name: String },
    /// A command-line weight dtype other than fp32, bf16 or fp16.
    #[error("dtype {name:?}: expected fp32, bf16 or fp16")]
    UnknownDtype { name: String },
    #[error("{kind:?} is not a parameter dtype Hugging Face checkpoints use")]
    UnsupportedDtype { kind: Kind },
    /// A folder with neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error("{} has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}", dir.display())]
    NoWeights { dir: PathBuf },
    #[error("no tensor named {EMBED_TOKENS}: not a Llama model")]
    NotLlama,
    /// `place`: the file, or the shards of an index, that were searched.
    #[error("tensor {name} is missing from {place}")]
    MissingTensor { name: String, place: String },
    /// A checkpoint tensor whose shape is not the one `config.json` implies.
    #[error(
        "tensor {name} in {} has shape {got:?}, but {} needs {expected:?}",
        file.display(),
        config.display()
    )]
    Shape {
        name: String,
        file: PathBuf,
        config: PathBuf,
        got: Vec<i64>,
        expected: Vec<i64>,
    },
    /// A tensor handed to [`crate::HfWriter`] in another shape than announced.
    #[error("tensor {name} has shape {got:?}, the folder expects {expected:?}")]
    WriteShape {
        name: String,
        got: Vec<i64>,
        expected: Vec<i64>,
    },
    /// A checkpoint tensor the configured model does not have.
    #[error(
        "{} holds tensor {name}, which the model described by {} does not have",
        file.display(),
        config.display()
    )]
    UnexpectedTensor {
        name: String,
        file: PathBuf,
        config: PathBuf,
    },
    /// A tensor whose stored dtype libtorch lacks.
    #[error("tensor {name} of {}", file.display())]
    TensorKind {
        name: String,
        file: PathBuf,
        source: TchError,
    },
    #[error("cannot load {name} from {}", file.display())]
    Load {
        name: String,
        file: PathBuf,
        source: TchError,
    },
    /// A tensor that cannot be written in the requested dtype.
    #[error("tensor {name}")]
    WriteTensor { name: String, source: TchError },
    #[error("cannot write {}", path.display())]
    Serialize {
        path: PathBuf,
        source: safetensors::tensor::SafeTensorError,
    },
    /// Tensors announced to [`crate::HfWriter`] but never written.
    #[error("tensors never written: {names:?}")]
    Unwritten { names: Vec<String> },
    /// A folder whose files contradict each other (a tensor in two shards, an index
    /// that maps a tensor to a file without it), or tensors given or written twice.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    /// An I/O error that already names its path (rpo-storage's atomic files).
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    #[error(transparent)]
    Tch(#[from] TchError),
    /// JSON that cannot be serialised (not expected for the types written here).
    #[error(transparent)]
    ToJson(#[from] serde_json::Error),
}

/// Why a safetensors file, or a tensor in it, could not be read: the file is missing or
/// not a safetensors file, or the tensor is not in it.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsError {
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot memory-map {}", path.display())]
    Map {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The header does not describe the file (`detail`: the `safetensors` crate's error).
    #[error("{} is not a usable safetensors file: {explanation} ({detail})", path.display())]
    Invalid {
        path: PathBuf,
        explanation: &'static str,
        detail: String,
    },
    #[error("tensor {name} is missing from {}", path.display())]
    MissingTensor { name: String, path: PathBuf },
    #[error("elements [{start}, {start} + {len}) are outside tensor {name} ({numel} elements) of {}", path.display())]
    OutOfRange {
        name: String,
        path: PathBuf,
        start: i64,
        len: i64,
        numel: i64,
    },
    /// The bytes could not become a tensor (a dtype libtorch lacks, say).
    #[error("cannot read tensor {name} of {}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        source: TchError,
    },
    #[error("tensor {name} of {}", path.display())]
    Shape {
        name: String,
        path: PathBuf,
        source: TchError,
    },
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// Why [`crate::generate`] could not decode: the prompts or settings it was given, or
/// the [`crate::Decoder`] it decodes through. The messages are the `anyhow` ones they
/// replace.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// `ids` and `prompts` of different lengths.
    #[error("one id per prompt")]
    IdCount { ids: usize, prompts: usize },
    /// Sampling settings outside `temperature > 0`, `0 < top_p ≤ 1`.
    #[error("sampling needs temperature > 0 and 0 < top_p ≤ 1 (temperature 0 is greedy)")]
    Sampling { temperature: f64, top_p: f64 },
    /// Prompt `prompt` (in the caller's order) has no tokens.
    #[error("prompt {prompt} is empty: greedy generation needs at least one token")]
    EmptyPrompt { prompt: usize },
    /// Prompt `prompt` holds `token`, not an id of the model's vocabulary.
    #[error("prompt {prompt} holds token id {token}, outside the vocabulary 0..{vocab}")]
    TokenOutOfVocab {
        prompt: usize,
        token: i64,
        vocab: i64,
    },
    /// The decoder's own failure (a collective of a sharded model), whole: its message
    /// and causes are this error's.
    #[error(transparent)]
    Decoder(Box<dyn std::error::Error + Send + Sync>),
}

impl DecodeError {
    /// A [`crate::Decoder`] implementation's error.
    pub fn decoder(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DecodeError::Decoder(error.into())
    }
}

impl ModelError {
    /// The reason behind [`Config`](Self::Config) (what in `config.json` is not
    /// supported); any other error itself.
    pub fn reason(&self) -> &ModelError {
        match self {
            ModelError::Config { source, .. } => source.reason(),
            other => other,
        }
    }

    /// `MissingFile` if `source` says the path does not exist, `Io` otherwise.
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        let path = path.to_path_buf();
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                action,
                path,
                source,
            }
        } else {
            ModelError::Io {
                action,
                path,
                source,
            }
        }
    }

    /// A config field that is not supported, with the message saying why.
    pub(crate) fn field(field: &'static str, reason: String) -> Self {
        ModelError::ConfigField { field, reason }
    }
}

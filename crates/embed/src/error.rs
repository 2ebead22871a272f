//! Why a sentence encoder could not be found, read or run, or an embedding cache
//! written or read. Every message is the one the `anyhow` errors gave before; where a
//! context named a file and wrapped the error that stopped it (an `io::Error`, a JSON
//! error), the message holds both, as `{:#}` printed them, so `to_string()` and `{:#}`
//! say the same. Opening a cache file has its own kind, rpo-storage's
//! [`CacheError`](rpo_storage::framed::CacheError), which [`crate::EmbeddingCache::open`]
//! returns.

use std::path::PathBuf;

use tch::TchError;

/// The ways the sentence encoder or the embedding cache can fail.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model folder that does not exist, is not a sentence-transformers folder, is
    /// incomplete or describes an unsupported pipeline, or that [`crate::locate`] did not
    /// find; the message says how to get all-MiniLM-L6-v2.
    #[error("{0}")]
    Folder(String),
    /// A BERT or Pooling config that parses but describes what this crate does not
    /// compute (the message names the file where one was read).
    #[error("{0}")]
    Config(String),
    /// A `model.safetensors` that is not one, or whose tensors do not fit the encoder.
    #[error("{0}")]
    Weights(String),
    /// `tokenizer.json` that cannot be loaded or set up, or texts it cannot tokenize.
    #[error("{0}")]
    Tokenizer(String),
    /// Rows or texts that do not fit an embedding cache: duplicate texts, rows of the
    /// wrong shape or count, a text or row the cache does not hold.
    #[error("{0}")]
    Cache(String),
    /// An argument out of range (a batch size of 0, an unknown cache dtype).
    #[error("{0}")]
    Invalid(String),
    /// I/O on `path` that failed; `action` says what was tried ("cannot read",
    /// "cannot write the embedding cache").
    #[error("{action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A JSON file that does not parse; `what` is "BERT config ", "pooling config " or "".
    #[error("invalid {what}{}: {error}", path.display())]
    Json {
        what: &'static str,
        path: PathBuf,
        error: serde_json::Error,
    },
    /// An I/O error that already names its path (rpo-storage's atomic files).
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    #[error(transparent)]
    Tch(#[from] TchError),
}

pub type Result<T> = std::result::Result<T, EmbedError>;

impl EmbedError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, error: std::io::Error) -> Self {
        EmbedError::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn json(
        what: &'static str,
        path: &std::path::Path,
        error: serde_json::Error,
    ) -> Self {
        EmbedError::Json {
            what,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// `Err(EmbedError::$variant(format!(..)))` unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::EmbedError::$variant(format!($($fmt)+)));
        }
    };
}

/// `return Err(EmbedError::$variant(format!(..)))`.
macro_rules! bail {
    ($variant:ident, $($fmt:tt)+) => {
        return Err($crate::error::EmbedError::$variant(format!($($fmt)+)))
    };
}

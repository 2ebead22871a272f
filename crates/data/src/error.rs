//! Why data could not be read, tokenized or batched: the caller acts on the kind. A
//! malformed record is the data's fault and names its file and line; an unreadable file
//! is the system's; a name or pattern that finds no file is the command line's; a
//! tokenizer folder or chat template that does not load or resolve is the model's
//! folder's (or `[tokenizer]`'s); an argument out of range is the caller's.
//!
//! Every message is the one the `anyhow` errors gave before: where a context named a file
//! and wrapped the error that stopped it, the variant's message is the context and the
//! error is its `source`, so `{:#}` through anyhow prints the same chain.
//!
//! [`FileKind`] lives here too: [`DataError::Malformed`] locates records by it, and the
//! readers ([`crate::formats`]) import this module, never the other way round.

use std::path::{Path, PathBuf};

/// The ways reading, tokenizing or batching data can fail.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A dataset file that cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A dataset file that failed while being read.
    #[error("reading {} after line {line}", path.display())]
    Read {
        path: PathBuf,
        line: usize,
        source: std::io::Error,
    },
    /// Reading the start of a `.json` file (array or JSON Lines?).
    #[error("reading {}", path.display())]
    ReadStart {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON array file that is not UTF-8.
    #[error("{}: not valid UTF-8", path.display())]
    NotUtf8 {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `.json` file that is neither a JSON array nor JSON Lines.
    #[error("{}: invalid JSON array", path.display())]
    JsonArray {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// `what`: "not a readable Parquet file", "cannot read Parquet rows" or "row N".
    #[error("{}: {what}", path.display())]
    Parquet {
        path: PathBuf,
        what: String,
        source: parquet::errors::ParquetError,
    },
    /// A file name whose extension is no dataset file type.
    #[error("{}: unknown dataset file type (expected .jsonl, .jsonl.gz, .json or .parquet)", path.display())]
    UnknownKind { path: PathBuf },
    #[error("invalid glob pattern {pattern:?}")]
    Pattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("reading the matches of {pattern:?}")]
    Matches {
        pattern: String,
        source: glob::GlobError,
    },
    #[error("{pattern:?} matches no file")]
    NoMatch { pattern: String },
    /// A record that is not valid UTF-8, JSON or a record of the format: `line` is the
    /// 1-based line of a JSON Lines file, or the row of a JSON array or Parquet file.
    #[error("{}: {reason}", kind.locate(path, *line))]
    Malformed {
        path: PathBuf,
        kind: FileKind,
        line: usize,
        reason: String,
    },
    /// Files whose records are of different kinds (`first` and `second`: "paired text",
    /// "unpaired text", "conversational").
    #[error("cannot mix {first} and {second} records")]
    MixedRecords {
        first: &'static str,
        second: &'static str,
    },
    /// Conversational records where text is needed, without a chat template.
    #[error("{}: conversational records must be rendered with a chat template first", path.display())]
    NeedsChatTemplate { path: PathBuf },
    /// A prompt that encodes to no token at all (`prompt`: its start).
    #[error("prompt {prompt:?} has no tokens")]
    EmptyPrompt { prompt: String },
    /// A prompt the synthetic suite's judge does not know.
    #[error("not a synthetic-suite prompt: {prompt:?}")]
    NotSynthetic { prompt: String },
    /// I/O on a named file or folder other than a dataset's records; `action` says what
    /// was tried ("cannot read", "cannot write", "cannot create", "writing").
    #[error("{action} {}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A tokenizer folder's JSON file (`tokenizer_config.json`, …) that does not parse.
    #[error("{} is not valid JSON", path.display())]
    TokenizerJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A tokenizer folder's JSON file that parses but holds something else than a
    /// JSON object.
    #[error("{} must hold a JSON object", path.display())]
    TokenizerNotObject { path: PathBuf },
    /// A key of a tokenizer folder's JSON file with a value of the wrong type
    /// (`reason` names the key).
    #[error("{}: {reason}", path.display())]
    TokenizerField { path: PathBuf, reason: String },
    /// A `tokenizer.json` that is missing or does not load (`reason`: the tokenizers
    /// library's message).
    #[error("cannot load tokenizer {}: {reason}", path.display())]
    LoadTokenizer { path: PathBuf, reason: String },
    /// What went wrong in setting up the tokenizer of the folder at `path`.
    #[error("in tokenizer {}", path.display())]
    InTokenizer {
        path: PathBuf,
        source: Box<DataError>,
    },
    /// The tokenizers library refused a tokenizer or an operation on it (loading,
    /// training, encoding, decoding, a post-processor, serialising), or a tokenizer lacks
    /// a token it needs; the message says which.
    #[error("{0}")]
    Tokenizer(String),
    /// Special tokens that cannot be resolved: a named token the vocabulary lacks, no
    /// EOS, BOS asked for but none; the message says which `[tokenizer]` key to set.
    #[error("{0}")]
    SpecialTokens(String),
    /// A chat template that does not compile (minijinja's message, with its location).
    #[error("the chat template does not compile: {0}")]
    TemplateSyntax(String),
    /// A chat template that fails on some messages (`raise_exception`, an undefined
    /// value, …).
    #[error("rendering the chat template failed: {0}")]
    TemplateRender(String),
    /// An argument or setting out of range: batch sizes, truncation limits, a rank,
    /// `data.eval_fraction`, a vocabulary size, a data format name, a token id.
    #[error("{0}")]
    Invalid(String),
    /// A write whose error names no file (as it did before).
    #[error(transparent)]
    Write(#[from] std::io::Error),
    /// JSON serialisation of what is written (as it was before, unnamed).
    #[error(transparent)]
    Serialize(#[from] serde_json::Error),
}

/// `E` defaults to [`DataError`]; other modules may still spell out their own.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    pub(crate) fn file(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        DataError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How records are laid out in a file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    JsonLines {
        gzip: bool,
    },
    /// `.json`: an array of records, or JSON Lines.
    Json,
    Parquet,
}

impl FileKind {
    pub fn of(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        Ok(
            if name.ends_with(".jsonl.gz") || name.ends_with(".json.gz") {
                Self::JsonLines { gzip: true }
            } else if name.ends_with(".jsonl") {
                Self::JsonLines { gzip: false }
            } else if name.ends_with(".json") {
                Self::Json
            } else if name.ends_with(".parquet") {
                Self::Parquet
            } else {
                return Err(DataError::UnknownKind {
                    path: path.to_path_buf(),
                });
            },
        )
    }

    /// Where a record is, for messages: `file:7` for a line, `file: row 7` for a row.
    pub fn locate(self, path: &Path, position: usize) -> String {
        match self {
            Self::JsonLines { .. } => format!("{}:{position}", path.display()),
            Self::Json | Self::Parquet => format!("{}: row {position}", path.display()),
        }
    }
}

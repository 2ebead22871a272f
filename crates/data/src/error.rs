//! Why a data file could not be read: the caller acts on the kind (a malformed line is
//! the data's fault and names its file and line; an unreadable file is the system's).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path} after line {line}: {source}")]
    Read {
        path: PathBuf,
        line: usize,
        source: std::io::Error,
    },
    /// A line that is not valid UTF-8, JSON or a record of the format (1-based `line`).
    #[error("{path}:{line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

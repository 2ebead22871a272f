//! Why a data file could not be read: the caller acts on the kind (a malformed line is
//! the data's fault and names its file and line; an unreadable file is the system's).

use std::path::PathBuf;

use super::files::FileKind;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {} after line {line}", path.display())]
    Read {
        path: PathBuf,
        line: usize,
        source: std::io::Error,
    },
    /// A record that is not valid UTF-8, JSON or a record of the format: `line` is the
    /// 1-based line of a JSON Lines file, or the row of a JSON array or Parquet file.
    #[error("{}: {reason}", kind.locate(path, *line))]
    Malformed {
        path: PathBuf,
        kind: FileKind,
        line: usize,
        reason: String,
    },
}

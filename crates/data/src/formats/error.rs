//! Why a data file could not be read: the caller acts on the kind (a malformed line is
//! the data's fault and names its file and line; an unreadable file is the system's; a
//! name or pattern that finds no file is the command line's).

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
    /// Reading the start of a `.json` file (array or JSON Lines?).
    #[error("reading {}", path.display())]
    ReadStart {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid UTF-8", path.display())]
    NotUtf8 {
        path: PathBuf,
        source: std::io::Error,
    },
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::expand_paths;
    use crate::formats::files::for_each_record;

    #[test]
    fn unreadable_files_and_patterns_are_typed_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("data.csv");
        std::fs::write(&csv, "a,b\n").unwrap();
        let err = for_each_record(&csv, |_| Ok::<(), DataError>(())).unwrap_err();
        assert!(matches!(err, DataError::UnknownKind { .. }), "{err}");
        assert!(
            err.to_string().contains("unknown dataset file type"),
            "{err}"
        );

        let array = dir.path().join("rows.json");
        std::fs::write(&array, "[{\"prompt\": 1},").unwrap();
        let err = for_each_record(&array, |_| Ok::<(), DataError>(())).unwrap_err();
        assert!(matches!(err, DataError::JsonArray { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("{}: invalid JSON array", array.display())
        );

        let pattern = format!("{}/*.parquet", dir.path().display());
        let err = expand_paths(std::slice::from_ref(&pattern)).unwrap_err();
        assert!(matches!(err, DataError::NoMatch { .. }), "{err}");
        assert_eq!(err.to_string(), format!("{pattern:?} matches no file"));
    }
}

//! `data.train` as a list of files and glob patterns (`data/train-*.parquet`), as the
//! Hub shards a split.

use std::path::PathBuf;

use super::error::DataError;

/// The files named, in order; a pattern adds its matches sorted by name and must match
/// at least one file. A plain path is kept as given (a missing file is an error when read).
pub fn expand_paths(patterns: &[String]) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for pattern in patterns {
        if !pattern.contains(['*', '?', '[']) {
            out.push(PathBuf::from(pattern));
            continue;
        }
        let mut matches = glob::glob(pattern)
            .map_err(|source| DataError::Pattern {
                pattern: pattern.clone(),
                source,
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| DataError::Matches {
                pattern: pattern.clone(),
                source,
            })?;
        if matches.is_empty() {
            return Err(DataError::NoMatch {
                pattern: pattern.clone(),
            });
        }
        matches.sort();
        out.extend(matches);
    }
    Ok(out)
}

//! `data.train` as a list of files and glob patterns (`data/train-*.parquet`), as the
//! Hub shards a split.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The files named, in order; a pattern adds its matches sorted by name and must match
/// at least one file. A plain path is kept as given (a missing file is an error when read).
pub fn expand_paths(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for pattern in patterns {
        if !pattern.contains(['*', '?', '[']) {
            out.push(PathBuf::from(pattern));
            continue;
        }
        let mut matches = glob::glob(pattern)
            .with_context(|| format!("invalid glob pattern {pattern:?}"))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("reading the matches of {pattern:?}"))?;
        if matches.is_empty() {
            bail!("{pattern:?} matches no file");
        }
        matches.sort();
        out.extend(matches);
    }
    Ok(out)
}

//! Reading a generations file: one JSON object a line, as `rpo-shard generate` writes it.

use serde::Deserialize;
use std::path::Path;

use crate::error::{JudgeError, Result};

/// One generated response and the dataset's preferred response to the same prompt.
/// Other fields on the line (ranks, token counts, …) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Generation {
    pub prompt: String,
    /// The policy's answer: the candidate.
    pub response: String,
    /// The dataset's preferred response: what the candidate is compared with.
    pub reference: String,
    /// The synthetic suite's family, when the prompt is one of its questions.
    #[serde(default)]
    pub family: Option<String>,
    /// 1-based line in the file, for messages and the per-comparison output.
    #[serde(skip)]
    pub line: usize,
}

/// Every non-blank line of `path`; a malformed one is an error naming the file and line.
pub fn read_generations(path: &Path) -> Result<Vec<Generation>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JudgeError::file("cannot read generations", path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut g: Generation =
            serde_json::from_str(line).map_err(|source| JudgeError::Generation {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })?;
        g.line = i + 1;
        out.push(g);
    }
    if out.is_empty() {
        return Err(JudgeError::NoGenerations {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

//! Verifiable rewards: the response against a reference field of the prompt's record.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Sample, Score, Scorer};
use crate::error::{JudgeError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// The response, trimmed, equals the field, trimmed.
    Exact,
    /// Equal after [`normalise`]: case, whitespace runs and surrounding punctuation
    /// do not count.
    Normalized,
    /// The field is a regular expression that must match somewhere in the response.
    Regex,
}

/// Lower case, whitespace runs collapsed to one space, leading and trailing
/// punctuation and whitespace dropped: "  The answer is 42. " → "the answer is 42".
pub fn normalise(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .join(" ")
        .to_lowercase()
        .trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_string()
}

/// 1 on a match, 0 otherwise.
pub struct MatchScorer {
    pub field: String,
    pub mode: MatchMode,
}

impl Scorer for MatchScorer {
    fn name(&self) -> &'static str {
        "match"
    }

    fn score(&self, samples: &[Sample]) -> Result<Vec<Score>> {
        let mut compiled: std::collections::HashMap<&str, Regex> = Default::default();
        let mut out = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            let reference = s
                .field(&self.field)
                .map_err(|e| e.in_sample(format!("sample {i} (prompt {:?})", s.prompt)))?;
            let ok = match self.mode {
                MatchMode::Exact => s.response.trim() == reference.trim(),
                MatchMode::Normalized => normalise(&s.response) == normalise(reference),
                MatchMode::Regex => {
                    if !compiled.contains_key(reference) {
                        let re = Regex::new(reference).map_err(|source| JudgeError::Regex {
                            index: i,
                            field: self.field.clone(),
                            source,
                        })?;
                        compiled.insert(reference, re);
                    }
                    compiled[reference].is_match(&s.response)
                }
            };
            out.push(Score {
                score: if ok { 1.0 } else { 0.0 },
                label: ok,
            });
        }
        Ok(out)
    }
}

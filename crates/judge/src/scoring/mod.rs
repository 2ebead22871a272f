//! Scoring sampled responses one by one (issue 18): a score and a label per sample,
//! from one interface whatever judges them. The pairwise [`crate::Judge`] compares a
//! candidate with a reference response for win rates; a [`Scorer`] rates one response on
//! its own, which is what building preference data from a policy's samples needs.
//!
//! - `synthetic`: the built-in suite's checker (1 correct, 0 wrong);
//! - `match`: exact, normalised or regex match against a field of the prompt's record;
//! - `command`: an external program reads JSONL on stdin, writes one score a line;
//! - `http`: the OpenAI-compatible pairwise judge against a reference field
//!   (win 1, tie ½, loss 0).
//!
//! [`ScorerSpec`] names one of them with its settings and builds it.

mod command;
mod http;
mod matching;
mod spec;
mod synthetic;

pub use command::CommandScorer;
pub use http::HttpScorer;
pub use matching::{MatchMode, MatchScorer};
pub use spec::ScorerSpec;
pub use synthetic::SyntheticScorer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{JudgeError, Result};

/// One response to be scored, with the fields of its prompt's record (reference
/// answers, families, ids, … carried through from the prompts file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub prompt: String,
    pub response: String,
    /// Every other field of the prompt's record.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Sample {
    /// A string field of the prompt's record, or an error naming it.
    pub fn field(&self, name: &str) -> Result<&str> {
        match self.fields.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(JudgeError::Field(format!(
                "field `{name}` is {other}, not a string"
            ))),
            None => Err(JudgeError::Field(format!(
                "the sample has no field `{name}` (fields: {})",
                self.fields.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// What a scorer says of one sample: `score` is the scorer's own number (higher is
/// better); `label` is desirable (true) or not, `score ≥ threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f64,
    pub label: bool,
}

impl Score {
    pub fn thresholded(score: f64, threshold: f64) -> Self {
        Self {
            score,
            label: score >= threshold,
        }
    }
}

/// Rates responses one at a time. Takes the whole list so a scorer that starts a
/// process or holds a connection does so once.
pub trait Scorer {
    /// "synthetic", "match", "command", "http".
    fn name(&self) -> &'static str;

    /// One score per sample, in order; an error leaves nothing half-scored.
    fn score(&self, samples: &[Sample]) -> Result<Vec<Score>>;
}

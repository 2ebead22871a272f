//! Win rates of generated responses against the dataset's preferred responses.
//!
//! A [`Judge`] compares one candidate (the policy's response) with the reference (the
//! preferred response) and gives an [`Outcome`]: win, loss, tie or unparsable.
//! [`evaluate`] runs a judge over a generations file and writes every comparison and a
//! summary. Two judges:
//! - [`SyntheticJudge`]: the built-in synthetic suite's programmatic judge;
//! - [`HttpJudge`]: any OpenAI-compatible chat endpoint with the paper's appendix-H
//!   prompts, responses in a seeded random order, temperature 0, retries and a cache.

pub mod cache;
pub mod config;
mod error;
mod evaluate;
pub mod generations;
pub mod http;
pub mod outcome;
pub mod preferences;
pub mod prompts;
pub mod scoring;
pub mod synthetic;

pub use config::{HttpSettings, JudgeConfig};
pub use error::{JudgeError, Result};
pub use evaluate::{evaluate, Summary};
pub use generations::{read_generations, Generation};
pub use http::HttpJudge;
pub use outcome::{Judgement, Outcome, Tally};
pub use preferences::{
    build_preferences, PairingRule, PreferenceRow, PreferenceStats, ScoredSample,
};
pub use prompts::Task;
pub use scoring::{Sample, Score, Scorer};
pub use synthetic::SyntheticJudge;

/// Compares candidate responses with reference responses.
pub trait Judge: Sync {
    /// "synthetic", "http".
    fn name(&self) -> String;

    /// What the summary records about this judge (never a key).
    fn settings(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// How many comparisons may run at once.
    fn concurrency(&self) -> usize {
        1
    }

    /// Judges comparison `index` (its position in the generations file, which fixes the
    /// order the responses are shown in).
    fn compare(&self, index: usize, generation: &Generation) -> Result<Judgement>;
}

//! Which scorer, with its settings: the one place a [`Scorer`] is made, whether a
//! command line (`sample`/`prefs --judge`) or a config (`[online] judge`) names it.

use std::path::Path;
use std::time::Duration;

use super::{CommandScorer, HttpScorer, MatchMode, MatchScorer, Scorer, SyntheticScorer};
use crate::error::Result;
use crate::{HttpJudge, JudgeConfig};

/// A scorer's kind and settings, checked: [`ScorerSpec::build`] cannot fail.
pub enum ScorerSpec {
    /// The built-in synthetic suite's checker.
    Synthetic,
    /// Exact, normalised or regex match against the prompt record's `field`.
    Match { field: String, mode: MatchMode },
    /// `sh -c command`: JSONL samples on stdin, one score a line on stdout.
    Command {
        command: String,
        threshold: f64,
        timeout: Duration,
    },
    /// An OpenAI-compatible chat endpoint against a reference field; made by
    /// [`ScorerSpec::http`], which reads the judge's settings.
    Http(Box<HttpScorer>),
}

impl ScorerSpec {
    /// The HTTP judge with the settings of `judge_config` (TOML, as for `eval
    /// --judge-config`; defaults without one) and the environment, its replies cached in
    /// `cache`.
    pub fn http(
        judge_config: Option<&Path>,
        seed: u64,
        cache: &Path,
        reference_field: String,
        threshold: f64,
    ) -> Result<Self> {
        let file = match judge_config {
            Some(p) => JudgeConfig::load(p)?,
            None => JudgeConfig::default(),
        };
        let settings = file.resolve(|k| std::env::var(k).ok())?;
        Ok(ScorerSpec::Http(Box::new(HttpScorer {
            judge: HttpJudge::new(settings, seed, cache)?,
            reference_field,
            threshold,
        })))
    }

    pub fn build(self) -> Box<dyn Scorer> {
        match self {
            ScorerSpec::Synthetic => Box::new(SyntheticScorer),
            ScorerSpec::Match { field, mode } => Box::new(MatchScorer { field, mode }),
            ScorerSpec::Command {
                command,
                threshold,
                timeout,
            } => Box::new(CommandScorer {
                command,
                threshold,
                timeout,
            }),
            ScorerSpec::Http(scorer) => scorer,
        }
    }
}

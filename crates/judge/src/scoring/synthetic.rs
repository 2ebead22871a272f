//! The built-in suite's checker as a scorer.

use rpo_data::synthetic::judge as is_correct;

use super::{Sample, Score, Scorer};
use crate::error::{JudgeError, Result};

/// 1 when the response answers the suite's question exactly (after trimming), else 0;
/// the same check as training's held-out evaluation. A prompt that is not from the suite
/// is an error that names the sample.
pub struct SyntheticScorer;

impl Scorer for SyntheticScorer {
    fn name(&self) -> &'static str {
        "synthetic"
    }

    fn score(&self, samples: &[Sample]) -> Result<Vec<Score>> {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ok = is_correct(&s.prompt, &s.response).map_err(|e| {
                    JudgeError::from(e).in_sample(format!(
                        "sample {i}: the synthetic judge only knows the built-in suite's prompts; \
                         use --judge match|command|http"
                    ))
                })?;
                Ok(Score {
                    score: if ok { 1.0 } else { 0.0 },
                    label: ok,
                })
            })
            .collect()
    }
}

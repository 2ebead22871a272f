//! The OpenAI-compatible pairwise judge as a scorer: each sample against a reference
//! response from its prompt's record.

use super::{Sample, Score, Scorer};
use crate::error::{JudgeError, Result};
use crate::generations::Generation;
use crate::outcome::Outcome;
use crate::{HttpJudge, Judge};

/// Win 1, tie ½, loss 0 against the record's `reference_field`; label `score ≥
/// threshold` (default ½: at least as good as the reference). An unparsable verdict
/// is an error naming the sample: a silent 0 would turn judge failures into
/// "undesirable" training data.
pub struct HttpScorer {
    pub judge: HttpJudge,
    pub reference_field: String,
    pub threshold: f64,
}

impl Scorer for HttpScorer {
    fn name(&self) -> &'static str {
        "http"
    }

    fn score(&self, samples: &[Sample]) -> Result<Vec<Score>> {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let g = Generation {
                    prompt: s.prompt.clone(),
                    response: s.response.clone(),
                    reference: s.field(&self.reference_field)?.to_string(),
                    family: None,
                    line: i + 1,
                };
                let j = self
                    .judge
                    .compare(i, &g)
                    .map_err(|e| e.in_sample(format!("judging sample {i}")))?;
                let score = match j.outcome {
                    Outcome::Win => 1.0,
                    Outcome::Tie => 0.5,
                    Outcome::Loss => 0.0,
                    Outcome::Unparsable => {
                        return Err(JudgeError::NoVerdict {
                            index: i,
                            reply: j.reply.unwrap_or_default(),
                        })
                    }
                };
                Ok(Score::thresholded(score, self.threshold))
            })
            .collect()
    }
}

//! The built-in synthetic suite's programmatic judge, as a pairwise judge.

use rpo_data::synthetic::judge as is_correct;

use crate::error::Result;
use crate::generations::Generation;
use crate::outcome::{Judgement, Outcome};
use crate::Judge;

/// Checks both responses against the suite's answer (exact match after trimming, the same
/// check as training's held-out evaluation) and compares the verdicts:
///
/// | candidate | reference | outcome |
/// |---|---|---|
/// | correct | wrong | win |
/// | wrong | correct | loss |
/// | correct | correct | tie |
/// | wrong | wrong | tie |
///
/// Two correct answers are the same answer, so neither can be better. The suite's
/// preferred responses are always correct, so on its own data the win rate is 0 and
/// `win_rate_ties_half` is half the candidate's accuracy; the summary reports that
/// accuracy too. A prompt that is not from the suite is an error.
pub struct SyntheticJudge;

impl Judge for SyntheticJudge {
    fn name(&self) -> String {
        "synthetic".into()
    }

    fn compare(&self, _index: usize, g: &Generation) -> Result<Judgement> {
        let candidate = is_correct(&g.prompt, &g.response)?;
        let reference = is_correct(&g.prompt, &g.reference)?;
        let outcome = match (candidate, reference) {
            (true, false) => Outcome::Win,
            (false, true) => Outcome::Loss,
            _ => Outcome::Tie,
        };
        Ok(Judgement {
            candidate_correct: Some(candidate),
            reference_correct: Some(reference),
            ..Judgement::new(outcome)
        })
    }
}

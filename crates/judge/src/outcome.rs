//! What one comparison gives, and how comparisons add up to win rates.

use serde::{Deserialize, Serialize};

/// The candidate (generated) response against the reference (preferred) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Win,
    Loss,
    Tie,
    /// The judge answered, but not with a verdict we can read.
    Unparsable,
}

/// One judged comparison; the fields a judge does not have are left out of the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: Outcome,
    /// Synthetic judge: whether each response answers the question correctly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_correct: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_correct: Option<bool>,
    /// HTTP judge: where the candidate was shown (1 = first, 2 = second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_position: Option<u8>,
    /// HTTP judge: the judge's answer as it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// HTTP judge: answered from the cache (no request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    /// HTTP requests this comparison made, retries included.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests: u32,
    /// Tokens the endpoint reported for this comparison's request (0 when cached).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completion_tokens: u64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Judgement {
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            candidate_correct: None,
            reference_correct: None,
            candidate_position: None,
            reply: None,
            cached: None,
            requests: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
        }
    }
}

/// Counts of outcomes and the two win rates computed from them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub comparisons: usize,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    pub unparsable: usize,
    /// wins / comparisons: ties and unparsable answers count as comparisons not won.
    pub win_rate: f64,
    /// (wins + ties / 2) / comparisons: unparsable answers still count as not won.
    pub win_rate_ties_half: f64,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome) {
        self.comparisons += 1;
        match outcome {
            Outcome::Win => self.wins += 1,
            Outcome::Loss => self.losses += 1,
            Outcome::Tie => self.ties += 1,
            Outcome::Unparsable => self.unparsable += 1,
        }
        let n = self.comparisons as f64;
        self.win_rate = self.wins as f64 / n;
        self.win_rate_ties_half = (self.wins as f64 + 0.5 * self.ties as f64) / n;
    }

    pub fn of(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        let mut t = Self::default();
        outcomes.into_iter().for_each(|o| t.add(o));
        t
    }
}

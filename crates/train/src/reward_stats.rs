//! The reward statistics of one optimizer step (a record: no tensors kept, no imports
//! from the training modules).

use rpo_comm::host::to_host_f64;
use tch::{Kind, Tensor};

/// Detached reward sums, accumulated over the micro-batches of one optimizer step.
#[derive(Debug, Default, Clone)]
pub struct RewardStats {
    pub chosen_sum: f64,
    pub chosen_count: usize,
    pub rejected_sum: f64,
    pub rejected_count: usize,
    /// Comparisons won by the chosen side and comparisons made: matched pairs for
    /// paired data, every (desirable, undesirable) pair of the batch for unpaired data.
    pub correct: f64,
    pub compared: usize,
    /// Real (non-padding) tokens of the policy's forwards.
    pub tokens: usize,
    /// Positions the policy's forwards computed (padding included, shared prompts once).
    pub tokens_computed: usize,
}

impl RewardStats {
    pub(crate) fn add_rewards(&mut self, chosen: &Tensor, rejected: &Tensor) {
        self.chosen_sum += to_host_f64(&chosen.sum(Kind::Double)).expect("a scalar");
        self.chosen_count += chosen.size()[0] as usize;
        self.rejected_sum += to_host_f64(&rejected.sum(Kind::Double)).expect("a scalar");
        self.rejected_count += rejected.size()[0] as usize;
    }

    pub fn merge(&mut self, other: &RewardStats) {
        self.chosen_sum += other.chosen_sum;
        self.chosen_count += other.chosen_count;
        self.rejected_sum += other.rejected_sum;
        self.rejected_count += other.rejected_count;
        self.correct += other.correct;
        self.compared += other.compared;
        self.tokens += other.tokens;
        self.tokens_computed += other.tokens_computed;
    }

    pub fn mean_chosen(&self) -> Option<f64> {
        (self.chosen_count > 0).then(|| self.chosen_sum / self.chosen_count as f64)
    }

    pub fn mean_rejected(&self) -> Option<f64> {
        (self.rejected_count > 0).then(|| self.rejected_sum / self.rejected_count as f64)
    }

    pub fn accuracy(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.correct / self.compared as f64)
    }
}

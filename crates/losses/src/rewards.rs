//! Detached reward metrics for logging: implicit rewards `β · log-ratio`.

use crate::error::Result;
use tch::Tensor;

use crate::checks::logratio_pairs_len;
use crate::precision::at_least_f32;

/// Implicit rewards `β · (log π − log π_ref)`, detached, per example.
pub fn rewards(logratios: &Tensor, beta: f64) -> Tensor {
    at_least_f32(&logratios.detach()) * beta
}

/// Reward metrics of matched pairs (win `i` and lose `i` share a prompt), per pair.
#[derive(Debug)]
pub struct PairMetrics {
    pub chosen_rewards: Tensor,
    pub rejected_rewards: Tensor,
    /// `chosen_rewards − rejected_rewards`.
    pub margins: Tensor,
    /// 1.0 where the chosen reward beats the rejected one, else 0.0; its mean is the accuracy.
    pub accuracies: Tensor,
}

/// Per-pair rewards, margins and accuracies of matched pairs.
pub fn pair_metrics(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    beta: f64,
) -> Result<PairMetrics> {
    logratio_pairs_len(chosen_logratios, rejected_logratios)?;
    let chosen_rewards = rewards(chosen_logratios, beta);
    let rejected_rewards = rewards(rejected_logratios, beta);
    let margins = &chosen_rewards - &rejected_rewards;
    let accuracies = chosen_rewards
        .gt_tensor(&rejected_rewards)
        .to_kind(chosen_rewards.kind());
    Ok(PairMetrics {
        chosen_rewards,
        rejected_rewards,
        margins,
        accuracies,
    })
}

//! Sequence log-probabilities: Σ_t log π(y_t | x, y_<t) over the response tokens.

use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

use crate::precision::at_least_f32;

/// Summed log-probability of each sequence's targets over its masked positions.
///
/// - `logits`: `[B, T, V]`, any float kind (computed in at least fp32).
/// - `labels`: `[B, T]` integer ids, already shifted: `labels[b, t]` is the token that
///   `logits[b, t]` predicts. Masked positions may hold anything (0, -100, padding).
/// - `loss_mask`: `[B, T]` bool or numeric, non-zero on response tokens.
///
/// Returns `[B]` in fp32 (fp64 if the logits are fp64).
pub fn sequence_logps(logits: &Tensor, labels: &Tensor, loss_mask: &Tensor) -> Result<Tensor> {
    let size = logits.size();
    ensure!(
        size.len() == 3,
        "sequence_logps: logits must be [B, T, V], got {size:?}"
    );
    let batch_time = &size[..2];
    ensure!(
        labels.size() == batch_time,
        "sequence_logps: labels {:?} must be [B, T] = {batch_time:?}",
        labels.size()
    );
    ensure!(
        loss_mask.size() == batch_time,
        "sequence_logps: loss_mask {:?} must be [B, T] = {batch_time:?}",
        loss_mask.size()
    );
    let ignored = loss_mask.eq(0);
    // Gather needs a valid id everywhere; ignored positions are zeroed afterwards.
    let index = labels
        .to_kind(Kind::Int64)
        .masked_fill(&ignored, 0)
        .unsqueeze(-1);
    let token_logps = at_least_f32(logits)
        .log_softmax(-1, None)
        .gather(-1, &index, false)
        .squeeze_dim(-1)
        .masked_fill(&ignored, 0.0);
    Ok(token_logps.sum_dim_intlist(-1, false, None))
}

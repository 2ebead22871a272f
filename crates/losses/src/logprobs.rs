//! Sequence log-probabilities: Σ_t log π(y_t | x, y_<t) over the response tokens.

use crate::error::{LossError, Result};
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
        Shape,
        "sequence_logps: logits must be [B, T, V], got {size:?}"
    );
    let batch_time = &size[..2];
    ensure!(
        labels.size() == batch_time,
        Shape,
        "sequence_logps: labels {:?} must be [B, T] = {batch_time:?}",
        labels.size()
    );
    ensure!(
        loss_mask.size() == batch_time,
        Shape,
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

/// Position ranges `(start, len)` covering `0..len_total` so that each chunk holds at most
/// `chunk_tokens` (rows × positions) tokens, and at least one position.
pub fn position_chunks(rows: i64, len_total: i64, chunk_tokens: i64) -> Vec<(i64, i64)> {
    let step = (chunk_tokens / rows.max(1)).max(1);
    (0..len_total)
        .step_by(step as usize)
        .map(|start| (start, step.min(len_total - start)))
        .collect()
}

/// [`sequence_logps`] from the hidden states `[B, T, H]` before the LM head: `head` maps a
/// slice of positions to its logits, so at most `chunk_tokens` positions' fp32 logits
/// exist at once instead of the whole `[B, T, V]`.
pub fn sequence_logps_chunked(
    hidden: &Tensor,
    head: &dyn Fn(&Tensor) -> Tensor,
    labels: &Tensor,
    loss_mask: &Tensor,
    chunk_tokens: i64,
) -> Result<Tensor> {
    let (rows, len, _) = hidden.size3()?;
    let mut total: Option<Tensor> = None;
    for (start, n) in position_chunks(rows, len, chunk_tokens) {
        let part = sequence_logps(
            &head(&hidden.narrow(1, start, n)),
            &labels.narrow(1, start, n),
            &loss_mask.narrow(1, start, n),
        )?;
        total = Some(match total {
            Some(t) => t + part,
            None => part,
        });
    }
    total.ok_or_else(|| LossError::Shape("sequence_logps_chunked: empty sequences".into()))
}

//! Supervised fine-tuning on the preferred responses.

use crate::error::Result;
use tch::Tensor;

use crate::checks::vector_len;
use crate::precision::at_least_f32;

/// Per-example negative log-likelihood `−log π(y_w|x)` `[B]` from summed sequence
/// log-probabilities (not log-ratios: SFT has no reference model).
pub fn sft_losses(chosen_logps: &Tensor) -> Result<Tensor> {
    vector_len(chosen_logps, "chosen log-probabilities")?;
    Ok(-at_least_f32(chosen_logps))
}

/// Mean summed NLL of the preferred responses over the batch.
pub fn sft_loss(chosen_logps: &Tensor) -> Result<Tensor> {
    Ok(sft_losses(chosen_logps)?.mean(None))
}

//! Direct Preference Optimization (paper Eq. 3; TRL/HALOs `sigmoid` loss).

use crate::error::Result;
use tch::Tensor;

use crate::checks::logratio_pairs_len;
use crate::precision::at_least_f32;

/// Per-pair DPO losses `−log σ(β · (a_i − b_i))` `[B]`, where `a_i − b_i` equals
/// `(π_w − π_l) − (ref_w − ref_l)` for log-ratios `a = π_w − ref_w`, `b = π_l − ref_l`.
pub fn dpo_losses(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    logratio_pairs_len(chosen_logratios, rejected_logratios)?;
    let margin = at_least_f32(chosen_logratios) - at_least_f32(rejected_logratios);
    Ok(-(margin * beta).log_sigmoid())
}

/// Mean DPO loss over the batch of pairs.
pub fn dpo_loss(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    Ok(dpo_losses(chosen_logratios, rejected_logratios, beta)?.mean(None))
}

//! Identity Preference Optimization (paper Eq. 5; TRL/HALOs `ipo` loss on summed log-probs).

use crate::error::Result;
use tch::Tensor;

use crate::checks::logratio_pairs_len;
use crate::precision::at_least_f32;

/// Per-pair IPO losses `(h_i − 1/(2β))²` `[B]` with `h_i = a_i − b_i`
/// `= (π_w − π_l) − (ref_w − ref_l)`.
pub fn ipo_losses(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    ensure!(beta > 0.0, Invalid, "IPO's β must be positive, got {beta}");
    logratio_pairs_len(chosen_logratios, rejected_logratios)?;
    let h = at_least_f32(chosen_logratios) - at_least_f32(rejected_logratios);
    Ok((h - 1.0 / (2.0 * beta)).square())
}

/// Mean IPO loss over the batch of pairs.
pub fn ipo_loss(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    Ok(ipo_losses(chosen_logratios, rejected_logratios, beta)?.mean(None))
}

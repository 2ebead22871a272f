//! Kahneman-Tversky Optimization (paper Eq. 6–8, as HALOs' `KTOTrainer` computes it).

use crate::error::Result;
use tch::Tensor;

use crate::checks::{pair_len, vector_len};
use crate::precision::at_least_f32;

/// The KL reference point `z₀ = max(0, mean(kl_logratios))`, detached (a 0-dim tensor).
///
/// `kl_logratios` are log-ratios of mismatched pairs (prompt `i` with response `i+1`).
/// A distributed caller averages this estimate across ranks and clamps again before
/// passing it to [`kto_losses`].
pub fn kto_kl_estimate(kl_logratios: &Tensor) -> Result<Tensor> {
    let n = vector_len(kl_logratios, "KL log-ratios")?;
    ensure!(
        n > 0,
        Shape,
        "the KTO KL estimate needs at least one mismatched pair"
    );
    Ok(at_least_f32(kl_logratios)
        .detach()
        .mean(None)
        .clamp_min(0.0))
}

/// Per-example KTO losses `[n]` against the reference point `kl` (treated as a constant):
/// desirable `w_d·(1 − σ(β(r − z₀)))`, undesirable `w_u·(1 − σ(β(z₀ − r)))`.
pub fn kto_losses(
    logratios: &Tensor,
    desirable: &Tensor,
    kl: &Tensor,
    beta: f64,
    desirable_weight: f64,
    undesirable_weight: f64,
) -> Result<Tensor> {
    pair_len(logratios, "KTO log-ratios", desirable, "desirable flags")?;
    ensure!(
        kl.numel() == 1,
        Shape,
        "the KTO reference point must be a single value, got shape {:?}",
        kl.size()
    );
    let r = at_least_f32(logratios);
    let z0 = kl
        .detach()
        .to_kind(r.kind())
        .to_device(r.device())
        .reshape([] as [i64; 0]);
    let desirable_losses: Tensor = (1.0 - ((&r - &z0) * beta).sigmoid()) * desirable_weight;
    let undesirable_losses: Tensor = (1.0 - ((&z0 - &r) * beta).sigmoid()) * undesirable_weight;
    let is_desirable = desirable.to_device(r.device()).ne(0);
    Ok(desirable_losses.where_self(&is_desirable, &undesirable_losses))
}

/// Mean KTO loss over all examples, with the KL reference point estimated from
/// `kl_logratios` (see [`kto_kl_estimate`]).
pub fn kto_loss(
    logratios: &Tensor,
    desirable: &Tensor,
    kl_logratios: &Tensor,
    beta: f64,
    desirable_weight: f64,
    undesirable_weight: f64,
) -> Result<Tensor> {
    let kl = kto_kl_estimate(kl_logratios)?;
    let losses = kto_losses(
        logratios,
        desirable,
        &kl,
        beta,
        desirable_weight,
        undesirable_weight,
    )?;
    Ok(losses.mean(None))
}

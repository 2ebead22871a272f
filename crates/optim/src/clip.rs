//! Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` (L2 norm), split in
//! two so a sharded caller can all-reduce the squared norm of its shards in between:
//! `grad_sq_norm` → (all-reduce sum) → `clip_coefficient` → `scale_grads`.
//! [`grad_sq_norm_tensor`] is the same sum left on the device, for a caller that reads it
//! once together with other figures.

use tch::{Device, Kind, Tensor};

/// One gradient's L2 norm, accumulated in fp32 (f64 for f64 gradients), as a 0-dim f64
/// tensor squared in f64.
fn sq_norm(g: &Tensor) -> Tensor {
    let kind = if g.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let norm = g.norm_scalaropt_dtype(2, kind).to_kind(Kind::Double);
    &norm * &norm
}

/// Σ over all gradients of their squared L2 norms (accumulated in fp32 or better, summed in
/// f64, in order), as a 0-dim f64 tensor on the gradients' device: nothing is read to the
/// host. Equal bit for bit to [`grad_sq_norm`] (each addition is the same f64 addition).
pub fn grad_sq_norm_tensor(grads: &[Tensor]) -> Tensor {
    let mut squares = grads.iter().map(sq_norm);
    match squares.next() {
        None => Tensor::zeros([], (Kind::Double, Device::Cpu)),
        Some(first) => squares.fold(first, |total, sq| total + sq),
    }
}

/// Σ over all gradients of their squared L2 norms (accumulated in fp32 or better, summed in f64).
pub fn grad_sq_norm(grads: &[Tensor]) -> f64 {
    grads.iter().map(|g| sq_norm(g).double_value(&[])).sum()
}

/// `min(1, max_norm / (total_norm + 1e-6))`, the factor torch scales gradients by.
/// A non-finite norm gives 1 (no scaling): the caller decides what to do with such a step.
pub fn clip_coefficient(total_norm: f64, max_norm: f64) -> f64 {
    if !total_norm.is_finite() {
        return 1.0;
    }
    (max_norm / (total_norm + 1e-6)).min(1.0)
}

/// Multiplies every gradient in place by `coefficient` (nothing to do at 1).
pub fn scale_grads(grads: &mut [Tensor], coefficient: f64) {
    if coefficient == 1.0 {
        return;
    }
    tch::no_grad(|| {
        for g in grads.iter_mut() {
            *g *= coefficient;
        }
    });
}

/// Clips `grads` to global L2 norm `max_norm` in place; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> f64 {
    let total_norm = grad_sq_norm(grads).sqrt();
    scale_grads(grads, clip_coefficient(total_norm, max_norm));
    total_norm
}

//! Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` (L2 norm), split in
//! two so a sharded caller can all-reduce the squared norm of its shards in between:
//! `grad_sq_norm` → (all-reduce sum) → `clip_coefficient` → `scale_grads`.

use tch::{Kind, Tensor};

/// Σ over all gradients of their squared L2 norms (accumulated in fp32 or better, summed in f64).
pub fn grad_sq_norm(grads: &[Tensor]) -> f64 {
    grads
        .iter()
        .map(|g| {
            let kind = if g.kind() == Kind::Double {
                Kind::Double
            } else {
                Kind::Float
            };
            g.norm_scalaropt_dtype(2, kind).double_value(&[]).powi(2)
        })
        .sum()
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

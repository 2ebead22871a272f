//! Loss arithmetic runs in at least fp32: bf16 log-probabilities summed over hundreds
//! of tokens, or pushed through a sigmoid, lose far more than training can afford.

use tch::{Kind, Tensor};

/// `t` as fp32, unless it already is fp32 or fp64 (fp64 stays, so tests compare exactly).
pub(crate) fn at_least_f32(t: &Tensor) -> Tensor {
    match t.kind() {
        Kind::Float | Kind::Double => t.shallow_clone(),
        _ => t.to_kind(Kind::Float),
    }
}

//! Root-mean-square layer norm, computed in fp32 and cast back as transformers does.

use tch::{nn, Kind, Tensor};

use crate::init::norm_weight;

#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub(crate) fn new(path: nn::Path, dim: i64, eps: f64) -> Self {
        RmsNorm {
            weight: norm_weight(path, dim),
            eps,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let input_kind = x.kind();
        let x32 = x.to_kind(Kind::Float);
        let variance = x32.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = x32 * (variance + self.eps).rsqrt();
        &self.weight * normed.to_kind(input_kind)
    }
}

//! The scope-wide columns every form needs, gathered from the ranks' own blocks.

use crate::error::Result;
use rpo_comm::{all_gather_known, all_gather_varlen, Collective};
use tch::Tensor;

/// A rank-ordered concatenation of every rank's block, and each rank's block length.
pub struct Gathered {
    pub all: Tensor,
    pub counts: Vec<i64>,
}

impl Gathered {
    /// `counts`: every rank's block length when the caller knows it (no collective asks).
    pub fn new(scope: &dyn Collective, own: &Tensor, counts: Option<Vec<i64>>) -> Result<Self> {
        let own = own.detach();
        let (all, counts) = match counts {
            Some(counts) => (all_gather_known(scope, &own, &counts)?, counts),
            None => all_gather_varlen(scope, &own)?,
        };
        Ok(Self { all, counts })
    }

    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// Where this rank's block starts in `all`.
    pub fn offset(&self, rank: usize) -> i64 {
        self.counts[..rank].iter().sum()
    }
}

/// Embeddings gathered with the same block lengths as their log-ratios (`counts`).
pub fn gather_embeddings(
    scope: &dyn Collective,
    own: Option<&Tensor>,
    counts: &[i64],
) -> Result<Option<Tensor>> {
    Ok(own
        .map(|e| all_gather_known(scope, &e.detach(), counts))
        .transpose()?)
}

/// `t` detached, as a leaf whose gradient autograd will report.
pub fn leaf(t: &Tensor) -> Tensor {
    t.detach().set_requires_grad(true)
}

/// Gradients of `loss` with respect to `inputs` (zeros where it does not depend on one).
pub fn grads(loss: &Tensor, inputs: &[&Tensor]) -> Vec<Tensor> {
    let inputs: Vec<Tensor> = inputs.iter().map(|t| t.shallow_clone()).collect();
    let out = Tensor::run_backward(&[loss], &inputs, false, false);
    out.into_iter()
        .zip(&inputs)
        .map(|(g, x)| if g.defined() { g } else { x.zeros_like() })
        .collect()
}

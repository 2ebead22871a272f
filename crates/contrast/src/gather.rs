//! The scope-wide columns every form needs, gathered from the ranks' own blocks.

use anyhow::Result;
use rpo_comm::{all_gather_varlen, Collective};
use tch::Tensor;

/// A rank-ordered concatenation of every rank's block, and each rank's block length.
pub struct Gathered {
    pub all: Tensor,
    pub counts: Vec<i64>,
}

impl Gathered {
    pub fn new(scope: &dyn Collective, own: &Tensor) -> Result<Self> {
        let (all, counts) = all_gather_varlen(scope, &own.detach())?;
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

/// Embeddings gathered with the same block lengths as their log-ratios.
pub fn gather_embeddings(scope: &dyn Collective, own: Option<&Tensor>) -> Result<Option<Tensor>> {
    own.map(|e| Ok(all_gather_varlen(scope, &e.detach())?.0))
        .transpose()
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

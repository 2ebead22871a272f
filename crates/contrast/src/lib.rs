//! RPO's contrast matrix across ranks, with exact gradients.
//!
//! The paper builds the matrix from one GPU's micro-batch. Here each rank brings its own
//! wins (rows) and losses (columns) and the matrix spans a whole *scope* of ranks:
//! `local` (one rank, as in the paper), `group:K` (K consecutive ranks) or `global`.
//!
//! [`contrast`] returns the scope's loss and its gradient with respect to this rank's own
//! log-ratios; the caller pushes those through its policy with one backward. Two forms
//! compute the same numbers:
//! - [`ContrastForm::RowPartitioned`] (production): every rank computes only its own rows
//!   against all columns; the column gradients come back with one reduce-scatter.
//! - [`ContrastForm::Replicated`] (the oracle): every rank computes the whole matrix.

mod error;
mod gather;
mod replicated;
mod row_partitioned;
mod scope;
pub mod selftest;

pub use error::{ContrastError, Result};
pub use scope::{ContrastForm, ContrastScope};

use rpo_comm::Collective;
use rpo_losses::Weighting;
use tch::Tensor;

/// One rank's share of a contrast matrix. Values only: gradients are returned, not
/// accumulated, so detached tensors are expected.
pub struct ContrastInputs<'a> {
    /// Log-ratios of this rank's preferred (win) responses, `[m]`.
    pub chosen: &'a Tensor,
    /// Log-ratios of this rank's dispreferred (lose) responses, `[n]`.
    pub rejected: &'a Tensor,
    /// Prompt embeddings of the wins `[m, d]` and losses `[n, d]`, when the weighting reads them.
    pub win_emb: Option<&'a Tensor>,
    pub lose_emb: Option<&'a Tensor>,
    /// Every scope rank's `[wins, losses]` in scope-rank order, when the caller knows them
    /// from the host (the trainer does: every rank draws the same global micro-batch).
    /// `None`: one small all-gather asks the ranks, and its result is read to the host.
    pub counts: Option<&'a [[i64; 2]]>,
}

/// The scope's loss and its gradient with respect to this rank's inputs.
pub struct ContrastGrads {
    /// This rank's share of the scope's loss, a 0-dim f64 tensor on the device (not read,
    /// so the caller can read it with its other metrics): the shares of the scope's ranks
    /// sum to the loss of its whole matrix (no collective spent on a number only metrics read).
    pub loss_share: Tensor,
    /// `∂loss/∂chosen`, `[m]`, and `∂loss/∂rejected`, `[n]`, in f32 or wider.
    pub chosen: Tensor,
    pub rejected: Tensor,
    /// Rows and columns of the scope's matrix.
    pub rows: i64,
    pub cols: i64,
}

/// The contrast loss over every rank of `scope` and this rank's gradients.
///
/// Every rank of `scope` must call it (even one with no wins or no losses: it still
/// owns columns or rows of the matrix). A scope with no wins or no losses at all has
/// loss 0 and zero gradients, as the reference code's skipped batch has.
pub fn contrast(
    scope: &dyn Collective,
    inputs: &ContrastInputs,
    weighting: &Weighting,
    beta: f64,
    form: ContrastForm,
) -> Result<ContrastGrads> {
    if !(inputs.win_emb.is_some() == weighting.uses_embeddings()
        && inputs.lose_emb.is_some() == weighting.uses_embeddings())
    {
        return Err(ContrastError::Invalid(format!(
            "{weighting:?} {} prompt embeddings",
            if weighting.uses_embeddings() {
                "needs"
            } else {
                "does not read"
            }
        )));
    }
    if let Some(counts) = inputs.counts {
        let here = [inputs.chosen.size()[0], inputs.rejected.size()[0]];
        if !(counts.len() == scope.world_size() && counts[scope.rank()] == here) {
            return Err(ContrastError::Invalid(format!(
                "contrast: known counts {counts:?} do not match {here:?} on scope rank {} of {}",
                scope.rank(),
                scope.world_size()
            )));
        }
    }
    match form {
        ContrastForm::RowPartitioned => row_partitioned::contrast(scope, inputs, weighting, beta),
        ContrastForm::Replicated => replicated::contrast(scope, inputs, weighting, beta),
    }
}

//! The production form: this rank's rows against every column of the scope's matrix.
//!
//! Row `i` depends on `a_i` and every `b_j` (and, through the row softmax, on every
//! lose embedding), so a rank needs all columns but only its own rows. Its rows' share of
//! the loss, `Σ_{i own} row_i / M`, gives complete gradients for its own `a_i` and a
//! partial gradient for every `b_j`; summing the partials over ranks with one
//! reduce-scatter hands each rank the full gradient of its own losses.
//! Per rank: O(m·N) compute and O(N·(1+d)) traffic, instead of O(M·N).

use anyhow::Result;
use rpo_comm::{all_gather_counts, all_reduce_f64s, reduce_scatter_varlen, Collective};
use rpo_losses::{rpo_row_losses, Weighting};

use crate::gather::{gather_embeddings, grads, leaf, Gathered};
use crate::{ContrastGrads, ContrastInputs};

pub fn contrast(
    scope: &dyn Collective,
    inputs: &ContrastInputs,
    weighting: &Weighting,
    beta: f64,
) -> Result<ContrastGrads> {
    // Every rank runs every collective below, whatever its block sizes.
    let m = inputs.chosen.size()[0];
    let win_counts = all_gather_counts(scope, m)?;
    let rows: i64 = win_counts.iter().sum();
    let first_row: i64 = win_counts[..scope.rank()].iter().sum();
    let losses = Gathered::new(scope, inputs.rejected)?;
    let lose_emb = gather_embeddings(scope, inputs.lose_emb)?;
    let cols = losses.total();

    let a = leaf(inputs.chosen);
    let b = leaf(&losses.all);
    let (partial_loss, grad_a, grad_b_all) = if m > 0 && cols > 0 {
        let own_rows = rpo_row_losses(
            &a,
            &b,
            inputs.win_emb,
            lose_emb.as_ref(),
            weighting,
            beta,
            first_row,
        )?;
        let partial = own_rows.sum(own_rows.kind()) / rows as f64;
        let g = grads(&partial, &[&a, &b]);
        (
            partial.double_value(&[]),
            g[0].shallow_clone(),
            g[1].shallow_clone(),
        )
    } else {
        (0.0, a.zeros_like().detach(), b.zeros_like().detach())
    };
    let grad_b = reduce_scatter_varlen(scope, &grad_b_all, &losses.counts)?;

    let mut loss = [partial_loss];
    all_reduce_f64s(scope, &mut loss)?;
    Ok(ContrastGrads {
        loss: loss[0],
        chosen: grad_a,
        rejected: grad_b,
        rows,
        cols,
    })
}

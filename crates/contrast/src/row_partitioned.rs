//! The production form: this rank's rows against every column of the scope's matrix.
//!
//! Row `i` depends on `a_i` and every `b_j` (and, through the row softmax, on every
//! lose embedding), so a rank needs all columns but only its own rows. Its rows' share of
//! the loss, `Σ_{i own} row_i / M`, gives complete gradients for its own `a_i` and a
//! partial gradient for every `b_j`; summing the partials over ranks with one
//! reduce-scatter hands each rank the full gradient of its own losses.
//! Per rank: O(m·N) compute; two collectives (the columns packed with their embeddings,
//! the column gradients) moving O(N·(1+d)) values, and a third for the block sizes
//! unless the caller knows them ([`ContrastInputs::counts`]).

use crate::error::Result;
use rpo_comm::{all_gather_counts, all_gather_known, reduce_scatter_varlen, Collective};
use rpo_losses::{rpo_row_losses, Weighting};
use tch::{Kind, Tensor};

use crate::gather::{grads, leaf};
use crate::{ContrastGrads, ContrastInputs};

pub fn contrast(
    scope: &dyn Collective,
    inputs: &ContrastInputs,
    weighting: &Weighting,
    beta: f64,
) -> Result<ContrastGrads> {
    // Every rank runs every collective below, whatever its block sizes.
    let (m, n) = (inputs.chosen.size()[0], inputs.rejected.size()[0]);
    let counts: Vec<[i64; 2]> = match inputs.counts {
        Some(known) => known.to_vec(),
        None => all_gather_counts(scope, &[m, n])?
            .into_iter()
            .map(|c| [c[0], c[1]])
            .collect(),
    };
    let rows: i64 = counts.iter().map(|c| c[0]).sum();
    let first_row: i64 = counts[..scope.rank()].iter().map(|c| c[0]).sum();
    let lose_counts: Vec<i64> = counts.iter().map(|c| c[1]).collect();
    let cols: i64 = lose_counts.iter().sum();

    // The columns: every rank's lose log-ratios, with their prompt embeddings alongside.
    let packed = pack(inputs.rejected, inputs.lose_emb);
    let columns = all_gather_known(scope, &packed, &lose_counts)?;
    let (b_all, lose_emb) = unpack(&columns, inputs.rejected.kind(), inputs.lose_emb);

    let a = leaf(inputs.chosen);
    let b = leaf(&b_all);
    let (loss_share, grad_a, grad_b_all) = if m > 0 && cols > 0 {
        let own_rows = rpo_row_losses(
            &a,
            &b,
            inputs.win_emb,
            lose_emb.as_ref(),
            weighting,
            beta,
            first_row,
        )?;
        let share = own_rows.sum(own_rows.kind()) / rows as f64;
        let g = grads(&share, &[&a, &b]);
        (
            share.detach().to_kind(Kind::Double),
            g[0].shallow_clone(),
            g[1].shallow_clone(),
        )
    } else {
        (
            Tensor::zeros([], (Kind::Double, a.device())),
            a.zeros_like().detach(),
            b.zeros_like().detach(),
        )
    };
    let grad_b = reduce_scatter_varlen(scope, &grad_b_all, &lose_counts)?;
    Ok(ContrastGrads {
        loss_share,
        chosen: grad_a,
        rejected: grad_b,
        rows,
        cols,
    })
}

/// `[n, 1 + d]`: log-ratios in column 0, embeddings after, in the wider of their kinds.
fn pack(logratios: &Tensor, emb: Option<&Tensor>) -> Tensor {
    let column = logratios.detach().unsqueeze(1);
    match emb {
        None => column,
        Some(e) => {
            let kind = if logratios.kind() == Kind::Double || e.kind() == Kind::Double {
                Kind::Double
            } else {
                Kind::Float
            };
            Tensor::cat(&[column.to_kind(kind), e.detach().to_kind(kind)], 1)
        }
    }
}

fn unpack(packed: &Tensor, kind: Kind, emb: Option<&Tensor>) -> (Tensor, Option<Tensor>) {
    let logratios = packed.select(1, 0).to_kind(kind);
    let emb = emb.map(|e| packed.narrow(1, 1, e.size()[1]).to_kind(e.kind()));
    (logratios, emb)
}

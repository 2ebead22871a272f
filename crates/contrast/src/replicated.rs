//! The oracle form: every rank gathers the whole scope and computes the whole matrix with
//! the single-process loss, then keeps the gradient of its own entries. Simple and
//! obviously right; O(M·N) per rank.

use crate::error::Result;
use rpo_comm::Collective;
use rpo_losses::{rpo_loss, Weighting};
use tch::{Kind, Tensor};

use crate::gather::{gather_embeddings, grads, leaf, Gathered};
use crate::{ContrastGrads, ContrastInputs};

pub fn contrast(
    scope: &dyn Collective,
    inputs: &ContrastInputs,
    weighting: &Weighting,
    beta: f64,
) -> Result<ContrastGrads> {
    let known = |side: usize| inputs.counts.map(|c| c.iter().map(|r| r[side]).collect());
    let wins = Gathered::new(scope, inputs.chosen, known(0))?;
    let losses = Gathered::new(scope, inputs.rejected, known(1))?;
    let win_emb = gather_embeddings(scope, inputs.win_emb, &wins.counts)?;
    let lose_emb = gather_embeddings(scope, inputs.lose_emb, &losses.counts)?;
    let (rows, cols) = (wins.total(), losses.total());
    let (m, n) = (inputs.chosen.size()[0], inputs.rejected.size()[0]);
    let rank = scope.rank();

    let a = leaf(&wins.all);
    let b = leaf(&losses.all);
    if rows == 0 || cols == 0 {
        return Ok(ContrastGrads {
            loss_share: Tensor::zeros([], (Kind::Double, inputs.chosen.device())),
            chosen: inputs.chosen.zeros_like(),
            rejected: inputs.rejected.zeros_like(),
            rows,
            cols,
        });
    }
    let loss = rpo_loss(&a, &b, win_emb.as_ref(), lose_emb.as_ref(), weighting, beta)?;
    let g = grads(&loss, &[&a, &b]);
    Ok(ContrastGrads {
        // Every rank holds the whole loss: an equal share each.
        loss_share: loss.detach().to_kind(Kind::Double) / scope.world_size() as f64,
        chosen: g[0].narrow(0, wins.offset(rank), m),
        rejected: g[1].narrow(0, losses.offset(rank), n),
        rows,
        cols,
    })
}

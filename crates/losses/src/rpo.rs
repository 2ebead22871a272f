//! Relative Preference Optimization loss (paper §3, Eq. 14).
//!
//! Contrast matrix entry `(i, j)`: win `i` against lose `j`, with
//! `ℓ_ij = −log σ(β · w_ij · (a_i − b_j))`, `a`/`b` the win/lose log-ratios.
//! The loss is the mean over rows of a per-row loss, so a row-partitioned caller can
//! compute its own rows against every column and divide the sum by the global row count.

use crate::error::Result;
use tch::{Kind, Tensor};

use crate::checks::vector_len;
use crate::precision::at_least_f32;
use crate::weighting::{contrast_weights, diagonal_mask, RowBlock, Weighting};

/// RPO loss over the whole contrast matrix: a scalar.
///
/// - `chosen_logratios`: `a`, `[M]`; `rejected_logratios`: `b`, `[N]`.
///   Paired data is `M = N` with win `i` and lose `i` from the same prompt; unpaired is any `M × N`.
/// - `win_emb` `[M, d]` and `lose_emb` `[N, d]`: prompt embeddings (need not be normalised),
///   read only by [`Weighting::Embedding`]. For paired data pass the same prompts twice.
///
/// For every weighting except [`Weighting::DiagonalCode`] this is
/// `1/(M·N) Σ_ij −log σ(β · w_ij · (a_i − b_j))`.
pub fn rpo_loss(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    win_emb: Option<&Tensor>,
    lose_emb: Option<&Tensor>,
    weighting: &Weighting,
    beta: f64,
) -> Result<Tensor> {
    let m = vector_len(chosen_logratios, "chosen log-ratios")?;
    let n = vector_len(rejected_logratios, "rejected log-ratios")?;
    ensure!(
        m > 0 && n > 0,
        Shape,
        "RPO needs at least one win and one lose response, got {m} and {n}"
    );
    if weighting.is_diagonal() {
        ensure!(
            m == n, Shape,
            "{weighting:?} needs paired data (a square contrast matrix), got {m} wins and {n} losses"
        );
    }
    let rows = rpo_row_losses(
        chosen_logratios,
        rejected_logratios,
        win_emb,
        lose_emb,
        weighting,
        beta,
        0,
    )?;
    Ok(rows.mean(None))
}

/// Per-row RPO losses `[m]` for the rows `first_row .. first_row + m` of the contrast
/// matrix; the loss is their sum over all rows divided by the total row count `M`.
///
/// `chosen_logratios` `[m]` and `win_emb` `[m, d]` are the block's own wins;
/// `rejected_logratios` `[N]` and `lose_emb` `[N, d]` are every column, since the
/// embedding softmax normalises over the whole row. `first_row` places the block's
/// rows on the diagonal of a paired matrix (0 for a single process).
///
/// Row loss: `mean_j ℓ_ij`, or `α·ℓ_ii + (1−α)·mean_{j≠i} ℓ_ij` for [`Weighting::DiagonalCode`].
pub fn rpo_row_losses(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
    win_emb: Option<&Tensor>,
    lose_emb: Option<&Tensor>,
    weighting: &Weighting,
    beta: f64,
    first_row: i64,
) -> Result<Tensor> {
    let block = RowBlock {
        first_row,
        rows: vector_len(chosen_logratios, "chosen log-ratios")?,
        cols: vector_len(rejected_logratios, "rejected log-ratios")?,
    };
    ensure!(
        block.cols > 0,
        Shape,
        "RPO needs at least one lose response per contrast row"
    );
    let a = at_least_f32(chosen_logratios);
    let b = at_least_f32(rejected_logratios).to_device(a.device());
    let weights = contrast_weights(weighting, block, win_emb, lose_emb, (a.kind(), a.device()))?;
    let differences = a.unsqueeze(1) - b.unsqueeze(0);
    let entry_losses = -(differences * weights * beta).log_sigmoid();
    match *weighting {
        Weighting::DiagonalCode { alpha } => {
            diagonal_emphasis_rows(&entry_losses, block, alpha, a.kind())
        }
        _ => Ok(entry_losses.mean_dim(1, false, None)),
    }
}

/// `α·ℓ_ii + (1−α)·mean_{j≠i} ℓ_ij` for each row of `entry_losses`.
fn diagonal_emphasis_rows(
    entry_losses: &Tensor,
    block: RowBlock,
    alpha: f64,
    kind: Kind,
) -> Result<Tensor> {
    ensure!(
        block.cols >= 2, Shape,
        "DiagonalCode weighting averages the off-diagonal entries, which needs at least 2 pairs (got {})",
        block.cols
    );
    let diagonal = diagonal_mask(block, entry_losses.device()).to_kind(kind);
    let off_diagonal = diagonal.ones_like() - &diagonal;
    let on = (entry_losses * &diagonal).sum_dim_intlist(1, false, None);
    let off =
        (entry_losses * off_diagonal).sum_dim_intlist(1, false, None) / (block.cols - 1) as f64;
    Ok(on * alpha + off * (1.0 - alpha))
}

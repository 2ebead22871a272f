//! Weighting strategies for the RPO contrast matrix (paper §3.2).
//!
//! The paper text and the reference code differ in two places; both forms are
//! supported and named after their source (see docs/reference-facts.md).

use crate::error::{LossError, Result};
use tch::{Device, Kind, Tensor};

/// How entry `(i, j)` of the contrast matrix (win `i` against lose `j`) is weighted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// Embedding distance reweighting as the reference code runs it:
    /// `w_ij = softmax_j(−(1 − cos(e_w,i, e_l,j)) / τ)`, inside the sigmoid.
    /// (The paper's Eq. 10 prints `exp(−cos/τ)`; the code's distance form favours
    /// similar prompts and is the one that produced the paper's results.)
    Embedding { tau: f64 },
    /// The paper's uniform strategy: `w_ij = 1/N` inside the sigmoid.
    UniformPaper,
    /// The reference code without embeddings: `w_ij = 1`; the 1/N comes only from the mean.
    UniformCode,
    /// The paper's Eq. 13 (paired only): `α` on the diagonal, `(1−α)/(M−1)` off it,
    /// inside the sigmoid.
    DiagonalPaper { alpha: f64 },
    /// The reference code's diagonal emphasis (paired only): unweighted entries, and
    /// each row's loss is `α·ℓ_ii + (1−α)·mean_{j≠i} ℓ_ij`.
    DiagonalCode { alpha: f64 },
}

impl Weighting {
    /// Whether the strategy needs a square, paired matrix (win `i` and lose `i` share a prompt).
    pub fn is_diagonal(&self) -> bool {
        matches!(self, Self::DiagonalPaper { .. } | Self::DiagonalCode { .. })
    }

    /// Whether the strategy reads prompt embeddings.
    pub fn uses_embeddings(&self) -> bool {
        matches!(self, Self::Embedding { .. })
    }
}

/// A block of contrast-matrix rows: rows `first_row .. first_row + rows` of a matrix
/// with `cols` columns. A single process uses the whole matrix; a rank of a
/// row-partitioned global matrix uses its own rows against every column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowBlock {
    pub first_row: i64,
    pub rows: i64,
    pub cols: i64,
}

impl RowBlock {
    /// The whole `rows × cols` matrix.
    pub fn full(rows: i64, cols: i64) -> Self {
        Self {
            first_row: 0,
            rows,
            cols,
        }
    }
}

/// Weights `w_ij` that multiply `(a_i − b_j)` inside the sigmoid, for the rows of `block`.
///
/// `win_emb` holds the block's win-prompt embeddings `[rows, d]` and `lose_emb` all
/// lose-prompt embeddings `[cols, d]`; only [`Weighting::Embedding`] reads them.
pub fn contrast_weights(
    weighting: &Weighting,
    block: RowBlock,
    win_emb: Option<&Tensor>,
    lose_emb: Option<&Tensor>,
    options: (Kind, Device),
) -> Result<Tensor> {
    let shape = [block.rows, block.cols];
    if weighting.is_diagonal() {
        ensure!(
            block.first_row >= 0 && block.first_row + block.rows <= block.cols, Shape,
            "{weighting:?} needs a square paired contrast matrix, but rows {}..{} exceed its {} columns",
            block.first_row,
            block.first_row + block.rows,
            block.cols
        );
    }
    match *weighting {
        Weighting::Embedding { tau } => {
            let (win, lose) = match (win_emb, lose_emb) {
                (Some(w), Some(l)) => (w, l),
                _ => {
                    return Err(LossError::Invalid(format!(
                        "{weighting:?} needs both win and lose prompt embeddings"
                    )))
                }
            };
            let w = embedding_weights(win, lose, tau, options.0)?.to_device(options.1);
            ensure!(
                w.size() == shape,
                Shape,
                "embedding weights {:?} do not match the contrast block {shape:?} \
                 (one win embedding per row, one lose embedding per column)",
                w.size()
            );
            Ok(w)
        }
        Weighting::UniformPaper => Ok(Tensor::full(shape, 1.0 / block.cols as f64, options)),
        Weighting::UniformCode | Weighting::DiagonalCode { .. } => Ok(Tensor::ones(shape, options)),
        Weighting::DiagonalPaper { alpha } => {
            // With one column there is no off-diagonal entry, so its weight is moot.
            let off = if block.cols > 1 {
                (1.0 - alpha) / (block.cols - 1) as f64
            } else {
                0.0
            };
            let off_weights = Tensor::full(shape, off, options);
            Ok(off_weights.masked_fill(&diagonal_mask(block, options.1), alpha))
        }
    }
}

/// Row-softmax of negative cosine distance between win and lose prompt embeddings:
/// `softmax_j(−(1 − ê_w,i · ê_l,j) / τ)`, with `ê` the L2-normalised embeddings. `[M, N]`.
pub fn embedding_weights(
    win_emb: &Tensor,
    lose_emb: &Tensor,
    tau: f64,
    kind: Kind,
) -> Result<Tensor> {
    ensure!(
        tau > 0.0,
        Invalid,
        "embedding temperature τ must be positive, got {tau}"
    );
    let (ws, ls) = (win_emb.size(), lose_emb.size());
    ensure!(
        ws.len() == 2 && ls.len() == 2 && ws[1] == ls[1],
        Shape,
        "prompt embeddings must be [M, d] and [N, d] with one d, got {ws:?} and {ls:?}"
    );
    let win = unit_rows(&win_emb.to_kind(kind));
    let lose = unit_rows(&lose_emb.to_device(win_emb.device()).to_kind(kind));
    let cos_distance: Tensor = 1.0 - win.mm(&lose.tr());
    Ok((cos_distance / -tau).softmax(1, kind))
}

/// Rows scaled to unit L2 norm (a zero row stays zero, as `F.normalize` does).
fn unit_rows(x: &Tensor) -> Tensor {
    let norms = x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / norms
}

/// `[rows, cols]` mask that is true where the global row index equals the column index.
pub fn diagonal_mask(block: RowBlock, device: Device) -> Tensor {
    let rows = Tensor::arange_start(
        block.first_row,
        block.first_row + block.rows,
        (Kind::Int64, device),
    );
    let cols = Tensor::arange(block.cols, (Kind::Int64, device));
    rows.unsqueeze(1).eq_tensor(&cols.unsqueeze(0))
}

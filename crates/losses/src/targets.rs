//! Response-only log-probs: the LM head and log-softmax run only at the positions whose
//! next token is scored, never at prompt or padding positions.
//!
//! A [`ScoredTargets`] lists those positions as flat indices into the `[R·T]` positions
//! of a batch of rows, with the token each predicts and the sequence whose sum it joins.
//! One position may appear twice (a shared prompt's last position predicts the first
//! token of both the chosen and the rejected response).

use crate::error::Result;
use tch::{Kind, Tensor};

use crate::precision::at_least_f32;

/// The scored positions of a batch of rows `[R, T]`.
#[derive(Debug)]
pub struct ScoredTargets {
    /// `[N]` int64 flat positions `row · T + t`.
    pub index: Tensor,
    /// `[N]` int64 token predicted at each position.
    pub ids: Tensor,
    /// `[N]` int64 sequence each log-prob is summed into.
    pub seq: Tensor,
    /// Number of sequences.
    pub count: i64,
}

impl ScoredTargets {
    /// The positions where `loss_mask` `[B, T]` is non-zero, one sequence per row
    /// (the padded layout: `labels[b, t]` is the token position `t` predicts).
    pub fn from_mask(labels: &Tensor, loss_mask: &Tensor) -> Result<Self> {
        ensure!(
            labels.size() == loss_mask.size() && labels.dim() == 2,
            Shape,
            "labels {:?} and loss_mask {:?} must both be [B, T]",
            labels.size(),
            loss_mask.size()
        );
        let (rows, width) = (labels.size()[0], labels.size()[1]);
        let index = loss_mask.reshape([-1]).ne(0).nonzero().squeeze_dim(1);
        Ok(Self {
            ids: labels
                .reshape([-1])
                .to_kind(Kind::Int64)
                .index_select(0, &index),
            seq: index.divide_scalar_mode(width, "floor"),
            index,
            count: rows,
        })
    }

    pub fn shallow_clone(&self) -> Self {
        Self {
            index: self.index.shallow_clone(),
            ids: self.ids.shallow_clone(),
            seq: self.seq.shallow_clone(),
            count: self.count,
        }
    }

    pub fn len(&self) -> i64 {
        self.index.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Target ranges `(start, len)` of at most `chunk_tokens` targets each.
    pub fn chunks(&self, chunk_tokens: i64) -> Vec<(i64, i64)> {
        let (n, step) = (self.len(), chunk_tokens.max(1));
        (0..n)
            .step_by(step as usize)
            .map(|start| (start, step.min(n - start)))
            .collect()
    }

    /// Log-probs `[n]` (fp32 at least) of targets `start .. start + n` from their logits `[n, V]`.
    pub fn token_logps(&self, logits: &Tensor, start: i64, n: i64) -> Tensor {
        at_least_f32(logits)
            .log_softmax(-1, None)
            .gather(-1, &self.ids.narrow(0, start, n).unsqueeze(-1), false)
            .squeeze_dim(-1)
    }

    /// Adds token log-probs `[n]` of targets `start .. start + n` into per-sequence sums.
    pub fn sum_into(&self, sums: &Tensor, token_logps: &Tensor, start: i64) -> Tensor {
        let n = token_logps.size()[0];
        sums.index_add(0, &self.seq.narrow(0, start, n), token_logps)
    }

    /// The hidden states `[n, H]` at targets `start .. start + n` of `hidden` `[R, T, H]`.
    pub fn hidden_at(&self, hidden: &Tensor, start: i64, n: i64) -> Tensor {
        let width = *hidden.size().last().expect("hidden states [R, T, H]");
        hidden
            .reshape([-1, width])
            .index_select(0, &self.index.narrow(0, start, n))
    }
}

/// Summed log-probs `[count]` of each sequence's targets from the hidden states `[R, T, H]`
/// before the LM head: `head` runs on at most `chunk_tokens` target positions at a time,
/// so fp32 logits exist only for those.
pub fn targets_logps_chunked(
    hidden: &Tensor,
    head: &dyn Fn(&Tensor) -> Tensor,
    targets: &ScoredTargets,
    chunk_tokens: i64,
) -> Result<Tensor> {
    ensure!(hidden.dim() == 3, Shape, "hidden states must be [R, T, H]");
    let kind = if hidden.kind() == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    };
    let mut sums = Tensor::zeros([targets.count], (kind, hidden.device()));
    for (start, n) in targets.chunks(chunk_tokens) {
        let logits = head(&targets.hidden_at(hidden, start, n));
        let lp = targets.token_logps(&logits, start, n);
        sums = targets.sum_into(&sums, &lp.to_kind(kind), start);
    }
    Ok(sums)
}

//! Laying sequences out in rows so the model does less work than a padded batch:
//!
//! - **Shared prompt** (`[train] share_prompt`): a pair becomes one group
//!   `[prompt, chosen response, rejected response]`. The prompt runs once; both
//!   responses attend to its keys and values, the rejected tokens never see the chosen
//!   ones, and both responses' positions continue from the prompt's end (the rejected
//!   ones restart at `prompt_len`). Gradients from both branches meet on the prompt.
//! - **Packing** (`[train] pack`): groups are placed first-fit (longest first) into rows
//!   of at most `pack_tokens` tokens (at least the longest group), each group's block of
//!   the mask causal and blind to the other groups, its positions restarting at 0.
//!
//! Only the layout of one rank's micro-batch changes; which examples share it (and so a
//! contrast matrix) does not. Sequences and their log-prob order are those of the padded
//! batch (a paired batch: chosen 0..B, then rejected 0..B).

use crate::error::{Result, TrainError};
use rpo_data::batch::SeqBatch;
use rpo_losses::ScoredTargets;
use rpo_model::RowLayout;
use rpo_zero::PackedRows;
use tch::{Kind, Tensor};

/// How a micro-batch's sequences are laid out for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    /// A pair's prompt runs once for both responses.
    pub share_prompt: bool,
    /// Several groups per row, up to `row_tokens`.
    pub pack: bool,
    /// Row width when packing (0: the longest group); never below the longest group.
    pub row_tokens: usize,
}

impl Packing {
    /// Right-padded rows, one sequence each (the layout of the reference code).
    pub const PADDED: Packing = Packing {
        share_prompt: false,
        pack: false,
        row_tokens: 0,
    };

    pub fn is_padded(&self) -> bool {
        !self.share_prompt && !self.pack
    }
}

/// A sequence as collated: its ids (unpadded) and prompt length.
struct Seq {
    ids: Vec<i64>,
    prompt_len: usize,
}

/// The sequences of a padded batch, recovered from its ids, lengths and loss mask (the
/// first masked position is the prompt's last token).
fn sequences(batch: &SeqBatch) -> Result<Vec<Seq>> {
    let width = batch.width();
    let ids = Vec::<i64>::try_from(batch.input_ids.reshape([-1]))?;
    let mask = Vec::<f32>::try_from(batch.loss_mask.reshape([-1]).to_kind(Kind::Float))?;
    batch
        .lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| {
            let row = b * width;
            let first = mask[row..row + len]
                .iter()
                .position(|&m| m != 0.0)
                .ok_or_else(|| {
                    TrainError::Sequences(format!("sequence {b} has no response token"))
                })?;
            Ok(Seq {
                ids: ids[row..row + len].to_vec(),
                prompt_len: first + 1,
            })
        })
        .collect()
}

/// A prompt and the responses that continue it; each response's log-prob is sequence
/// `seq` of the batch.
struct Group<'a> {
    prefix: &'a [i64],
    branches: Vec<(&'a [i64], i64)>,
}

impl Group<'_> {
    fn len(&self) -> usize {
        self.prefix.len() + self.branches.iter().map(|(t, _)| t.len()).sum::<usize>()
    }
}

fn single(seq: &Seq, index: i64) -> Group<'_> {
    Group {
        prefix: &seq.ids[..seq.prompt_len],
        branches: vec![(&seq.ids[seq.prompt_len..], index)],
    }
}

/// A paired batch (`chosen`, `rejected` of B pairs each) as packed rows: sequences
/// `0..B` are the chosen responses, `B..2B` the rejected ones.
pub fn pack_pairs(
    chosen: &SeqBatch,
    rejected: &SeqBatch,
    packing: Packing,
    pad: i64,
) -> Result<PackedRows> {
    let (c, r) = (sequences(chosen)?, sequences(rejected)?);
    ensure!(
        c.len() == r.len(),
        Sequences,
        "chosen and rejected counts differ"
    );
    let b = c.len() as i64;
    let mut groups = Vec::new();
    for (i, (c, r)) in c.iter().zip(&r).enumerate() {
        let i = i as i64;
        let prompt = &c.ids[..c.prompt_len];
        if packing.share_prompt && prompt == &r.ids[..r.prompt_len] {
            groups.push(Group {
                prefix: prompt,
                branches: vec![(&c.ids[c.prompt_len..], i), (&r.ids[r.prompt_len..], b + i)],
            });
        } else {
            // Truncation cut the two prompts differently: no sharing for this pair.
            groups.push(single(c, i));
            groups.push(single(r, b + i));
        }
    }
    lay_out(&groups, 2 * b, packing, pad)
}

/// Sequences of one padded batch as packed rows (one sequence per group).
pub fn pack_sequences(batch: &SeqBatch, packing: Packing, pad: i64) -> Result<PackedRows> {
    let seqs = sequences(batch)?;
    let groups: Vec<Group> = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| single(s, i as i64))
        .collect();
    lay_out(&groups, seqs.len() as i64, packing, pad)
}

/// Places groups in rows (first-fit, longest first, when packing; one per row
/// otherwise) and builds ids, positions, the mask and the scored targets.
fn lay_out(groups: &[Group], count: i64, packing: Packing, pad: i64) -> Result<PackedRows> {
    let longest = groups.iter().map(Group::len).max().unwrap_or(1);
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new(); // (filled, groups)
    if packing.pack {
        let capacity = packing.row_tokens.max(longest);
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&g| std::cmp::Reverse(groups[g].len()));
        for g in order {
            let len = groups[g].len();
            match rows.iter_mut().find(|(filled, _)| filled + len <= capacity) {
                Some(row) => {
                    row.0 += len;
                    row.1.push(g);
                }
                None => rows.push((len, vec![g])),
            }
        }
    } else {
        rows = groups
            .iter()
            .enumerate()
            .map(|(g, x)| (x.len(), vec![g]))
            .collect();
    }
    let width = rows.iter().map(|(filled, _)| *filled).max().unwrap_or(1);
    let cells = rows.len() * width;
    let mut ids = vec![pad; cells];
    let mut positions = vec![0i64; cells];
    // Group and branch of each token: padding is group -1, which sees only padding.
    let mut group_of = vec![-1i64; cells];
    let mut branch_of = vec![0i64; cells];
    let (mut t_index, mut t_ids, mut t_seq) = (Vec::new(), Vec::new(), Vec::new());
    for (r, (_, members)) in rows.iter().enumerate() {
        let mut at = r * width;
        for &g in members {
            let group = &groups[g];
            let p = group.prefix.len();
            for (j, &tok) in group.prefix.iter().enumerate() {
                ids[at + j] = tok;
                positions[at + j] = j as i64;
                group_of[at + j] = g as i64;
            }
            let prompt_last = at + p - 1;
            at += p;
            for (k, &(tokens, seq)) in group.branches.iter().enumerate() {
                // The prompt's last token predicts the response's first.
                let mut from = prompt_last;
                for (j, &tok) in tokens.iter().enumerate() {
                    ids[at + j] = tok;
                    positions[at + j] = (p + j) as i64;
                    group_of[at + j] = g as i64;
                    branch_of[at + j] = k as i64 + 1;
                    t_index.push(from as i64);
                    t_ids.push(tok);
                    t_seq.push(seq);
                    from = at + j;
                }
                at += tokens.len();
            }
        }
    }
    let shape = [rows.len() as i64, width as i64];
    let group = Tensor::from_slice(&group_of).view(shape);
    let branch = Tensor::from_slice(&branch_of).view(shape);
    let causal = Tensor::ones([width as i64, width as i64], (Kind::Bool, tch::Device::Cpu)).tril(0);
    let same_group = group.unsqueeze(2).eq_tensor(&group.unsqueeze(1));
    let branch_k = branch.unsqueeze(1);
    let sees_branch = branch_k
        .eq(0)
        .logical_or(&branch.unsqueeze(2).eq_tensor(&branch_k));
    let allowed = same_group.logical_and(&sees_branch).logical_and(&causal);
    Ok(PackedRows {
        ids: Tensor::from_slice(&ids).view(shape),
        layout: RowLayout {
            positions: Tensor::from_slice(&positions).view(shape),
            allowed,
        },
        targets: ScoredTargets {
            index: Tensor::from_slice(&t_index),
            ids: Tensor::from_slice(&t_ids),
            seq: Tensor::from_slice(&t_seq),
            count,
        },
    })
}

/// Positions the model computes for packed rows `[R, T]`.
pub fn tokens_computed(rows: &PackedRows) -> usize {
    rows.ids.numel()
}

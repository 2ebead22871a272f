//! Collectives whose per-rank blocks differ in length (an unpaired batch can leave a rank
//! with 3 wins and 5 losses), built on the fixed-size ones by padding each block to the
//! longest: every backend offers them, NCCL included, at the cost of the padding.

use crate::error::Result;
use tch::Tensor;

use crate::Collective;

/// Every rank's `t` `[n_r, ..]` concatenated in rank order, and the `n_r`.
pub fn all_gather_varlen(c: &dyn Collective, t: &Tensor) -> Result<(Tensor, Vec<i64>)> {
    let counts: Vec<i64> = all_gather_counts(c, &[t.size()[0]])?
        .into_iter()
        .map(|r| r[0])
        .collect();
    Ok((all_gather_known(c, t, &counts)?, counts))
}

/// [`all_gather_varlen`] when every rank's row count `counts[r]` is already known
/// (one collective instead of two).
pub fn all_gather_known(c: &dyn Collective, t: &Tensor, counts: &[i64]) -> Result<Tensor> {
    ensure!(
        counts.len() == c.world_size() && t.size()[0] == counts[c.rank()],
        "all_gather_known: {} rows here, counts {counts:?}",
        t.size()[0]
    );
    let longest = counts.iter().copied().max().unwrap_or(0);
    let gathered = c.all_gather(&pad_rows(t, longest))?;
    let blocks: Vec<Tensor> = counts
        .iter()
        .enumerate()
        .map(|(r, &k)| gathered.narrow(0, r as i64 * longest, k))
        .collect();
    Ok(Tensor::cat(&blocks, 0))
}

/// Sums `t` `[Σ n_r, ..]` over ranks and returns this rank's rows `[n_rank, ..]`, where
/// `counts` are the `n_r` (as [`all_gather_varlen`] returned them).
pub fn reduce_scatter_varlen(c: &dyn Collective, t: &Tensor, counts: &[i64]) -> Result<Tensor> {
    ensure!(
        counts.len() == c.world_size() && t.size()[0] == counts.iter().sum::<i64>(),
        "reduce_scatter_varlen: {} rows for counts {counts:?}",
        t.size()[0]
    );
    let longest = counts.iter().copied().max().unwrap_or(0);
    let mut start = 0;
    let mut blocks = Vec::with_capacity(counts.len());
    for &k in counts {
        blocks.push(pad_rows(&t.narrow(0, start, k), longest));
        start += k;
    }
    let mine = c.reduce_scatter(&Tensor::cat(&blocks, 0))?;
    Ok(mine.narrow(0, 0, counts[c.rank()]))
}

/// Element-wise sums over ranks of a few host numbers (metrics, counts).
pub fn all_reduce_f64s(c: &dyn Collective, values: &mut [f64]) -> Result<()> {
    if c.world_size() == 1 || values.is_empty() {
        return Ok(());
    }
    let mut t = Tensor::from_slice(values).to_device(c.device());
    c.all_reduce(&mut t)?;
    let summed = crate::host::to_host_f64s(&t)?;
    values.copy_from_slice(&summed);
    Ok(())
}

/// Every rank's few counts (the same number on every rank), in rank order, in one call.
pub fn all_gather_counts(c: &dyn Collective, counts: &[i64]) -> Result<Vec<Vec<i64>>> {
    let mine = Tensor::from_slice(counts).to_device(c.device());
    let flat = crate::host::to_host_i64s(&c.all_gather(&mine)?)?;
    Ok(flat
        .chunks(counts.len().max(1))
        .map(<[i64]>::to_vec)
        .collect())
}

/// `t` with zero rows appended up to `rows`.
fn pad_rows(t: &Tensor, rows: i64) -> Tensor {
    let n = t.size()[0];
    if n == rows {
        return t.shallow_clone();
    }
    let mut shape = t.size();
    shape[0] = rows - n;
    Tensor::cat(
        &[
            t.shallow_clone(),
            t.new_zeros(&shape, (t.kind(), t.device())),
        ],
        0,
    )
}

//! Checks every collective of a communicator against values each rank can compute alone
//! (like nccl-tests' correctness mode): run under `mpirun` it proves the wiring of a
//! cluster before a long job; in CI it proves the backends.

use crate::error::{CommError, Result};
use tch::{Device, Kind, Tensor};

use crate::{all_gather_varlen, reduce_scatter_varlen, Collective};

/// One named check and its largest absolute error (0 where the result is exact).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub max_error: f64,
    pub passed: bool,
}

/// Rank `r`'s block for the checks: `n` rows of `d` values, all distinct across ranks.
fn block(rank: usize, n: i64, d: i64, kind: Kind, device: Device) -> Tensor {
    (Tensor::arange(n * d, (Kind::Double, Device::Cpu)).view([n, d]) + 1000.0 * rank as f64)
        .to_kind(kind)
        .to_device(device)
}

pub fn compare(name: &str, got: &Tensor, want: &Tensor, tol: f64) -> Check {
    let got = got.to_device(Device::Cpu).to_kind(Kind::Double);
    let want = want.to_device(Device::Cpu).to_kind(Kind::Double);
    let max_error = if got.size() != want.size() {
        f64::INFINITY
    } else if got.numel() == 0 {
        0.0
    } else {
        (got - want).abs().max().double_value(&[])
    };
    Check {
        name: name.to_string(),
        max_error,
        passed: max_error <= tol,
    }
}

/// Every collective of `c` in `kinds`, plus the padded variable-length ones and a split.
pub fn check_collectives(c: &dyn Collective, kinds: &[Kind]) -> Result<Vec<Check>> {
    let (w, r, dev) = (c.world_size(), c.rank(), c.device());
    let mut checks = Vec::new();
    for &kind in kinds {
        let tag = format!("{kind:?}");
        let (n, d) = (3, 5);
        // Values up to ~1000·W are exact in bf16 only below 256; keep bf16 sums small.
        let tol = if kind == Kind::BFloat16 || kind == Kind::Half {
            1e-2 * (w as f64) * 1000.0
        } else {
            0.0
        };
        let every: Vec<Tensor> = (0..w).map(|q| block(q, n, d, kind, dev)).collect();
        let mine = &every[r];

        let gathered = c.all_gather(mine)?;
        checks.push(compare(
            &format!("all_gather {tag}"),
            &gathered,
            &Tensor::cat(&every, 0),
            0.0,
        ));

        let wide: Vec<Tensor> = (0..w)
            .map(|q| block(q, n * w as i64, d, kind, dev))
            .collect();
        let sum_wide = wide
            .iter()
            .map(|t| t.to_kind(Kind::Double))
            .reduce(|a, b| a + b)
            .expect("world ≥ 1");
        let scattered = c.reduce_scatter(&wide[r])?;
        checks.push(compare(
            &format!("reduce_scatter {tag}"),
            &scattered,
            &sum_wide.narrow(0, r as i64 * n, n),
            tol,
        ));

        let mut reduced = mine.copy();
        c.all_reduce(&mut reduced)?;
        let sum = every
            .iter()
            .map(|t| t.to_kind(Kind::Double))
            .reduce(|a, b| a + b)
            .expect("world ≥ 1");
        checks.push(compare(&format!("all_reduce {tag}"), &reduced, &sum, tol));

        let root = w - 1;
        let mut b = mine.copy();
        c.broadcast(&mut b, root)?;
        checks.push(compare(&format!("broadcast {tag}"), &b, &every[root], 0.0));
    }

    // Three collectives in flight at once, waited for in reverse order (start → handle →
    // wait): each must give what it gives alone.
    let every: Vec<Tensor> = (0..w).map(|q| block(q, 2, 3, Kind::Float, dev)).collect();
    let wide: Vec<Tensor> = (0..w)
        .map(|q| block(q, 2 * w as i64, 3, Kind::Float, dev))
        .collect();
    let gather = c.start_all_gather(&every[r])?;
    let scatter = c.start_reduce_scatter(&wide[r])?;
    let reduce = c.start_all_reduce(&every[r])?;
    let sum = |ts: &[Tensor]| {
        ts.iter()
            .map(|t| t.to_kind(Kind::Double))
            .reduce(|a, b| a + b)
            .expect("world ≥ 1")
    };
    checks.push(compare(
        "in flight together: all_reduce",
        &reduce.wait()?,
        &sum(&every),
        0.0,
    ));
    checks.push(compare(
        "in flight together: reduce_scatter",
        &scatter.wait()?,
        &sum(&wide).narrow(0, 2 * r as i64, 2),
        0.0,
    ));
    checks.push(compare(
        "in flight together: all_gather",
        &gather.wait()?,
        &Tensor::cat(&every, 0),
        0.0,
    ));

    // Rank q holds q + 1 rows: padded gathers and scatters must undo their padding.
    let var: Vec<Tensor> = (0..w)
        .map(|q| block(q, q as i64 + 1, 2, Kind::Float, dev))
        .collect();
    let (all, counts) = all_gather_varlen(c, &var[r])?;
    checks.push(compare(
        "all_gather_varlen",
        &all,
        &Tensor::cat(&var, 0),
        0.0,
    ));
    let total: i64 = counts.iter().sum();
    let column = Tensor::arange(total, (Kind::Float, Device::Cpu)).to_device(dev) + r as f64;
    let mine = reduce_scatter_varlen(c, &column, &counts)?;
    let offset: i64 = counts[..r].iter().sum();
    let w_sum: f64 = (0..w).map(|q| q as f64).sum();
    let want = Tensor::arange(total, (Kind::Float, Device::Cpu)).narrow(0, offset, counts[r])
        * w as f64
        + w_sum;
    checks.push(compare("reduce_scatter_varlen", &mine, &want, 0.0));

    // Pairs of ranks (or the lone rank) form sub-communicators that agree on their sums.
    let sub = c.split(r / 2)?;
    let mut one = Tensor::from_slice(&[r as f64]).to_device(dev);
    sub.all_reduce(&mut one)?;
    let first = (r / 2) * 2;
    let want: f64 = (first..(first + 2).min(w)).map(|q| q as f64).sum();
    checks.push(compare(
        "split into pairs",
        &one,
        &Tensor::from_slice(&[want]),
        0.0,
    ));
    if sub.world_size() != (first + 2).min(w) - first || sub.rank() != r - first {
        return Err(CommError::SelfTest(format!(
            "split: rank {} of {} in the pair, expected {} of {}",
            sub.rank(),
            sub.world_size(),
            r - first,
            (first + 2).min(w) - first
        )));
    }
    c.barrier()?;
    Ok(checks)
}

/// The checks as the whole group sees them: each error becomes the sum over ranks of
/// that check's error, so a check passes only where it passed on every rank.
pub fn agree(c: &dyn Collective, checks: Vec<Check>) -> Result<Vec<Check>> {
    let mut errors: Vec<f64> = checks
        .iter()
        .map(|k| {
            if k.max_error.is_finite() {
                k.max_error
            } else {
                1e300
            }
        })
        .collect();
    let mut failures: Vec<f64> = checks.iter().map(|k| f64::from(!k.passed as u8)).collect();
    crate::all_reduce_f64s(c, &mut errors)?;
    crate::all_reduce_f64s(c, &mut failures)?;
    Ok(checks
        .into_iter()
        .zip(errors.into_iter().zip(failures))
        .map(|(k, (e, f))| Check {
            name: k.name,
            max_error: e,
            passed: f == 0.0,
        })
        .collect())
}

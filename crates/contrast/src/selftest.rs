//! The definition of each contrast scope, checked: every rank draws the same random
//! global batch, computes its scope's loss and its own gradients through [`contrast`],
//! and compares them with the single-process loss of its scope's matrix (autograd over
//! the scope's whole concatenated batch). Run by `rpo-shard selftest` and by CI under
//! `mpirun -n 2` and `-n 4`.

use crate::error::Result;
use rpo_comm::selftest::{compare, Check};
use rpo_comm::Collective;
use rpo_losses::{rpo_loss, Weighting};
use tch::{Device, Kind, Tensor};

use crate::{contrast, ContrastForm, ContrastInputs, ContrastScope};

/// f64 inputs: both sides do the same arithmetic in a different order.
const TOLERANCE: f64 = 1e-10;

/// One rank's examples: log-ratios, labels (true = preferred) and prompt embeddings.
struct Examples {
    logratios: Tensor,
    desirable: Vec<bool>,
    emb: Tensor,
}

impl Examples {
    fn split(&self) -> (Tensor, Tensor, Tensor, Tensor) {
        let idx = |want: bool| {
            let i: Vec<i64> = (0..self.desirable.len() as i64)
                .filter(|&i| self.desirable[i as usize] == want)
                .collect();
            Tensor::from_slice(&i).to_device(self.logratios.device())
        };
        let (w, l) = (idx(true), idx(false));
        (
            self.logratios.index_select(0, &w),
            self.logratios.index_select(0, &l),
            self.emb.index_select(0, &w),
            self.emb.index_select(0, &l),
        )
    }
}

/// Rank `r`'s examples of a global batch every rank draws alike. Paired: B wins then B
/// losses, pair i sharing prompt i. Unpaired: rank 0 holds only wins and rank 1 only
/// losses (the case the paper's code skips), the others a mix.
fn rank_examples(rank: usize, per_rank: i64, dim: i64, paired: bool, device: Device) -> Examples {
    let opts = (Kind::Double, Device::Cpu);
    tch::manual_seed(1_000 + rank as i64);
    let b = per_rank;
    let (logratios, desirable, emb) = if paired {
        let prompts = Tensor::randn([b, dim], opts);
        (
            Tensor::randn([2 * b], opts) * 3.0,
            (0..2 * b).map(|i| i < b).collect(),
            Tensor::cat(&[&prompts, &prompts], 0),
        )
    } else {
        let labels = (0..b)
            .map(|i| match rank {
                0 => true,
                1 => false,
                _ => (i + rank as i64) % 3 != 0,
            })
            .collect();
        (
            Tensor::randn([b], opts) * 3.0,
            labels,
            Tensor::randn([b, dim], opts),
        )
    };
    Examples {
        logratios: logratios.to_device(device),
        desirable,
        emb: emb.to_device(device),
    }
}

/// Loss and gradients of the whole scope's matrix in one process, for the ranks `members`.
fn single_process(
    members: std::ops::Range<usize>,
    me: usize,
    (per_rank, dim, paired, device): (i64, i64, bool, Device),
    weighting: &Weighting,
    beta: f64,
) -> Result<(f64, Tensor, Tensor)> {
    let mut parts = (vec![], vec![], vec![], vec![]);
    let (mut win_offset, mut lose_offset, mut mine) = (0, 0, (0, 0));
    for q in members {
        let (a, b, ea, eb) = rank_examples(q, per_rank, dim, paired, device).split();
        if q == me {
            mine = (a.size()[0], b.size()[0]);
        } else if q < me {
            win_offset += a.size()[0];
            lose_offset += b.size()[0];
        }
        parts.0.push(a);
        parts.1.push(b);
        parts.2.push(ea);
        parts.3.push(eb);
    }
    let a = Tensor::cat(&parts.0, 0).set_requires_grad(true);
    let b = Tensor::cat(&parts.1, 0).set_requires_grad(true);
    if a.size()[0] == 0 || b.size()[0] == 0 {
        return Ok((
            0.0,
            Tensor::zeros([mine.0], (Kind::Double, device)),
            Tensor::zeros([mine.1], (Kind::Double, device)),
        ));
    }
    let (ea, eb) = (Tensor::cat(&parts.2, 0), Tensor::cat(&parts.3, 0));
    let emb = weighting.uses_embeddings();
    let loss = rpo_loss(
        &a,
        &b,
        emb.then_some(&ea),
        emb.then_some(&eb),
        weighting,
        beta,
    )?;
    let g = Tensor::run_backward(&[&loss], &[&a, &b], false, false);
    Ok((
        loss.double_value(&[]),
        g[0].narrow(0, win_offset, mine.0),
        g[1].narrow(0, lose_offset, mine.1),
    ))
}

/// Every scope that divides the world, both forms, paired and unpaired weightings.
pub fn check_contrast(world: &dyn Collective, per_rank: i64) -> Result<Vec<Check>> {
    let (w, r, device) = (world.world_size(), world.rank(), world.device());
    let dim = 8;
    let beta = 0.1;
    let mut scopes = vec![ContrastScope::Local, ContrastScope::Global];
    if w % 2 == 0 && w > 2 {
        scopes.push(ContrastScope::Group(2));
    }
    let paired_weightings = [
        Weighting::Embedding { tau: 0.5 },
        Weighting::UniformPaper,
        Weighting::UniformCode,
        Weighting::DiagonalPaper { alpha: 0.8 },
        Weighting::DiagonalCode { alpha: 0.8 },
    ];
    let unpaired_weightings = [
        Weighting::Embedding { tau: 0.75 },
        Weighting::UniformPaper,
        Weighting::UniformCode,
    ];
    let cases = paired_weightings
        .iter()
        .map(|wt| (true, wt))
        .chain(unpaired_weightings.iter().map(|wt| (false, wt)));
    let mut checks = Vec::new();
    for (paired, weighting) in cases {
        let own = rank_examples(r, per_rank, dim, paired, device);
        let (a, b, ea, eb) = own.split();
        let emb = weighting.uses_embeddings();
        for &scope in &scopes {
            let size = scope.size(w)?;
            let comm = scope.communicator(world)?;
            let first = (r / size) * size;
            // The scope ranks' block sizes, as a trainer knows them from the host.
            let known: Vec<[i64; 2]> = (first..first + size)
                .map(|q| {
                    let (a, b, _, _) = rank_examples(q, per_rank, dim, paired, device).split();
                    [a.size()[0], b.size()[0]]
                })
                .collect();
            let (want_loss, want_a, want_b) = single_process(
                first..first + size,
                r,
                (per_rank, dim, paired, device),
                weighting,
                beta,
            )?;
            let forms = [ContrastForm::RowPartitioned, ContrastForm::Replicated];
            for (form, counts) in forms
                .into_iter()
                .flat_map(|f| [(f, None), (f, Some(known.as_slice()))])
            {
                let inputs = ContrastInputs {
                    chosen: &a,
                    rejected: &b,
                    win_emb: emb.then_some(&ea),
                    lose_emb: emb.then_some(&eb),
                    counts,
                };
                let got = contrast(comm.as_ref(), &inputs, weighting, beta, form)?;
                let mut loss = [rpo_comm::host::to_host_f64(&got.loss_share)?];
                rpo_comm::all_reduce_f64s(comm.as_ref(), &mut loss)?;
                let name = format!(
                    "{} {weighting:?} scope={scope} form={form:?}{}",
                    if paired { "paired" } else { "unpaired" },
                    if counts.is_some() {
                        " counts=known"
                    } else {
                        ""
                    }
                );
                let loss = compare(
                    "",
                    &Tensor::from_slice(&loss),
                    &Tensor::from_slice(&[want_loss]),
                    TOLERANCE,
                );
                let ga = compare("", &got.chosen, &want_a, TOLERANCE);
                let gb = compare("", &got.rejected, &want_b, TOLERANCE);
                let max_error = loss.max_error.max(ga.max_error).max(gb.max_error);
                checks.push(Check {
                    name,
                    max_error,
                    passed: loss.passed && ga.passed && gb.passed,
                });
            }
        }
    }
    Ok(checks)
}

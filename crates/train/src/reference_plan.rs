//! Which sequences a run asks the reference about: the trainer's micro-batches (each
//! rank's slice, KTO's KL sequences per slice) and the reward-accuracy chunks, replayed on
//! the CPU without a model. `precompute-ref` computes them; a precomputed reference
//! checks its cache against their keys.

use crate::error::Result;
use rpo_data::batch::PairedBatch;
use std::collections::HashSet;
use tch::Device;

use crate::batches::{reference_inputs, MicroBatch, MicroBatches};
use crate::config::TrainConfig;
use crate::data_source::{reward_pairs, RunData};
use crate::device_seqs::DeviceSeqs;
use crate::objective::Objective;
use crate::reference_cache::row_keys;

/// One reference forward of the run: call `index` of `rank`'s slice of item `item` (a
/// preference micro-batch, then a reward-accuracy chunk).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) item: usize,
    pub(crate) rank: usize,
    pub(crate) index: usize,
}

/// Every reference forward the run makes, in order, with its sequences on `device`;
/// `only`: just that rank's. Reward-accuracy chunks (which rank 0 evaluates alone) are
/// dealt out to the ranks in turn.
pub(crate) fn for_each_call(
    cfg: &TrainConfig,
    objective: Objective,
    data: &RunData,
    ranks: usize,
    only: Option<usize>,
    device: Device,
    mut f: impl FnMut(Call, DeviceSeqs) -> Result<()>,
) -> Result<()> {
    let wanted = |rank: usize| only.is_none() || only == Some(rank);
    let (packing, pad) = (cfg.packing(), data.tokenizer.special().pad);
    let mut item = 0;
    // The preference phase starts its own sampler at the beginning (trainer::run_phase).
    let micro = cfg.train.micro_batch_size * ranks;
    let mut batches = MicroBatches::new(objective, data, micro, cfg.seed, Default::default())?;
    for _ in 0..cfg.train.steps * cfg.accumulation_steps(ranks) {
        let global = batches.next_global();
        for rank in (0..ranks).filter(|&r| wanted(r)) {
            let batch = batches.collate(rpo_data::rank_slice(&global, rank, ranks)?)?;
            for (index, seqs) in reference_inputs(&objective, &batch, device, packing, pad)?
                .into_iter()
                .enumerate()
            {
                f(Call { item, rank, index }, seqs)?;
            }
        }
        item += 1;
    }
    // As run::evaluate → evaluate::reward_accuracy draw them.
    for (c, chunk) in reward_pairs(cfg, data)
        .chunks(cfg.train.micro_batch_size)
        .enumerate()
    {
        let rank = c % ranks;
        if wanted(rank) {
            let refs: Vec<_> = chunk.iter().collect();
            let batch = MicroBatch::Paired(PairedBatch::from_examples(&refs, &data.tokenizer)?);
            for (index, seqs) in reference_inputs(&Objective::Dpo, &batch, device, packing, pad)?
                .into_iter()
                .enumerate()
            {
                f(Call { item, rank, index }, seqs)?;
            }
        }
        item += 1;
    }
    Ok(())
}

/// The run's sequences and this rank's share of the work.
pub(crate) struct Plan {
    /// Every distinct sequence key, sorted.
    pub(crate) keys: Vec<u64>,
    /// Keys first met by this rank's calls.
    pub(crate) own: HashSet<u64>,
    /// This rank's calls that meet them, as (item, index).
    pub(crate) work: HashSet<(usize, usize)>,
    /// The run's first call, for ranks that must keep a sharded reference company.
    pub(crate) filler: Option<DeviceSeqs>,
}

impl Plan {
    /// Replays the run on the CPU (tokenizing and collating, no model).
    pub(crate) fn new(
        cfg: &TrainConfig,
        objective: Objective,
        data: &RunData,
        ranks: usize,
        rank: usize,
    ) -> Result<Self> {
        let mut seen = HashSet::new();
        let (mut own, mut work, mut filler) = (HashSet::new(), HashSet::new(), None);
        for_each_call(
            cfg,
            objective,
            data,
            ranks,
            None,
            Device::Cpu,
            |call, seqs| {
                let keys = row_keys(&seqs.sequences())?;
                let new: Vec<u64> = keys.into_iter().filter(|&k| seen.insert(k)).collect();
                if call.rank == rank && !new.is_empty() {
                    own.extend(new);
                    work.insert((call.item, call.index));
                }
                filler.get_or_insert(seqs);
                Ok(())
            },
        )?;
        let mut keys: Vec<u64> = seen.into_iter().collect();
        keys.sort_unstable();
        Ok(Plan {
            keys,
            own,
            work,
            filler,
        })
    }
}

/// Every sequence `cfg`'s run on `ranks` ranks asks the reference about, sorted.
pub fn run_keys(
    cfg: &TrainConfig,
    objective: Objective,
    data: &RunData,
    ranks: usize,
) -> Result<Vec<u64>> {
    Ok(Plan::new(cfg, objective, data, ranks, 0)?.keys)
}

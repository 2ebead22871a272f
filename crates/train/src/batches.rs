//! The batches a run draws: endless global micro-batches in a deterministic order that
//! every rank draws alike, each rank's slice tokenized and collated into a [`MicroBatch`],
//! and the sequences each one asks the reference about. The trainer draws them;
//! `precompute-ref` replays them.

use crate::error::{Result, TrainError};
use rpo_data::batch::{PairedBatch, SeqBatch, UnpairedBatch};
use rpo_data::sampler::{BalancedSampler, Batches, PairedSampler, Sampler, SamplerPosition};
use rpo_data::{PairedExample, UnpairedExample};
use tch::Device;

use crate::data_source::{RunData, TrainExamples};
use crate::device_seqs::DeviceSeqs;
use crate::objective::Objective;
use crate::packing::Packing;

/// One rank's slice of a global micro-batch, tokenized and collated.
pub enum MicroBatch {
    /// Preferred responses, for SFT.
    Sft(SeqBatch),
    Paired(PairedBatch),
    Unpaired(UnpairedBatch),
}

/// The sequences [`crate::micro_batch::loss`] asks the reference about, one reference forward each and in
/// the same order and shapes (so `precompute-ref` reproduces the live reference's values
/// exactly): `micro_batch::paired`'s `[chosen; rejected]`, `micro_batch::unpaired`'s examples and, for KTO, its
/// mismatched KL sequences. Keep in step with those functions.
pub fn reference_inputs(
    objective: &Objective,
    batch: &MicroBatch,
    device: Device,
    packing: Packing,
    pad: i64,
) -> Result<Vec<DeviceSeqs>> {
    let seqs = |s: &SeqBatch| DeviceSeqs::laid_out(s, device, packing, pad);
    Ok(match (objective, batch) {
        (Objective::Sft, _) | (_, MicroBatch::Sft(_)) => vec![],
        (_, MicroBatch::Paired(b)) => vec![DeviceSeqs::paired(b, device, packing, pad)?],
        (Objective::Kto { .. }, MicroBatch::Unpaired(b)) => vec![seqs(&b.seqs)?, seqs(&b.kl_seqs)?],
        (_, MicroBatch::Unpaired(b)) => vec![seqs(&b.seqs)?],
    })
}

/// Endless global micro-batches of the shape the objective needs, in a deterministic
/// order that every rank draws alike; each rank then reads its own slice. `precompute-ref`
/// replays it to find every sequence the reference will be asked about.
pub(crate) struct MicroBatches<'a> {
    data: &'a RunData,
    examples: Examples<'a>,
    batches: Batches<Box<dyn Sampler>>,
}

enum Examples<'a> {
    /// (prompt, preferred response): chosen responses, or desirable completions.
    Sft(Vec<(&'a str, &'a str)>),
    Paired(&'a [PairedExample]),
    Unpaired(&'a [UnpairedExample]),
}

impl<'a> MicroBatches<'a> {
    /// `micro`: examples per global micro-batch (per-rank micro-batch × world size);
    /// drawing starts at `from`.
    pub(crate) fn new(
        objective: Objective,
        data: &'a RunData,
        micro: usize,
        seed: u64,
        from: SamplerPosition,
    ) -> Result<Self> {
        let (examples, sampler): (_, Box<dyn Sampler>) = match (&data.train, objective) {
            (train, Objective::Sft) => {
                let examples = train.preferred_responses();
                let sampler =
                    PairedSampler::new(examples.len(), micro, seed).map_err(TrainError::too_few)?;
                (Examples::Sft(examples), Box::new(sampler))
            }
            (TrainExamples::Paired(pairs), o) if !o.unpaired() => (
                Examples::Paired(pairs),
                Box::new(
                    PairedSampler::new(pairs.len(), micro, seed).map_err(TrainError::too_few)?,
                ),
            ),
            (TrainExamples::Unpaired(examples), o) if o.unpaired() => {
                let labels: Vec<bool> = examples.iter().map(|e| e.desirable).collect();
                (
                    Examples::Unpaired(examples),
                    Box::new(
                        BalancedSampler::new(&labels, micro, seed).map_err(TrainError::too_few)?,
                    ),
                )
            }
            (_, o) => bail!(
                Internal,
                "{} was given {} examples (the data source converts them)",
                o.name(),
                if o.unpaired() { "paired" } else { "unpaired" }
            ),
        };
        Ok(Self {
            data,
            examples,
            batches: Batches::new(sampler, from),
        })
    }
    /// Where the next draw starts (a checkpoint records it).
    pub(crate) fn position(&self) -> SamplerPosition {
        self.batches.position()
    }

    /// The next global micro-batch's example indices.
    pub(crate) fn next_global(&mut self) -> Vec<usize> {
        self.batches.next().expect("batches never end")
    }

    /// Every rank's `[wins, losses]` in the global micro-batch `global` over `world` ranks
    /// (see [`crate::micro_batch::BlockCounts`]), from the examples' labels on the host.
    pub(crate) fn block_counts(&self, global: &[usize], world: usize) -> Result<Vec<[i64; 2]>> {
        (0..world)
            .map(|r| {
                let slice = rpo_data::rank_slice(global, r, world)?;
                let n = slice.len() as i64;
                Ok(match &self.examples {
                    Examples::Sft(_) => [n, 0],
                    Examples::Paired(_) => [n, n],
                    Examples::Unpaired(examples) => {
                        let wins = slice.iter().filter(|&&i| examples[i].desirable).count();
                        [wins as i64, n - wins as i64]
                    }
                })
            })
            .collect()
    }

    /// One rank's slice `indices` of a global micro-batch, tokenized and collated.
    pub(crate) fn collate(&self, indices: &[usize]) -> Result<MicroBatch> {
        let tok = &self.data.tokenizer;
        Ok(match &self.examples {
            Examples::Sft(examples) => {
                let seqs = indices
                    .iter()
                    .map(|&i| tok.tokenize(examples[i].0, examples[i].1))
                    .collect::<rpo_data::Result<Vec<_>>>()?;
                let refs: Vec<_> = seqs.iter().collect();
                MicroBatch::Sft(SeqBatch::collate(&refs, tok.special().pad, 0)?)
            }
            Examples::Paired(pairs) => {
                let ex: Vec<&PairedExample> = indices.iter().map(|&i| &pairs[i]).collect();
                MicroBatch::Paired(PairedBatch::from_examples(&ex, tok)?)
            }
            Examples::Unpaired(examples) => {
                let ex: Vec<&UnpairedExample> = indices.iter().map(|&i| &examples[i]).collect();
                MicroBatch::Unpaired(UnpairedBatch::with_rotated_kl(&ex, tok)?)
            }
        })
    }
}

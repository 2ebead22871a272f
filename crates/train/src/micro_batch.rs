//! One micro-batch: policy and reference log-probs, the objective, and reward statistics.
//!
//! Chosen and rejected sequences of a paired batch run as a single forward: padded to
//! one width as `[2B, T]` (the reference code's concatenated forward), or laid out by
//! [`crate::packing`] (a shared prompt per pair, several groups per row). The
//! policy's log-probs come out of the layer-wise executor as a leaf: the objective is
//! built on it, and the trainer pushes its gradient back through the model
//! ([`ShardedModel::backward`]).
//!
//! Nothing here reads the device: losses, reward sums and accuracy stay tensors
//! ([`DeviceStats`]) until the trainer reads a whole step's figures at once; the index
//! tensors (which examples are wins) are built on the host and uploaded; every rank's
//! block sizes come from the host ([`BlockCounts`]), not from a collective.

use rpo_data::batch::{PairedBatch, SeqBatch, UnpairedBatch};
use rpo_losses as losses;
use rpo_zero::{PolicyLogps, ShardedModel};
use tch::{Device, Kind, Tensor};

pub use crate::batches::{reference_inputs, MicroBatch};
pub use crate::device_seqs::{frozen_logps, DeviceSeqs};
use crate::error::Result;
use crate::objective::Objective;
use crate::packing::Packing;
use crate::parallel::DataParallel;
use crate::prompt_embedding::{self, PromptEmbedder};
use crate::reference::Reference;
pub use crate::reward_stats::{DeviceStats, RewardStats};
use rpo_comm::{all_gather_known, all_gather_varlen, Collective};
use rpo_contrast::ContrastInputs;

/// Every rank's `[wins, losses]` in one global micro-batch, in rank order: paired slices
/// have as many of each as pairs, unpaired ones their desirable and undesirable examples.
/// Every rank knows them from the host (all draw the same global micro-batch), so no
/// collective asks and nothing is read back from the device.
pub type BlockCounts = [[i64; 2]];

/// `(chosen, rejected)` halves of paired log-probs.
fn halves(logps: &Tensor) -> (Tensor, Tensor) {
    let b = logps.size()[0] / 2;
    (logps.narrow(0, 0, b), logps.narrow(0, b, b))
}

pub struct MicroBatchLoss {
    /// Scalar with autograd history to `policy`'s log-probs, before scaling: this rank's
    /// mean loss, or for RPO the surrogate of its scope's loss. The trainer pushes the
    /// gradient of [`scaled_objective`](Self::scaled_objective) through the model.
    pub objective: Tensor,
    /// The weight of `objective` in the global objective (see [`crate::parallel`]): 1/W
    /// for a mean over this rank's examples, S/W for a scope of S ranks.
    pub share: f64,
    /// The policy's forward, for the backward.
    pub policy: PolicyLogps,
    /// This rank's view of the loss (whose mean over ranks is the global objective's loss:
    /// the mean over its own examples, or for RPO S × its share of its scope's loss) and
    /// the reward statistics, on the device.
    pub stats: DeviceStats,
}

impl MicroBatchLoss {
    /// The loss scaling of one micro-batch, in one place: the tensor whose gradient,
    /// pushed through the model, is this rank's share of the global objective's gradient
    /// for one of the step's `accumulation` micro-batches.
    pub fn scaled_objective(&self, accumulation: usize) -> Tensor {
        scale(&self.objective, self.share, accumulation)
    }
}

/// `loss × share / accumulation`: this rank's weight in the global objective (see
/// [`crate::parallel`]), averaged over the step's micro-batches. Every backward of a
/// micro-batch goes through this function (in this order of operations, which the
/// equivalence tests hold bit for bit).
pub fn scale(loss: &Tensor, share: f64, accumulation: usize) -> Tensor {
    loss * share / accumulation as f64
}

/// A loss averaged over this rank's own examples: one of W equal shares. The last entry
/// is its value for the metrics (f64, on the device).
fn local(loss: Tensor, parallel: &DataParallel) -> (Tensor, f64, Tensor) {
    let value = loss.detach().to_kind(Kind::Double);
    (loss, parallel.local_share(), value)
}

/// Rows `[n_r, ..]` of every rank of `world`, concatenated in rank order: with the ranks'
/// `counts` known, one all-gather; without, a second one asks for them.
fn gather_rows(world: &dyn Collective, t: &Tensor, counts: Option<Vec<i64>>) -> Result<Tensor> {
    match counts {
        Some(counts) => Ok(all_gather_known(world, t, &counts)?),
        None => Ok(all_gather_varlen(world, t)?.0),
    }
}

/// RPO over this rank's contrast scope: the scope's matrix is built from every rank's
/// log-ratios, and its gradient with respect to this rank's own is pushed through the
/// policy (`Σ a·∂L/∂a + Σ b·∂L/∂b` has exactly that gradient).
fn contrast(
    models: &Models,
    chosen: &Tensor,
    rejected: &Tensor,
    win_emb: Option<&Tensor>,
    lose_emb: Option<&Tensor>,
    weighting: &losses::Weighting,
    counts: Option<&BlockCounts>,
) -> Result<(Tensor, f64, Tensor)> {
    let p = models.parallel;
    let inputs = ContrastInputs {
        chosen: &chosen.detach(),
        rejected: &rejected.detach(),
        win_emb,
        lose_emb,
        counts: counts.map(|c| p.scope_slice(c)),
    };
    let g = rpo_contrast::contrast(p.scope(), &inputs, weighting, models.beta, p.form)?;
    let surrogate = (chosen * g.chosen.to_kind(chosen.kind())).sum(chosen.kind())
        + (rejected * g.rejected.to_kind(rejected.kind())).sum(rejected.kind());
    // The scope's S ranks' shares sum to its loss, so S × share averages to it.
    let scope_size = p.scope().world_size() as f64;
    Ok((surrogate, p.scope_share(), g.loss_share * scope_size))
}

/// Everything a micro-batch needs besides its data.
pub struct Models<'a> {
    pub policy: &'a ShardedModel,
    /// `None` only for SFT.
    pub reference: Option<&'a Reference>,
    pub embedder: &'a dyn PromptEmbedder,
    pub beta: f64,
    pub parallel: &'a DataParallel<'a>,
    /// How micro-batches are laid out for the model (shared prompts, packing).
    pub packing: Packing,
    /// The tokenizer's padding id, for packed rows.
    pub pad: i64,
}

impl Models<'_> {
    fn reference(&self) -> Result<&Reference> {
        match self.reference {
            Some(r) => Ok(r),
            None => bail!(Invalid, "this objective needs a reference model"),
        }
    }

    fn device(&self) -> Device {
        self.policy.model().device()
    }

    fn reference_logps(&self, seqs: &DeviceSeqs) -> Result<Tensor> {
        self.reference()?
            .logps(seqs, self.policy.options().logits_chunk_tokens)
    }

    /// Win-row and lose-column embeddings of a paired batch, on the policy's device.
    fn paired_embeddings(&self, batch: &PairedBatch) -> Result<(Tensor, Tensor)> {
        let (win, lose) = prompt_embedding::paired_embeddings(self.embedder, batch)?;
        let device = self.device();
        Ok((win.to_device(device), lose.to_device(device)))
    }

    fn unpaired_embeddings(&self, batch: &UnpairedBatch) -> Result<Tensor> {
        Ok(prompt_embedding::unpaired_embeddings(self.embedder, batch)?.to_device(self.device()))
    }
}

/// The objective on one micro-batch of the shape it needs. `counts`: every rank's block
/// sizes in this global micro-batch, when known (the trainer knows them).
pub fn loss(
    objective: &Objective,
    models: &Models,
    batch: &MicroBatch,
    counts: Option<&BlockCounts>,
) -> Result<MicroBatchLoss> {
    match batch {
        MicroBatch::Sft(chosen) => sft(models, chosen),
        MicroBatch::Paired(b) => paired(objective, models, b, counts),
        MicroBatch::Unpaired(b) => unpaired(objective, models, b, counts),
    }
}

/// SFT on the chosen responses: summed NLL, mean over the batch.
pub fn sft(models: &Models, chosen: &SeqBatch) -> Result<MicroBatchLoss> {
    let seqs = DeviceSeqs::laid_out(chosen, models.device(), models.packing, models.pad)?;
    let policy = models.policy.forward(&seqs.sequences())?;
    let (objective, share, loss) = local(losses::sft_loss(&policy.logps)?, models.parallel);
    let stats = DeviceStats::micro(&loss, None, None, chosen.num_tokens, seqs.tokens_computed());
    Ok(MicroBatchLoss {
        objective,
        share,
        policy,
        stats,
    })
}

/// A paired objective (RPO paired, DPO, IPO, SFT) on one paired micro-batch.
pub fn paired(
    objective: &Objective,
    models: &Models,
    batch: &PairedBatch,
    counts: Option<&BlockCounts>,
) -> Result<MicroBatchLoss> {
    if let Objective::Sft = objective {
        return sft(models, &batch.chosen);
    }
    let seqs = DeviceSeqs::paired(batch, models.device(), models.packing, models.pad)?;
    let policy = models.policy.forward(&seqs.sequences())?;
    let (policy_chosen, policy_rejected) = halves(&policy.logps);
    let (ref_chosen, ref_rejected) = halves(&models.reference_logps(&seqs)?);
    let a = &policy_chosen - ref_chosen;
    let b = &policy_rejected - ref_rejected;

    let (objective, share, loss) = match objective {
        Objective::Rpo { weighting, .. } => {
            let emb = weighting
                .uses_embeddings()
                .then(|| models.paired_embeddings(batch))
                .transpose()?;
            let (win_emb, lose_emb) = emb.as_ref().map(|(w, l)| (w, l)).unzip();
            contrast(models, &a, &b, win_emb, lose_emb, weighting, counts)?
        }
        Objective::Dpo => local(losses::dpo_loss(&a, &b, models.beta)?, models.parallel),
        Objective::Ipo => local(losses::ipo_loss(&a, &b, models.beta)?, models.parallel),
        other => bail!(Invalid, "{} needs unpaired batches", other.name()),
    };

    let m = losses::pair_metrics(&a, &b, models.beta)?;
    let mut stats = DeviceStats::micro(
        &loss,
        Some((&m.chosen_rewards, &m.rejected_rewards)),
        Some(&m.accuracies.sum(Kind::Double)),
        batch.num_tokens(),
        seqs.tokens_computed(),
    );
    stats.compared = batch.chosen.batch_size();
    Ok(MicroBatchLoss {
        objective,
        share,
        policy,
        stats,
    })
}

/// An unpaired objective (RPO unpaired, KTO) on one balanced micro-batch.
pub fn unpaired(
    objective: &Objective,
    models: &Models,
    batch: &UnpairedBatch,
    counts: Option<&BlockCounts>,
) -> Result<MicroBatchLoss> {
    let device = models.device();
    let (packing, pad) = (models.packing, models.pad);
    let seqs = DeviceSeqs::laid_out(&batch.seqs, device, packing, pad)?;
    let policy = models.policy.forward(&seqs.sequences())?;
    let logratios = &policy.logps - models.reference_logps(&seqs)?;
    // Which examples are wins, found on the host (the collated flags live there) and
    // uploaded: `nonzero` on the device would wait for it to learn the output's size.
    let flags = batch.desirable.to_device(Device::Cpu);
    let wins = flags.nonzero().squeeze_dim(1).to_device(device);
    let losses_idx = flags
        .logical_not()
        .nonzero()
        .squeeze_dim(1)
        .to_device(device);
    let desirable = flags.to_device(device);
    let a = logratios.index_select(0, &wins);
    let b = logratios.index_select(0, &losses_idx);

    let (objective, share, loss) = match objective {
        Objective::Rpo {
            weighting,
            unpaired: true,
        } => {
            let emb = weighting
                .uses_embeddings()
                .then(|| models.unpaired_embeddings(batch))
                .transpose()?;
            let win_emb = emb.as_ref().map(|e| e.index_select(0, &wins));
            let lose_emb = emb.as_ref().map(|e| e.index_select(0, &losses_idx));
            contrast(
                models,
                &a,
                &b,
                win_emb.as_ref(),
                lose_emb.as_ref(),
                weighting,
                counts,
            )?
        }
        Objective::Kto {
            desirable_weight,
            undesirable_weight,
        } => {
            // The KL reference point uses mismatched (prompt i, response i+1) pairs, without
            // gradient, averaged over ranks (as the reference code does) and clamped at 0.
            let kl_seqs = DeviceSeqs::laid_out(&batch.kl_seqs, device, packing, pad)?;
            let kl_logratios =
                models.policy.logps(&kl_seqs.sequences())? - models.reference_logps(&kl_seqs)?;
            // It stays on the device: a 0-dim f64 tensor, averaged over ranks by an
            // all-reduce, never read by the host.
            let kl_here = kl_logratios.mean(Kind::Double);
            let kl = models.parallel.mean(&kl_here)?.clamp_min(0.0);
            let per_example = losses::kto_losses(
                &logratios,
                &desirable,
                &kl,
                models.beta,
                *desirable_weight,
                *undesirable_weight,
            )?;
            local(per_example.mean(per_example.kind()), models.parallel)
        }
        other => bail!(Invalid, "{} needs paired batches", other.name()),
    };

    let ra = losses::rewards(&a, models.beta);
    let rb = losses::rewards(&b, models.beta);
    // Accuracy counts every (desirable, undesirable) pair of the global micro-batch, so it
    // means the same at every world size; rank 0 reports it, since the ranks' stats are summed.
    let world = models.parallel.world();
    let side = |s: usize| counts.map(|c| c.iter().map(|r| r[s]).collect::<Vec<i64>>());
    let ra_all = gather_rows(world, &ra.detach(), side(0))?;
    let rb_all = gather_rows(world, &rb.detach(), side(1))?;
    let main = models.parallel.is_main();
    let correct = main.then(|| {
        ra_all
            .unsqueeze(1)
            .gt_tensor(&rb_all.unsqueeze(0))
            .sum(Kind::Double)
    });
    let mut stats = DeviceStats::micro(
        &loss,
        Some((&ra, &rb)),
        correct.as_ref(),
        batch.num_tokens(),
        seqs.tokens_computed(),
    );
    if main {
        stats.compared = (ra_all.size()[0] * rb_all.size()[0]) as usize;
    }
    Ok(MicroBatchLoss {
        objective,
        share,
        policy,
        stats,
    })
}

//! Sequences on the model's device, and the summed log-probs of a frozen model over them
//! (used by the reference, by evaluation and by `precompute-ref`).

use crate::error::Result;
use rpo_data::batch::{PairedBatch, SeqBatch};
use rpo_losses as losses;
use rpo_losses::ScoredTargets;
use rpo_model::{upload, Llama};
use rpo_zero::{PackedRows, Sequences};
use tch::{Device, Tensor};

use crate::packing::{self, Packing};

/// Ids, labels and the response mask of sequences, on the model's device; `packed`:
/// the layout the model runs them in, when not the padded rows. Everything the model
/// indexes with is built on the host and uploaded (the packed layout, or for padded rows
/// the scored positions), and the host tensors the batch was collated into are kept: no
/// step reads them back from the device.
pub struct DeviceSeqs {
    ids: Tensor,
    labels: Tensor,
    mask: Tensor,
    packed: Option<PackedRows>,
    /// Padded rows: the scored positions, found on the host.
    targets: Option<ScoredTargets>,
    /// The same ids, labels and mask on the host.
    host: [Tensor; 3],
}

impl DeviceSeqs {
    /// Rows from host tensors `[B, T]`, run padded (the scored positions found here) or
    /// as `packed` (built on the host).
    fn rows(
        [ids, labels, mask]: [Tensor; 3],
        packed: Option<PackedRows>,
        device: Device,
    ) -> Result<Self> {
        let targets = match packed {
            Some(_) => None,
            None => Some(to_device(
                &ScoredTargets::from_mask(&labels, &mask)?,
                device,
            )),
        };
        Ok(Self {
            ids: upload(&ids, device),
            labels: upload(&labels, device),
            mask: upload(&mask, device),
            packed: packed.map(|p| p.to_device(device)),
            targets,
            host: [ids, labels, mask],
        })
    }

    /// Padded rows.
    pub fn new(seqs: &SeqBatch, device: Device) -> Result<Self> {
        Self::rows(host(seqs), None, device)
    }

    /// A batch's sequences laid out as `packing` says (padded, or packed rows).
    pub fn laid_out(seqs: &SeqBatch, device: Device, packing: Packing, pad: i64) -> Result<Self> {
        let packed = match packing.pack {
            true => Some(packing::pack_sequences(seqs, packing, pad)?),
            false => None,
        };
        Self::rows(host(seqs), packed, device)
    }

    /// A paired batch's chosen then rejected sequences, as one batch of 2B.
    pub fn paired(batch: &PairedBatch, device: Device, packing: Packing, pad: i64) -> Result<Self> {
        let (c, r) = (&batch.chosen, &batch.rejected);
        let cat = |x: &Tensor, y: &Tensor| Tensor::cat(&[x, y], 0).to_device(Device::Cpu);
        let both = [
            cat(&c.input_ids, &r.input_ids),
            cat(&c.labels, &r.labels),
            cat(&c.loss_mask, &r.loss_mask),
        ];
        let packed = match packing.is_padded() {
            true => None,
            false => Some(packing::pack_pairs(c, r, packing, pad)?),
        };
        Self::rows(both, packed, device)
    }

    /// A copy on `device`.
    pub fn to_device(&self, device: Device) -> Self {
        Self {
            ids: self.ids.to_device(device),
            labels: self.labels.to_device(device),
            mask: self.mask.to_device(device),
            packed: self.packed.as_ref().map(|p| p.to_device(device)),
            targets: self.targets.as_ref().map(|t| to_device(t, device)),
            host: self.host.each_ref().map(Tensor::shallow_clone),
        }
    }

    pub fn sequences(&self) -> Sequences<'_> {
        Sequences {
            ids: &self.ids,
            labels: &self.labels,
            mask: &self.mask,
            packed: self.packed.as_ref(),
            targets: self.targets.as_ref(),
        }
    }

    /// The padded sequences as collated, on the host (what the precomputed reference
    /// hashes, without reading the device).
    pub fn host_sequences(&self) -> Sequences<'_> {
        Sequences {
            ids: &self.host[0],
            labels: &self.host[1],
            mask: &self.host[2],
            packed: None,
            targets: None,
        }
    }

    /// Positions the model computes for these sequences (padding included).
    pub fn tokens_computed(&self) -> usize {
        match &self.packed {
            Some(p) => packing::tokens_computed(p),
            None => self.ids.numel(),
        }
    }
}

/// A collated batch's ids, labels and mask, on the host (where collation made them).
fn host(seqs: &SeqBatch) -> [Tensor; 3] {
    [&seqs.input_ids, &seqs.labels, &seqs.loss_mask].map(|t| t.to_device(Device::Cpu))
}

fn to_device(t: &ScoredTargets, device: Device) -> ScoredTargets {
    ScoredTargets {
        index: upload(&t.index, device),
        ids: upload(&t.ids, device),
        seq: upload(&t.seq, device),
        count: t.count,
    }
}

/// Summed response log-probs `[B]` of a frozen model, without gradient; the head runs
/// only at scored positions, at most `chunk_tokens` of them at a time.
pub fn frozen_logps(model: &Llama, seqs: &DeviceSeqs, chunk_tokens: i64) -> Result<Tensor> {
    tch::no_grad(|| {
        let (ids, layout, targets) = seqs.sequences().rows()?;
        let hidden = model.hidden_states_in(&ids, layout.as_ref());
        Ok(losses::targets_logps_chunked(
            &hidden,
            &|h| model.head(h),
            &targets,
            chunk_tokens,
        )?)
    })
}

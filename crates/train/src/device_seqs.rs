//! Sequences on the model's device, and the summed log-probs of a frozen model over them
//! (used by the reference, by evaluation and by `precompute-ref`).

use anyhow::Result;
use rpo_data::batch::{PairedBatch, SeqBatch};
use rpo_losses as losses;
use rpo_model::Llama;
use rpo_zero::{PackedRows, Sequences};
use tch::{Device, Tensor};

use crate::packing::{self, Packing};

/// Ids, labels and the response mask of sequences, on the model's device; `packed`:
/// the layout the model runs them in, when not the padded rows.
pub struct DeviceSeqs {
    ids: Tensor,
    labels: Tensor,
    mask: Tensor,
    packed: Option<PackedRows>,
}

impl DeviceSeqs {
    pub fn new(seqs: &SeqBatch, device: Device) -> Self {
        Self {
            ids: seqs.input_ids.to_device(device),
            labels: seqs.labels.to_device(device),
            mask: seqs.loss_mask.to_device(device),
            packed: None,
        }
    }

    /// A batch's sequences laid out as `packing` says (padded, or packed rows).
    pub fn laid_out(seqs: &SeqBatch, device: Device, packing: Packing, pad: i64) -> Result<Self> {
        let mut out = Self::new(seqs, device);
        if packing.pack {
            out.packed = Some(packing::pack_sequences(seqs, packing, pad)?.to_device(device));
        }
        Ok(out)
    }

    /// A paired batch's chosen then rejected sequences, as one batch of 2B.
    pub fn paired(batch: &PairedBatch, device: Device, packing: Packing, pad: i64) -> Result<Self> {
        let (c, r) = (&batch.chosen, &batch.rejected);
        let cat = |x: &Tensor, y: &Tensor| Tensor::cat(&[x, y], 0).to_device(device);
        let packed = if packing.is_padded() {
            None
        } else {
            Some(packing::pack_pairs(c, r, packing, pad)?.to_device(device))
        };
        Ok(Self {
            ids: cat(&c.input_ids, &r.input_ids),
            labels: cat(&c.labels, &r.labels),
            mask: cat(&c.loss_mask, &r.loss_mask),
            packed,
        })
    }

    /// A copy on `device`.
    pub fn to_device(&self, device: Device) -> Self {
        Self {
            ids: self.ids.to_device(device),
            labels: self.labels.to_device(device),
            mask: self.mask.to_device(device),
            packed: self.packed.as_ref().map(|p| p.to_device(device)),
        }
    }

    pub fn sequences(&self) -> Sequences<'_> {
        Sequences {
            ids: &self.ids,
            labels: &self.labels,
            mask: &self.mask,
            packed: self.packed.as_ref(),
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

/// Summed response log-probs `[B]` of a frozen model, without gradient; the head runs
/// only at scored positions, at most `chunk_tokens` of them at a time.
pub fn frozen_logps(model: &Llama, seqs: &DeviceSeqs, chunk_tokens: i64) -> Result<Tensor> {
    tch::no_grad(|| {
        let (ids, layout, targets) = seqs.sequences().rows()?;
        let hidden = model.hidden_states_in(&ids, layout.as_ref());
        losses::targets_logps_chunked(&hidden, &|h| model.head(h), &targets, chunk_tokens)
    })
}

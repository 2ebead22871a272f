//! Sequences on the model's device, and the summed log-probs of a frozen model over them
//! (used by the reference, by evaluation and by `precompute-ref`).

use anyhow::Result;
use rpo_data::batch::{PairedBatch, SeqBatch};
use rpo_losses as losses;
use rpo_model::Llama;
use rpo_zero::Sequences;
use tch::{Device, Tensor};

/// Ids, labels and response mask of sequences, on the model's device.
pub struct DeviceSeqs {
    ids: Tensor,
    labels: Tensor,
    mask: Tensor,
}

impl DeviceSeqs {
    pub fn new(seqs: &SeqBatch, device: Device) -> Self {
        Self {
            ids: seqs.input_ids.to_device(device),
            labels: seqs.labels.to_device(device),
            mask: seqs.loss_mask.to_device(device),
        }
    }

    /// A paired batch's chosen then rejected sequences, as one batch of 2B.
    pub(crate) fn paired(batch: &PairedBatch, device: Device) -> Self {
        let (c, r) = (&batch.chosen, &batch.rejected);
        let cat = |x: &Tensor, y: &Tensor| Tensor::cat(&[x, y], 0).to_device(device);
        Self {
            ids: cat(&c.input_ids, &r.input_ids),
            labels: cat(&c.labels, &r.labels),
            mask: cat(&c.loss_mask, &r.loss_mask),
        }
    }

    /// A copy on `device`.
    pub fn to_device(&self, device: Device) -> Self {
        Self {
            ids: self.ids.to_device(device),
            labels: self.labels.to_device(device),
            mask: self.mask.to_device(device),
        }
    }

    pub fn sequences(&self) -> Sequences<'_> {
        Sequences {
            ids: &self.ids,
            labels: &self.labels,
            mask: &self.mask,
        }
    }
}

/// Summed response log-probs `[B]` of a frozen model, without gradient; at most
/// `chunk_tokens` positions' logits at a time.
pub fn frozen_logps(model: &Llama, seqs: &DeviceSeqs, chunk_tokens: i64) -> Result<Tensor> {
    tch::no_grad(|| {
        let hidden = model.hidden_states(&seqs.ids);
        losses::sequence_logps_chunked(
            &hidden,
            &|h| model.head(h),
            &seqs.labels,
            &seqs.mask,
            chunk_tokens,
        )
    })
}

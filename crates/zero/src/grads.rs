//! Gradient buffers, per unit, in the reduce dtype (`[zero] reduce_dtype`: fp32 unless
//! bf16 is asked for; a bf16 unit gradient from the backward is widened as it is added).
//!
//! Stages 0–1 accumulate each unit's full flat gradient over the micro-batches of a step.
//! Stages 2–3 collect a unit's full gradient only while its backward runs (`pending`),
//! reduce-scatter it as soon as the unit is done, free it, and accumulate just their own
//! slice. A tied LM head adds to the embedding's pending gradient, which completes when
//! the embedding (the last unit of the backward) is done.

use anyhow::Result;
use rpo_comm::Collective;
use tch::{Kind, Tensor};

use crate::layout::ModelLayout;
use crate::stage::ZeroStage;

pub struct GradBuffers {
    stage: ZeroStage,
    kind: Kind,
    device: tch::Device,
    /// Stages 2–3: full gradients of units whose backward is under way.
    pending: Vec<Option<Tensor>>,
    /// Full (stages 0–1) or own-slice (2–3) gradient per unit, summed over micro-batches.
    accumulated: Vec<Tensor>,
}

impl GradBuffers {
    pub fn new(layout: &ModelLayout, stage: ZeroStage, kind: Kind, device: tch::Device) -> Self {
        let accumulated = layout
            .units
            .iter()
            .map(|u| {
                let n = if stage.shards_gradients() {
                    u.shard
                } else {
                    u.padded
                };
                Tensor::zeros([n], (kind, device))
            })
            .collect();
        Self {
            stage,
            kind,
            device,
            pending: layout.units.iter().map(|_| None).collect(),
            accumulated,
        }
    }

    /// Adds `grads` (one per slot of unit `unit`, or `None` for slots not reached) to
    /// that unit's gradient; `slots` says which slots they belong to.
    pub fn add(&mut self, layout: &ModelLayout, unit: usize, slots: &[usize], grads: &[Tensor]) {
        let u = &layout.units[unit];
        let target = if self.stage.shards_gradients() {
            self.pending[unit]
                .get_or_insert_with(|| Tensor::zeros([u.padded], (self.kind, self.device)))
        } else {
            &mut self.accumulated[unit]
        };
        tch::no_grad(|| {
            for (&s, g) in slots.iter().zip(grads) {
                if g.defined() {
                    let slot = &u.params[s];
                    let _ = target
                        .narrow(0, slot.offset, slot.numel)
                        .g_add_(&g.reshape([-1]).to_kind(self.kind));
                }
            }
        });
    }

    /// Unit `unit`'s backward is done: stages 2–3 reduce-scatter its gradient now and
    /// free the full buffer.
    pub fn finish(&mut self, unit: usize, comm: &dyn Collective) -> Result<()> {
        if let Some(full) = self.pending[unit].take() {
            let own = comm.reduce_scatter(&full)?;
            tch::no_grad(|| {
                let _ = self.accumulated[unit].g_add_(&own);
            });
        }
        Ok(())
    }

    /// The step's gradients, summed over ranks, shaped like the master weights: full
    /// buffers in stage 0 (one all-reduce each), own slices otherwise (stage 1 reduce-
    /// scatters its full buffers here; stages 2–3 already did during backward).
    pub fn reduced(&mut self, comm: &dyn Collective) -> Result<Vec<Tensor>> {
        match self.stage {
            ZeroStage::Zero0 => {
                for g in &mut self.accumulated {
                    comm.all_reduce(g)?;
                }
                Ok(self.accumulated.iter().map(Tensor::shallow_clone).collect())
            }
            ZeroStage::Zero1 => self
                .accumulated
                .iter()
                .map(|g| Ok(comm.reduce_scatter(g)?))
                .collect(),
            ZeroStage::Zero2 | ZeroStage::Zero3 => {
                Ok(self.accumulated.iter().map(Tensor::shallow_clone).collect())
            }
        }
    }

    /// Zeroes the accumulators for the next step.
    pub fn zero(&mut self) {
        tch::no_grad(|| {
            for g in &mut self.accumulated {
                let _ = g.zero_();
            }
        });
        self.pending.iter_mut().for_each(|p| *p = None);
    }

    pub fn accumulated(&self) -> &[Tensor] {
        &self.accumulated
    }

    /// Bytes of the persistent gradient buffers.
    pub fn bytes(&self) -> i64 {
        self.accumulated
            .iter()
            .map(|g| g.numel() as i64 * g.kind().elt_size_in_bytes() as i64)
            .sum()
    }
}

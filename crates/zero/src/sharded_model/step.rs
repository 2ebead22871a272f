//! The optimizer step on the owned slices: gradients summed over ranks (all-reduce in
//! stage 0, reduce-scatter in 1, already done during backward in 2–3), one global norm
//! from the shards' squared norms, clipping, the optimizer on the fp32 masters, and the
//! new weights back into the compute parameters (all-gather in stages 1–2; stage 3
//! gathers on use).

use rpo_comm::host::to_host_f64;
use rpo_optim::{clip_coefficient, grad_sq_norm_tensor, scale_grads, Optimizer};
use tch::Tensor;

use super::ShardedModel;
use crate::error::{Result, ZeroError};
use crate::stage::ZeroStage;

/// The first half of a step: the gradients summed over ranks, shaped like the master
/// slices, and their global L2 norm, still on the device.
pub struct ReducedGrads {
    grads: Vec<Tensor>,
    /// The global norm before clipping: a 0-dim f64 tensor on the device, identical on
    /// every rank. The caller reads it (with its other figures, in one read) and hands
    /// it to [`ShardedModel::apply_update`].
    pub norm: Tensor,
}

impl ShardedModel {
    /// One optimizer step at learning rate `lr`, clipping to `max_grad_norm` if it is
    /// positive; returns the global gradient norm before clipping. A non-finite norm is
    /// an error and leaves the weights untouched. Every rank must call this.
    ///
    /// Reads the norm to the host on its own; the trainer instead calls
    /// [`reduce_grads`](Self::reduce_grads) and [`apply_update`](Self::apply_update) and
    /// reads the norm together with the step's metrics.
    pub fn step(&self, optimizer: &mut dyn Optimizer, lr: f64, max_grad_norm: f64) -> Result<f64> {
        let reduced = self.reduce_grads()?;
        let norm = to_host_f64(&reduced.norm)?;
        self.apply_update(reduced, norm, optimizer, lr, max_grad_norm)?;
        Ok(norm)
    }

    /// Gradients summed over ranks (all-reduce in stage 0, reduce-scatter in 1, already
    /// done in 2–3) and the global norm from the shards' squared norms (one f64 all-reduce
    /// in stages 1–3), without reading anything to the host. Every rank must call this.
    pub fn reduce_grads(&self) -> Result<ReducedGrads> {
        let comm = self.comm.as_ref();
        let grads = self.grads.borrow_mut().reduced(comm)?;
        let mut sq = grad_sq_norm_tensor(&grads)
            .to_device(self.model().device())
            .reshape([1]);
        if self.options.stage.shards_optimizer() && comm.world_size() > 1 {
            comm.all_reduce(&mut sq)?;
        }
        Ok(ReducedGrads {
            grads,
            norm: sq.sqrt().reshape([] as [i64; 0]),
        })
    }

    /// The second half of a step: clipping with the global `norm` (the value of
    /// `reduced.norm`, read by the caller), the optimizer on the fp32 master slices and
    /// the new weights back into the compute parameters. A non-finite norm is an error
    /// and leaves the weights untouched. Every rank must call this with the same `norm`.
    pub fn apply_update(
        &self,
        reduced: ReducedGrads,
        norm: f64,
        optimizer: &mut dyn Optimizer,
        lr: f64,
        max_grad_norm: f64,
    ) -> Result<()> {
        if !norm.is_finite() {
            return Err(ZeroError::NonFiniteNorm { norm });
        }
        let mut grads = reduced.grads;
        if max_grad_norm > 0.0 {
            scale_grads(&mut grads, clip_coefficient(norm, max_grad_norm));
        }
        optimizer.step(&mut self.master.borrow_mut(), &grads, lr)?;
        self.publish()?;
        self.grads.borrow_mut().zero();
        Ok(())
    }

    /// Copies the updated masters into the compute parameters.
    pub(crate) fn publish(&self) -> rpo_comm::Result<()> {
        let kind = self.options.compute_kind;
        let master = self.master.borrow();
        let params = self.params.borrow();
        tch::no_grad(|| -> rpo_comm::Result<()> {
            for (p, m) in params.iter().zip(master.iter()) {
                match self.options.stage {
                    ZeroStage::Zero0 if !self.master_aliased => {
                        let _ = p.full().expect("resident").shallow_clone().copy_(m);
                    }
                    ZeroStage::Zero1 | ZeroStage::Zero2 => {
                        let gathered = self.comm.all_gather(&m.to_kind(kind))?;
                        let _ = p.full().expect("resident").shallow_clone().copy_(&gathered);
                    }
                    ZeroStage::Zero3 if !self.master_aliased => {
                        let _ = p.shard().expect("sharded").shallow_clone().copy_(m);
                    }
                    _ => {} // the masters are the compute weights
                }
            }
            Ok(())
        })
    }
}

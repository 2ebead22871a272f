//! The optimizer step on the owned slices: gradients summed over ranks (all-reduce in
//! stage 0, reduce-scatter in 1, already done during backward in 2–3), one global norm
//! from the shards' squared norms, clipping, the optimizer on the fp32 masters, and the
//! new weights back into the compute parameters (all-gather in stages 1–2; stage 3
//! gathers on use).

use anyhow::{ensure, Result};
use rpo_comm::all_reduce_f64s;
use rpo_optim::{clip_coefficient, grad_sq_norm, scale_grads, Optimizer};

use super::ShardedModel;
use crate::stage::ZeroStage;

impl ShardedModel {
    /// One optimizer step at learning rate `lr`, clipping to `max_grad_norm` if it is
    /// positive; returns the global gradient norm before clipping. A non-finite norm is
    /// an error and leaves the weights untouched. Every rank must call this.
    pub fn step(&self, optimizer: &mut dyn Optimizer, lr: f64, max_grad_norm: f64) -> Result<f64> {
        let comm = self.comm.as_ref();
        let mut grads = self.grads.borrow_mut().reduced(comm)?;
        let mut sq = [grad_sq_norm(&grads)];
        if self.options.stage.shards_optimizer() {
            all_reduce_f64s(comm, &mut sq)?;
        }
        let norm = sq[0].sqrt();
        ensure!(norm.is_finite(), "gradient norm is {norm}");
        if max_grad_norm > 0.0 {
            scale_grads(&mut grads, clip_coefficient(norm, max_grad_norm));
        }
        optimizer.step(&mut self.master.borrow_mut(), &grads, lr)?;
        self.publish()?;
        self.grads.borrow_mut().zero();
        Ok(norm)
    }

    /// Copies the updated masters into the compute parameters.
    pub(crate) fn publish(&self) -> Result<()> {
        let kind = self.options.compute_kind;
        let master = self.master.borrow();
        let params = self.params.borrow();
        tch::no_grad(|| -> Result<()> {
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

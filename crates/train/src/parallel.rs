//! Data parallelism: how W ranks' work adds up to one optimizer step on the global batch.
//!
//! One rule (see docs/architecture.md): every rank's backward computes its contribution to
//! one global objective, and gradients are **summed** across ranks, never averaged.
//! - A loss that is a mean over the rank's own examples (DPO, IPO, KTO, SFT, and RPO with
//!   `local` scope) enters with weight 1/W: the global objective is the mean over ranks.
//! - RPO's contrast matrix over a scope of S ranks enters with weight S/W: each rank
//!   pushes the scope loss's gradient through its own samples, the S ranks of a scope
//!   together give that scope's full gradient, and the W/S scopes are averaged.

use crate::error::Result;
use rpo_comm::Collective;
use rpo_contrast::{ContrastForm, ContrastScope};
use tch::Tensor;

pub struct DataParallel<'a> {
    world: &'a dyn Collective,
    /// The ranks sharing this rank's contrast matrix.
    scope: Box<dyn Collective>,
    scope_size: usize,
    pub form: ContrastForm,
}

impl<'a> DataParallel<'a> {
    /// Every rank of `world` must call this (it splits off the scope's communicator).
    pub fn new(
        world: &'a dyn Collective,
        scope: ContrastScope,
        form: ContrastForm,
    ) -> Result<Self> {
        let scope_size = scope.size(world.world_size())?;
        Ok(Self {
            world,
            scope: scope.communicator(world)?,
            scope_size,
            form,
        })
    }

    pub fn world(&self) -> &dyn Collective {
        self.world
    }

    pub fn scope(&self) -> &dyn Collective {
        self.scope.as_ref()
    }

    pub fn rank(&self) -> usize {
        self.world.rank()
    }

    pub fn world_size(&self) -> usize {
        self.world.world_size()
    }

    /// Rank 0 writes files and logs progress.
    pub fn is_main(&self) -> bool {
        self.world.rank() == 0
    }

    /// Weight of a loss averaged over this rank's own examples.
    pub fn local_share(&self) -> f64 {
        1.0 / self.world_size() as f64
    }

    /// Weight of the loss of this rank's contrast scope.
    pub fn scope_share(&self) -> f64 {
        self.scope_size as f64 / self.world_size() as f64
    }

    /// This rank's part of a global micro-batch: the `rank`-th of W equal slices.
    pub fn own<'b, T>(&self, global: &'b [T]) -> Result<&'b [T]> {
        Ok(rpo_data::rank_slice(
            global,
            self.rank(),
            self.world_size(),
        )?)
    }

    /// The ranks of this rank's contrast scope, out of every rank's `all` (in rank order).
    pub fn scope_slice<'b, T>(&self, all: &'b [T]) -> &'b [T] {
        let first = self.rank() / self.scope_size * self.scope_size;
        &all[first..first + self.scope_size]
    }

    /// Mean over ranks of a 0-dim tensor, on the device (one all-reduce when W > 1;
    /// nothing is read to the host).
    pub fn mean(&self, value: &Tensor) -> Result<Tensor> {
        let mut v = value.reshape([1]);
        self.sum(&mut v)?;
        Ok(v.reshape([] as [i64; 0]) / self.world_size() as f64)
    }

    /// `values` becomes its sum over ranks, on the device (one all-reduce when W > 1).
    pub fn sum(&self, values: &mut Tensor) -> Result<()> {
        if self.world_size() > 1 {
            self.world.all_reduce(values)?;
        }
        Ok(())
    }

    pub fn barrier(&self) -> Result<()> {
        Ok(self.world.barrier()?)
    }
}

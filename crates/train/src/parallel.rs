//! Data parallelism: how W ranks' work adds up to one optimizer step on the global batch.
//!
//! One rule (see docs/architecture.md): every rank's backward computes its contribution to
//! one global objective, and gradients are **summed** across ranks, never averaged.
//! - A loss that is a mean over the rank's own examples (DPO, IPO, KTO, SFT, and RPO with
//!   `local` scope) enters with weight 1/W: the global objective is the mean over ranks.
//! - RPO's contrast matrix over a scope of S ranks enters with weight S/W: each rank
//!   pushes the scope loss's gradient through its own samples, the S ranks of a scope
//!   together give that scope's full gradient, and the W/S scopes are averaged.

use anyhow::Result;
use rpo_comm::{all_reduce_f64s, Collective};
use rpo_contrast::{ContrastForm, ContrastScope};

use crate::reward_stats::RewardStats;

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
        rpo_data::rank_slice(global, self.rank(), self.world_size())
    }

    /// Mean over ranks of one number.
    pub fn mean(&self, value: f64) -> Result<f64> {
        let mut v = [value];
        all_reduce_f64s(self.world, &mut v)?;
        Ok(v[0] / self.world_size() as f64)
    }

    /// Reward sums and counts over all ranks.
    pub fn sum_stats(&self, stats: &mut RewardStats) -> Result<()> {
        let mut v = [
            stats.chosen_sum,
            stats.chosen_count as f64,
            stats.rejected_sum,
            stats.rejected_count as f64,
            stats.correct,
            stats.compared as f64,
            stats.tokens as f64,
            stats.tokens_computed as f64,
        ];
        all_reduce_f64s(self.world, &mut v)?;
        *stats = RewardStats {
            chosen_sum: v[0],
            chosen_count: v[1] as usize,
            rejected_sum: v[2],
            rejected_count: v[3] as usize,
            correct: v[4],
            compared: v[5] as usize,
            tokens: v[6] as usize,
            tokens_computed: v[7] as usize,
        };
        Ok(())
    }

    pub fn barrier(&self) -> Result<()> {
        self.world.barrier()
    }
}

//! One unit's parameters in the compute dtype.
//!
//! The model's own tensors (the leaves its forward reads) are re-pointed with `set_data`
//! at views of a flat buffer: the persistent full buffer in stages 0–2; in stage 3 a
//! buffer all-gathered from every rank's slice just before the unit runs and dropped
//! right after, when the tensors are emptied (as DeepSpeed does with `param.data`).

use anyhow::Result;
use rpo_comm::Collective;
use tch::Tensor;

use crate::layout::UnitLayout;

pub struct UnitParams {
    /// The model's tensors of this unit, in slot order.
    vars: Vec<Tensor>,
    /// The full flat buffer, while it exists.
    full: Option<Tensor>,
    /// Stage 3: this rank's slice, the only persistent copy.
    shard: Option<Tensor>,
}

impl UnitParams {
    /// Stages 0–2: the tensors view `full` for good.
    pub fn resident(vars: Vec<Tensor>, full: Tensor, layout: &UnitLayout) -> Self {
        let mut p = Self {
            vars,
            full: Some(full),
            shard: None,
        };
        p.point(layout);
        p
    }

    /// Stage 3: only `shard` is kept; the tensors hold nothing until [`gather`](Self::gather).
    pub fn sharded(vars: Vec<Tensor>, shard: Tensor) -> Self {
        let mut p = Self {
            vars,
            full: None,
            shard: Some(shard),
        };
        p.release();
        p
    }

    pub fn vars(&self) -> &[Tensor] {
        &self.vars
    }

    /// The full flat buffer (stages 0–2 always; stage 3 while gathered).
    pub fn full(&self) -> Option<&Tensor> {
        self.full.as_ref()
    }

    /// Stage 3's persistent slice.
    pub fn shard(&self) -> Option<&Tensor> {
        self.shard.as_ref()
    }

    /// Makes the unit's parameters present (stage 3: one all-gather; otherwise nothing).
    pub fn gather(&mut self, comm: &dyn Collective, layout: &UnitLayout) -> Result<()> {
        if self.full.is_none() {
            let shard = self.shard.as_ref().expect("a unit without parameters");
            self.full = Some(comm.all_gather(shard)?);
            self.point(layout);
        }
        Ok(())
    }

    /// Frees the gathered parameters (stage 3 only; resident units stay).
    pub fn release(&mut self) {
        if self.shard.is_none() {
            return;
        }
        self.full = None;
        for v in &mut self.vars {
            let empty = Tensor::empty([0], (v.kind(), v.device()));
            v.set_data(&empty);
        }
    }

    fn point(&mut self, layout: &UnitLayout) {
        let full = self.full.as_ref().expect("pointing at a buffer");
        for (v, view) in self.vars.iter_mut().zip(layout.views(full)) {
            v.set_data(&view);
        }
    }
}

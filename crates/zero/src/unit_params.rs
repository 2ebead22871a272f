//! One unit's parameters in the compute dtype.
//!
//! The model's own tensors (the leaves its forward reads) are re-pointed with `set_data`
//! at views of a flat buffer: the persistent full buffer in stages 0–2; in stage 3 a
//! buffer all-gathered from every rank's slice just before the unit runs and dropped
//! right after, when the tensors are emptied (as DeepSpeed does with `param.data`).
//! With `[zero] overlap` a stage-3 unit's all-gather can be started ahead of use
//! ([`start_gather`](UnitParams::start_gather)) and is awaited by `gather`.

use rpo_comm::{Collective, Pending, Result};
use tch::Tensor;

use crate::layout::UnitLayout;

pub struct UnitParams {
    /// The model's tensors of this unit, in slot order.
    vars: Vec<Tensor>,
    /// The full flat buffer, while it exists.
    full: Option<Tensor>,
    /// Stage 3: this rank's slice, the only persistent copy.
    shard: Option<Tensor>,
    /// Offloaded: the whole unit in host memory, and the device it runs on.
    host: Option<(Tensor, tch::Device)>,
    /// Stage 3 with overlap: the all-gather of `shard` started ahead of use, not yet
    /// awaited (its result becomes `full` in [`gather`](Self::gather)).
    gathering: Option<Pending>,
}

impl UnitParams {
    /// Stages 0–2: the tensors view `full` for good.
    pub fn resident(vars: Vec<Tensor>, full: Tensor, layout: &UnitLayout) -> Self {
        let mut p = Self {
            vars,
            full: Some(full),
            shard: None,
            host: None,
            gathering: None,
        };
        p.point(layout);
        p
    }

    /// Offloaded: the whole unit stays in `host` memory and is copied to `device` on use.
    pub fn offloaded(vars: Vec<Tensor>, host: Tensor, device: tch::Device) -> Self {
        let mut p = Self {
            vars,
            full: None,
            shard: None,
            host: Some((host, device)),
            gathering: None,
        };
        p.release();
        p
    }

    /// Stage 3: only `shard` is kept; the tensors hold nothing until [`gather`](Self::gather).
    pub fn sharded(vars: Vec<Tensor>, shard: Tensor) -> Self {
        let mut p = Self {
            vars,
            full: None,
            shard: Some(shard),
            host: None,
            gathering: None,
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

    /// An offloaded unit's host copy.
    pub fn host(&self) -> Option<&Tensor> {
        self.host.as_ref().map(|(h, _)| h)
    }

    /// Stage 3's persistent slice.
    pub fn shard(&self) -> Option<&Tensor> {
        self.shard.as_ref()
    }

    /// Makes the unit's parameters present (stage 3: one all-gather; offloaded: a copy
    /// to the device, asynchronous from pinned memory; resident: nothing).
    /// A gather started by [`start_gather`](Self::start_gather) is awaited here.
    pub fn gather(&mut self, comm: &dyn Collective, layout: &UnitLayout) -> Result<()> {
        if self.full.is_none() {
            self.full = Some(match (&self.shard, &self.host) {
                (Some(_), _) if self.gathering.is_some() => {
                    self.gathering.take().expect("started").wait()?
                }
                (Some(shard), _) => comm.all_gather(shard)?,
                (None, Some((host, device))) => host.to_device_(*device, host.kind(), true, false),
                (None, None) => unreachable!("a resident unit is always present"),
            });
            self.point(layout);
        }
        Ok(())
    }

    /// Stage 3: starts the all-gather of this unit's slices without waiting for it
    /// ([`gather`](Self::gather) does). Nothing when the unit is present, already being
    /// gathered, or not sharded. Every rank must start the same gathers in the same order.
    pub fn start_gather(&mut self, comm: &dyn Collective) -> Result<()> {
        if let (None, None, Some(shard)) = (&self.full, &self.gathering, &self.shard) {
            self.gathering = Some(comm.start_all_gather(shard)?);
        }
        Ok(())
    }

    /// Drives a started gather (Open MPI progresses a collective only inside MPI calls).
    pub fn progress(&mut self) -> Result<()> {
        if let Some(started) = &mut self.gathering {
            started.test()?;
        }
        Ok(())
    }

    /// Whether [`gather`](Self::gather) is only a copy that can start ahead of use.
    pub fn prefetchable(&self) -> bool {
        self.host.is_some()
    }

    /// Frees the gathered parameters (stage 3 and offloaded; resident units stay).
    pub fn release(&mut self) {
        if self.shard.is_none() && self.host.is_none() {
            return;
        }
        self.full = None;
        // A gather still in flight is waited for as it is dropped (MPI writes its buffer).
        self.gathering = None;
        // Empty, but on the device and in the kind the unit runs in (a deferred model's
        // tensors start on the CPU in fp32).
        let (kind, device) = match (&self.shard, &self.host) {
            (Some(shard), _) => (shard.kind(), shard.device()),
            (None, Some((host, device))) => (host.kind(), *device),
            (None, None) => unreachable!("resident units are never released"),
        };
        for v in &mut self.vars {
            v.set_data(&Tensor::empty([0], (kind, device)));
        }
    }

    fn point(&mut self, layout: &UnitLayout) {
        let full = self.full.as_ref().expect("pointing at a buffer");
        for (v, view) in self.vars.iter_mut().zip(layout.views(full)) {
            v.set_data(&view);
        }
    }
}

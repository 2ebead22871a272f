//! Gradient buffers, per unit, in the reduce dtype (`[zero] reduce_dtype`: fp32 unless
//! bf16 is asked for; a bf16 unit gradient from the backward is widened as it is added).
//!
//! Stages 0–1 accumulate each unit's full flat gradient over the micro-batches of a step.
//! Stages 2–3 collect a unit's full gradient only while its backward runs (`pending`),
//! reduce-scatter it as soon as the unit is done, free it, and accumulate just their own
//! slice. A tied LM head adds to the embedding's pending gradient, which completes when
//! the embedding (the last unit of the backward) is done.
//!
//! With `[zero] overlap` (the default) a unit's reduce-scatter is only started when its
//! backward ends and runs while the next unit computes; it is awaited, and its slice added,
//! when the next unit's reduce-scatter would start (at most [`MAX_IN_FLIGHT`] in flight)
//! or when the backward ends ([`GradBuffers::drain`]). Each unit's slice still receives
//! its micro-batches' sums in the same order, so the result is bit for bit the blocking
//! one's.

use rpo_comm::{Collective, Pending, Result};
use std::collections::VecDeque;
use tch::{Kind, Tensor};

/// Reduce-scatters in flight at once with overlap: each holds its unit's full gradient
/// (the send buffer) until it completes, so stages 2–3 hold at most this many full unit
/// gradients besides the one being built (one without overlap).
pub const MAX_IN_FLIGHT: usize = 1;

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
    /// Stages 2–3: start reduce-scatters without waiting (`[zero] overlap`).
    overlap: bool,
    /// Started reduce-scatters, oldest first, with their unit.
    in_flight: VecDeque<(usize, Pending)>,
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
            overlap: false,
            in_flight: VecDeque::new(),
        }
    }

    /// Stages 2–3 start each unit's reduce-scatter and await it later (see the module).
    pub fn with_overlap(mut self, overlap: bool) -> Self {
        self.overlap = overlap;
        self
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

    /// Unit `unit`'s backward is done: stages 2–3 reduce-scatter its gradient and free
    /// the full buffer: now, or with overlap started now and awaited later (the oldest
    /// in flight is awaited first when [`MAX_IN_FLIGHT`] are).
    pub fn finish(&mut self, unit: usize, comm: &dyn Collective) -> Result<()> {
        if let Some(full) = self.pending[unit].take() {
            if self.overlap {
                while self.in_flight.len() >= MAX_IN_FLIGHT {
                    self.complete_oldest()?;
                }
                let started = comm.start_reduce_scatter(&full)?;
                self.in_flight.push_back((unit, started));
            } else {
                let own = comm.reduce_scatter(&full)?;
                self.add_own(unit, &own);
            }
        }
        Ok(())
    }

    /// Drives the reduce-scatters in flight (Open MPI progresses a collective only inside
    /// MPI calls) and completes those at the front that are done, freeing their buffers.
    pub fn progress(&mut self) -> Result<()> {
        for (_, started) in self.in_flight.iter_mut() {
            started.test()?;
        }
        while let Some((_, front)) = self.in_flight.front_mut() {
            if !front.test()? {
                break;
            }
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// Awaits every reduce-scatter in flight: the own slices are complete (end of a
    /// backward).
    pub fn drain(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// Reduce-scatters started and not yet awaited.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn complete_oldest(&mut self) -> Result<()> {
        if let Some((unit, started)) = self.in_flight.pop_front() {
            let own = started.wait()?;
            self.add_own(unit, &own);
        }
        Ok(())
    }

    fn add_own(&mut self, unit: usize, own: &Tensor) {
        tch::no_grad(|| {
            let _ = self.accumulated[unit].g_add_(own);
        });
    }

    /// The step's gradients, summed over ranks, shaped like the master weights: full
    /// buffers in stage 0 (one all-reduce each), own slices otherwise (stage 1 reduce-
    /// scatters its full buffers here; stages 2–3 already did during backward).
    pub fn reduced(&mut self, comm: &dyn Collective) -> Result<Vec<Tensor>> {
        self.drain()?;
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
                .map(|g| comm.reduce_scatter(g))
                .collect(),
            ZeroStage::Zero2 | ZeroStage::Zero3 => {
                Ok(self.accumulated.iter().map(Tensor::shallow_clone).collect())
            }
        }
    }

    /// Zeroes the accumulators for the next step.
    pub fn zero(&mut self) {
        // Nothing is in flight after a backward; an interrupted one's collectives are
        // awaited as they are dropped.
        self.in_flight.clear();
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

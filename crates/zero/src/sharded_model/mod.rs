//! The policy under ZeRO: the model, its per-unit compute parameters, fp32 master
//! weights for the owned slices, and gradient buffers, on a communicator of its own
//! (so the bytes it moves are counted apart from the contrast's).
//!
//! One type, one module; each file is one thing a [`ShardedModel`] does:
//! - here: building it (a policy, a frozen reference, a copy), gathering and releasing
//!   units, and what its state costs;
//! - [`executor`]: the layer-wise forward and backward;
//! - `step.rs`: the optimizer step on the owned slices;
//! - `save_hf.rs`: Hugging Face folders written one gathered unit at a time;
//! - `checkpoint.rs`: training checkpoints written and loaded
//!   ([`crate::checkpoint`] is their format).

mod checkpoint;
pub mod executor;
mod save_hf;
mod step;

use rpo_comm::{Collective, Traffic};
use rpo_model::{Llama, LlamaConfig, UnitId};
use rpo_optim::Optimizer;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{Result, ZeroError};
use crate::grads::GradBuffers;
use crate::layout::{ModelLayout, UnitLayout};
use crate::memory::StateBytes;
use crate::stage::ZeroStage;
use crate::unit_params::UnitParams;

#[derive(Debug, Clone, Copy)]
pub struct ZeroOptions {
    pub stage: ZeroStage,
    /// The dtype forward and backward run in (fp32 master weights either way).
    pub compute_kind: Kind,
    /// Recompute each unit in the backward from its saved input instead of keeping its
    /// graph (always on in stage 3).
    pub checkpoint_activations: bool,
    /// At most this many (rows × positions) tokens' logits exist at once.
    pub logits_chunk_tokens: i64,
    /// The dtype gradients accumulate over micro-batches and are summed over ranks in
    /// (`[zero] reduce_dtype`): fp32 by default, so bf16 compute loses no gradient bits to
    /// the sums.
    pub reduce_kind: Kind,
    /// `[zero] overlap`: stage 2–3 reduce-scatters start when a unit's backward ends and
    /// are awaited later; stage 3 starts the next unit's all-gather before the current
    /// unit runs (one unit ahead). Off: every collective blocks where it is issued.
    pub overlap: bool,
}

impl ZeroOptions {
    /// `stage`, computing in `compute_kind`, with activation checkpointing on (as stage 3
    /// requires), 4096-token logit chunks, fp32 gradient sums and overlap on: the
    /// defaults of `[zero]` but checkpointing. Change a field with
    /// `ZeroOptions { overlap: false, ..ZeroOptions::new(stage, kind) }`.
    pub fn new(stage: ZeroStage, compute_kind: Kind) -> Self {
        Self {
            stage,
            compute_kind,
            checkpoint_activations: true,
            logits_chunk_tokens: 4096,
            reduce_kind: Kind::Float,
            overlap: true,
        }
    }
}

pub struct ShardedModel {
    pub(crate) model: Llama,
    /// Owns the variables the model reads (re-pointed at the flat buffers).
    store: VarStore,
    pub(crate) layout: ModelLayout,
    pub(crate) options: ZeroOptions,
    pub(crate) comm: Box<dyn Collective>,
    pub(crate) params: RefCell<Vec<UnitParams>>,
    /// fp32, per unit: the full buffer (stage 0) or this rank's slice (1–3).
    pub(crate) master: RefCell<Vec<Tensor>>,
    /// fp32 compute: the masters are the compute weights (or their owned part).
    pub(crate) master_aliased: bool,
    pub(crate) grads: RefCell<GradBuffers>,
    /// While set (evaluation, saving), gathered units stay gathered.
    pinned: Cell<bool>,
    /// Time the executor spent in its ZeRO collectives' calls (starting them and waiting
    /// for them) since the model was built.
    comm_wait: Cell<Duration>,
}

/// A unit's elements `[start, start + len)` of its padded flat buffer (padding is 0), in
/// any float kind: where a model's values come from.
pub type UnitSource<'a> = dyn FnMut(&UnitLayout, i64, i64) -> Result<Tensor> + 'a;

/// Where a frozen model (a reference) keeps its parameters between uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrozenPlacement {
    /// This rank's slice of every unit, gathered unit by unit (ZeRO-3 without training state).
    Sharded,
    /// Whole units in (pinned, with CUDA) host memory, copied to the device unit by unit,
    /// the next unit's copy started before the current one runs.
    Offloaded,
}

/// A [`UnitSource`] reading named parameters' flat elements: `read(name, start, len)`.
pub fn source_from_params<'a>(
    mut read: impl FnMut(&str, i64, i64) -> Result<Tensor> + 'a,
) -> Box<UnitSource<'a>> {
    Box::new(move |unit: &UnitLayout, start: i64, len: i64| {
        let out = Tensor::zeros([len], (Kind::Float, tch::Device::Cpu));
        for slot in &unit.params {
            let (lo, hi) = (
                start.max(slot.offset),
                (start + len).min(slot.offset + slot.numel),
            );
            if hi > lo {
                let piece = read(&slot.name, lo - slot.offset, hi - lo)?;
                tch::no_grad(|| out.narrow(0, lo - start, hi - lo).copy_(&piece));
            }
        }
        Ok(out)
    })
}

/// The model's tensors by name, and the unit layout they form on `world` ranks.
fn layout_of(
    model: &Llama,
    vs: &VarStore,
    world: usize,
) -> Result<(ModelLayout, HashMap<String, Tensor>)> {
    let by_name: HashMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    let shapes: Vec<(String, Vec<i64>)> =
        by_name.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let layout = ModelLayout::new(&shapes, model.config().num_hidden_layers as usize, world)?;
    Ok((layout, by_name))
}

/// The model's tensors of `unit`, in slot order.
fn unit_vars(unit: &UnitLayout, by_name: &HashMap<String, Tensor>) -> Vec<Tensor> {
    unit.params
        .iter()
        .map(|s| by_name[&s.name].shallow_clone())
        .collect()
}

impl ShardedModel {
    /// Takes over `model` and its fp32 store `vs`. Every rank of `world` must call this;
    /// all start from rank 0's values.
    pub fn new(
        model: Llama,
        vs: VarStore,
        world: &dyn Collective,
        options: ZeroOptions,
    ) -> Result<Self> {
        let by_name: HashMap<String, Tensor> = vs.variables();
        let mut source = |unit: &UnitLayout, start: i64, len: i64| -> Result<Tensor> {
            let vars = unit_vars(unit, &by_name);
            let mut flat = unit.flatten(&vars, Kind::Float)?;
            world
                .broadcast(&mut flat, 0)
                .map_err(|source| ZeroError::Collective {
                    what: format!("broadcasting unit {}", unit.unit),
                    source,
                })?;
            Ok(flat.narrow(0, start, len).copy())
        };
        Self::from_source(model, vs, world, options, &mut source)
    }

    /// Takes over `model` and its store (whose values are ignored: [`Llama::deferred`]
    /// allocates nothing resident) and reads from `source` only the elements this rank
    /// keeps: under stage 3 its slices, never the whole model. Every rank must call this.
    pub fn from_source(
        model: Llama,
        vs: VarStore,
        world: &dyn Collective,
        options: ZeroOptions,
        source: &mut UnitSource,
    ) -> Result<Self> {
        let comm = world.split(0).map_err(|source| ZeroError::Collective {
            what: "creating the ZeRO communicator".into(),
            source,
        })?;
        let (rank, stage, kind) = (world.rank(), options.stage, options.compute_kind);
        let (layout, by_name) = layout_of(&model, &vs, world.world_size())?;
        let aliased = kind == Kind::Float;
        let (mut params, mut master) = (Vec::new(), Vec::new());
        for unit in &layout.units {
            let vars = unit_vars(unit, &by_name);
            let (start, len) = unit.owned(rank);
            let device = comm.device();
            match stage {
                ZeroStage::Zero3 => {
                    let own32 = source(unit, start, len)?
                        .to_device(device)
                        .to_kind(Kind::Float);
                    let shard = if aliased {
                        own32.shallow_clone()
                    } else {
                        own32.to_kind(kind)
                    };
                    master.push(own32);
                    params.push(UnitParams::sharded(vars, shard));
                }
                _ => {
                    let flat = source(unit, 0, unit.padded)?
                        .to_device(device)
                        .to_kind(Kind::Float);
                    let own = |t: &Tensor| t.narrow(0, start, len);
                    let full = if aliased {
                        flat.shallow_clone()
                    } else {
                        flat.to_kind(kind)
                    };
                    master.push(match (stage, aliased) {
                        (ZeroStage::Zero0, _) => flat,
                        (_, true) => own(&full),
                        (_, false) => own(&flat).copy(),
                    });
                    params.push(UnitParams::resident(vars, full, unit));
                }
            }
        }
        let grads = GradBuffers::new(&layout, stage, options.reduce_kind, comm.device())
            .with_overlap(options.overlap);
        Ok(Self {
            model,
            store: vs,
            layout,
            options,
            comm,
            params: RefCell::new(params),
            master: RefCell::new(master),
            master_aliased: aliased,
            grads: RefCell::new(grads),
            pinned: Cell::new(false),
            comm_wait: Cell::new(Duration::ZERO),
        })
    }

    /// A frozen model in `kind` (no master weights, gradients or optimizer state), placed
    /// as `placement` says, its values from `source`: a reference model. Every rank of
    /// `world` must call this.
    pub fn frozen(
        model: Llama,
        vs: VarStore,
        world: &dyn Collective,
        kind: Kind,
        logits_chunk_tokens: i64,
        placement: FrozenPlacement,
        source: &mut UnitSource,
    ) -> Result<Self> {
        let comm = world.split(0).map_err(|source| ZeroError::Collective {
            what: "creating the reference's communicator".into(),
            source,
        })?;
        let (layout, by_name) = layout_of(&model, &vs, world.world_size())?;
        let device = comm.device();
        let mut params = Vec::new();
        for unit in &layout.units {
            let vars = unit_vars(unit, &by_name);
            params.push(match placement {
                FrozenPlacement::Sharded => {
                    let (start, len) = unit.owned(world.rank());
                    UnitParams::sharded(
                        vars,
                        source(unit, start, len)?.to_device(device).to_kind(kind),
                    )
                }
                FrozenPlacement::Offloaded => {
                    let host = source(unit, 0, unit.padded)?
                        .to_device(tch::Device::Cpu)
                        .to_kind(kind);
                    let host = if device.is_cuda() {
                        host.pin_memory(device)
                    } else {
                        host
                    };
                    UnitParams::offloaded(vars, host, device)
                }
            });
        }
        let options = ZeroOptions {
            logits_chunk_tokens,
            reduce_kind: kind,
            ..ZeroOptions::new(ZeroStage::Zero3, kind)
        };
        Ok(Self {
            model,
            store: vs,
            grads: RefCell::new(GradBuffers::new(
                &ModelLayout {
                    units: Vec::new(),
                    world: layout.world,
                },
                options.stage,
                kind,
                device,
            )),
            layout,
            options,
            comm,
            params: RefCell::new(params),
            master: RefCell::new(Vec::new()),
            master_aliased: false,
            pinned: Cell::new(false),
            comm_wait: Cell::new(Duration::ZERO),
        })
    }

    /// A frozen model whose stage-3 gathers start one unit ahead (`true`, the default of
    /// [`frozen`](Self::frozen)) or block where they are needed (`false`).
    pub fn with_overlap(mut self, overlap: bool) -> Self {
        self.options.overlap = overlap;
        self
    }

    /// A frozen copy of this model's current compute weights, placed as `placement` says
    /// (the reference as a copy of the policy). Every rank must call this.
    pub fn frozen_copy(&self, placement: FrozenPlacement) -> Result<Self> {
        let (model, vs) = Llama::deferred(self.config())?;
        let mut source = |unit: &UnitLayout, start: i64, len: i64| -> Result<Tensor> {
            let i = self.layout.index(unit.unit);
            self.gather(i)?;
            let part = self.params.borrow()[i]
                .full()
                .expect("gathered")
                .narrow(0, start, len)
                .copy();
            self.release(i);
            Ok(part)
        };
        Ok(Self::frozen(
            model,
            vs,
            self.comm.as_ref(),
            self.options.compute_kind,
            self.options.logits_chunk_tokens,
            placement,
            &mut source,
        )?
        .with_overlap(self.options.overlap))
    }

    /// The model; under stage 3 its parameters are present only between
    /// [`gather_all`](Self::gather_all) and [`release_all`](Self::release_all).
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The store of the model's (compute) variables, by Hugging Face name; present as
    /// [`model`](Self::model) says.
    pub fn store(&self) -> &VarStore {
        &self.store
    }

    pub fn config(&self) -> &LlamaConfig {
        self.model.config()
    }

    pub fn layout(&self) -> &ModelLayout {
        &self.layout
    }

    pub fn options(&self) -> &ZeroOptions {
        &self.options
    }

    /// Bytes the ZeRO collectives (parameter gathers, gradient reductions) have moved.
    pub fn traffic(&self) -> Traffic {
        self.comm.traffic()
    }

    pub(crate) fn unit(&self, unit: UnitId) -> usize {
        self.layout.index(unit)
    }

    /// Makes unit `i`'s parameters present (an all-gather in stage 3, or the wait for
    /// one [`prefetch`](Self::prefetch) started).
    pub(crate) fn gather(&self, i: usize) -> rpo_comm::Result<()> {
        self.timed(|| self.params.borrow_mut()[i].gather(self.comm.as_ref(), &self.layout.units[i]))
    }

    /// Starts making unit `i` present ahead of use: the copy of an offloaded unit, or with
    /// `overlap` a stage-3 unit's all-gather. Nothing when there is no unit `i`.
    pub(crate) fn prefetch(&self, i: usize) -> rpo_comm::Result<()> {
        let prefetchable = self
            .params
            .borrow()
            .get(i)
            .is_some_and(UnitParams::prefetchable);
        if prefetchable {
            self.gather(i)?;
        } else if self.options.overlap && i < self.layout.units.len() {
            self.timed(|| self.params.borrow_mut()[i].start_gather(self.comm.as_ref()))?;
        }
        Ok(())
    }

    /// Drives the collectives in flight (Open MPI progresses them only inside MPI calls):
    /// called between units and between chunks of the head.
    pub(crate) fn progress(&self) -> rpo_comm::Result<()> {
        if !self.options.overlap {
            return Ok(());
        }
        self.timed(|| {
            for p in self.params.borrow_mut().iter_mut() {
                p.progress()?;
            }
            self.grads.borrow_mut().progress()
        })
    }

    /// Runs `f` (a collective's start, wait, or both) and counts its time as waiting.
    pub(crate) fn timed<T>(&self, f: impl FnOnce() -> rpo_comm::Result<T>) -> rpo_comm::Result<T> {
        let started = Instant::now();
        let out = f();
        self.comm_wait.set(self.comm_wait.get() + started.elapsed());
        out
    }

    /// Seconds this model's forwards and backwards have spent in ZeRO collective calls
    /// (parameter gathers and gradient reduce-scatters: starting them, testing them and
    /// waiting for them) since it was built; with overlap, what was left unhidden.
    pub fn comm_wait_s(&self) -> f64 {
        self.comm_wait.get().as_secs_f64()
    }

    /// Frees unit `i`'s gathered parameters (stage 3), unless pinned.
    pub(crate) fn release(&self, i: usize) {
        if !self.pinned.get() {
            self.params.borrow_mut()[i].release();
        }
    }

    /// Every unit present until [`release_all`](Self::release_all), e.g. for evaluation
    /// on one rank. Every rank must call both.
    pub fn gather_all(&self) -> Result<()> {
        for i in 0..self.layout.units.len() {
            self.gather(i)?;
        }
        self.pinned.set(true);
        Ok(())
    }

    pub fn release_all(&self) {
        self.pinned.set(false);
        for i in 0..self.layout.units.len() {
            self.release(i);
        }
    }

    /// The model's tensors of unit `i` (leaves its forward reads).
    pub(crate) fn vars(&self, i: usize) -> Vec<Tensor> {
        self.params.borrow()[i]
            .vars()
            .iter()
            .map(Tensor::shallow_clone)
            .collect()
    }

    /// The whole fp32 master weights by Hugging Face name, unpadded (for saving and
    /// copying). Every rank must call this; every rank gets them.
    pub fn full_master(&self) -> Result<Vec<(String, Tensor)>> {
        let master = self.master.borrow();
        let mut named = Vec::new();
        for (unit, m) in self.layout.units.iter().zip(master.iter()) {
            let full = if self.options.stage.shards_optimizer() {
                self.comm.all_gather(m)?
            } else {
                m.shallow_clone()
            };
            for (slot, view) in unit.params.iter().zip(unit.views(&full)) {
                named.push((slot.name.clone(), view.copy()));
            }
        }
        Ok(named)
    }

    /// The gradients accumulated since the last step, by name: the whole gradient on one
    /// process (or in stages 0–1 before the step's reduction), for checks and debugging.
    pub fn local_gradients(&self) -> Vec<(String, Tensor)> {
        let grads = self.grads.borrow();
        let mut named = Vec::new();
        for (unit, g) in self.layout.units.iter().zip(grads.accumulated()) {
            if g.numel() as i64 == unit.padded {
                for (slot, view) in unit.params.iter().zip(unit.views(g)) {
                    named.push((slot.name.clone(), view.copy()));
                }
            }
        }
        named
    }

    /// Per-rank bytes the formula expects for this stage, world size and optimizer.
    pub fn expected_state(&self, optimizer: &dyn Optimizer) -> StateBytes {
        let c = self.options.compute_kind.elt_size_in_bytes() as i64;
        let g = self.options.reduce_kind.elt_size_in_bytes() as i64;
        let m = if self.master_aliased { 0 } else { 4 };
        let (stage, world, psi) = (self.options.stage, self.layout.world, self.layout.padded());
        StateBytes {
            // The gradient buffers are in the reduce dtype.
            gradients: StateBytes::expected(stage, world, psi, g, 0, 0).gradients,
            ..StateBytes::expected(
                stage,
                world,
                psi,
                c,
                m,
                4 * optimizer.slots_per_param() as i64,
            )
        }
    }

    /// Bytes of the parameters this rank keeps between uses: its slices (stage 3,
    /// sharded), the host copies (offloaded) or the full buffers (resident).
    pub fn parameter_bytes(&self) -> i64 {
        let bytes = |t: &Tensor| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64;
        self.params
            .borrow()
            .iter()
            .map(|p| p.shard().or(p.host()).or(p.full()).map_or(0, bytes))
            .sum()
    }

    /// Per-rank bytes the state tensors actually hold (the optimizer's after its first step).
    pub fn measured_state(&self, optimizer: &dyn Optimizer) -> StateBytes {
        let bytes = |t: &Tensor| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64;
        StateBytes {
            parameters: self.parameter_bytes(),
            gradients: self.grads.borrow().bytes(),
            master: if self.master_aliased {
                0
            } else {
                self.master.borrow().iter().map(bytes).sum()
            },
            optimizer: optimizer
                .state_tensors()
                .iter()
                .filter(|(name, _)| name != "step")
                .map(|(_, t)| bytes(t))
                .sum(),
        }
    }
}

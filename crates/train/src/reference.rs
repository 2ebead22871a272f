//! The frozen reference model, placed as `[reference] mode` says; every mode gives the
//! same log-probs.
//!
//! - `live`: a full copy on the training device.
//! - `sharded`: ZeRO-3 style, this rank's slice of every unit, gathered unit by unit; no
//!   gradients or optimizer state.
//! - `offload`: whole units in (pinned, with CUDA) host memory, copied to the device unit
//!   by unit, the next unit's copy started before the current one runs.
//! - `precomputed`: no model; log-probs looked up in the cache `rpo-shard precompute-ref`
//!   wrote ([`crate::reference_cache`]), refused unless made for this run.
//!
//! Its values come from `[reference] path`, from the policy when preference training
//! starts, or from a checkpoint being resumed.

use rpo_comm::Collective;
use rpo_model::safetensors_io::SafetensorsFile;
use rpo_model::{load_hf, save_hf, HfCheckpoint, Llama, LlamaConfig};
use rpo_zero::{source_from_params, FrozenPlacement, ShardedModel};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::choices::ReferenceMode;
use crate::config::TrainConfig;
use crate::data_source::RunData;
use crate::device_seqs::{frozen_logps, DeviceSeqs};
use crate::error::{Result, TrainError};
use crate::objective::Objective;
use crate::reference_cache::{keys_fingerprint, reference_fingerprint, ReferenceCache};
use crate::reference_plan::run_keys;

pub enum Reference {
    Live(Llama, VarStore),
    Placed(ShardedModel),
    Precomputed(ReferenceCache),
}

/// Where a reference model of `mode` lives (`None`: live, a full copy).
fn placement(mode: ReferenceMode) -> Result<Option<FrozenPlacement>> {
    Ok(match mode {
        ReferenceMode::Live => None,
        ReferenceMode::Sharded => Some(FrozenPlacement::Sharded),
        ReferenceMode::Offload => Some(FrozenPlacement::Offloaded),
        ReferenceMode::Precomputed => {
            bail_config!(
                "reference.mode",
                "reference.mode = \"precomputed\" cannot hold a model"
            )
        }
    })
}

impl Reference {
    /// A placed reference's stage-3 gathers start one unit ahead (`[zero] overlap`) or
    /// block where they are needed; the others have nothing to gather.
    pub fn with_overlap(self, overlap: bool) -> Self {
        match self {
            Reference::Placed(model) => Reference::Placed(model.with_overlap(overlap)),
            other => other,
        }
    }

    /// A copy of the policy's current compute weights. Every rank must call this.
    pub fn copy_of(policy: &ShardedModel, mode: ReferenceMode) -> Result<Self> {
        Ok(match placement(mode)? {
            Some(p) => Reference::Placed(policy.frozen_copy(p)?),
            None => {
                let kind = policy.options().compute_kind;
                let mut vs = VarStore::new(policy.model().device());
                vs.set_kind(kind); // before building, so no fp32 copy is ever allocated
                let model = Llama::new(&vs.root(), policy.config())?;
                policy.gather_all()?;
                let copied = vs.copy(policy.store());
                policy.release_all();
                copied?;
                vs.freeze();
                Reference::Live(model, vs)
            }
        })
    }

    /// A Hugging Face folder; `sharded` reads only this rank's slices. Every rank must
    /// call this.
    pub fn load_hf(
        dir: &Path,
        mode: ReferenceMode,
        world: &dyn Collective,
        kind: Kind,
        chunk: i64,
    ) -> Result<Self> {
        match placement(mode)? {
            None => {
                let (model, mut vs, _) = load_hf(dir, world.device())?;
                vs.set_kind(kind);
                vs.freeze();
                Ok(Reference::Live(model, vs))
            }
            Some(p) => {
                let checkpoint = HfCheckpoint::open(dir)?;
                let config = LlamaConfig::from_file(&dir.join("config.json"))?;
                let read = |name: &str, start, len| -> rpo_zero::Result<Tensor> {
                    Ok(checkpoint.read_range(name, start, len, Kind::Float, Device::Cpu)?)
                };
                Self::placed(&config, p, world, kind, chunk, read)
            }
        }
    }

    /// Weights in one safetensors file, as checkpoints before the reference was written
    /// once per run held them (`reference.safetensors`).
    pub fn load_saved(
        file: &Path,
        config: &LlamaConfig,
        mode: ReferenceMode,
        world: &dyn Collective,
        kind: Kind,
        chunk: i64,
    ) -> Result<Self> {
        let saved = SafetensorsFile::open(file)?;
        let read = |name: &str, start, len| {
            Ok(saved.read_range(name, start, len, Kind::Float, Device::Cpu)?)
        };
        match placement(mode)? {
            Some(p) => Self::placed(config, p, world, kind, chunk, read),
            None => {
                let mut vs = VarStore::new(world.device());
                vs.set_kind(kind);
                let model = Llama::new(&vs.root(), config)?;
                tch::no_grad(|| -> Result<()> {
                    for (name, var) in vs.variables() {
                        var.shallow_clone()
                            .f_copy_(&saved.read(&name, kind, world.device())?)?;
                    }
                    Ok(())
                })?;
                vs.freeze();
                Ok(Reference::Live(model, vs))
            }
        }
    }

    /// The cache at `reference.cache`, refused before any training unless it covers
    /// exactly the sequences this run (on this many ranks) asks about and was computed by
    /// this run's reference. Every rank must call this (without `reference.path` the
    /// reference is `policy` as built, whose gathered weights are hashed).
    pub fn precomputed(
        cfg: &TrainConfig,
        data: &RunData,
        policy: &ShardedModel,
        world: &dyn Collective,
        kind: Kind,
    ) -> Result<Self> {
        let path = cfg.reference_cache_path();
        if !path.exists() {
            return Err(TrainError::MissingReferenceCache { path });
        }
        let cache = ReferenceCache::open(&path)?;
        let objective = Objective::from_config(&cfg.loss)?;
        let keys = run_keys(cfg, objective, data, world.world_size())?;
        let reference = reference_fingerprint(cfg, Some(policy), kind)?;
        cache.check(&keys_fingerprint(&keys), &reference)?;
        tracing::info!(cache = %path.display(), sequences = keys.len(), reference = %cache.header().reference, "precomputed reference");
        Ok(Reference::Precomputed(cache))
    }

    fn placed(
        config: &LlamaConfig,
        placement: FrozenPlacement,
        world: &dyn Collective,
        kind: Kind,
        chunk: i64,
        read: impl FnMut(&str, i64, i64) -> rpo_zero::Result<Tensor>,
    ) -> Result<Self> {
        let (model, vs) = Llama::deferred(config)?;
        let mut source = source_from_params(read);
        Ok(Reference::Placed(ShardedModel::frozen(
            model,
            vs,
            world,
            kind,
            chunk,
            placement,
            &mut source,
        )?))
    }

    /// Summed response log-probs `[B]`, without gradient. Every rank must call this
    /// together when the reference is sharded.
    pub fn logps(&self, seqs: &DeviceSeqs, chunk_tokens: i64) -> Result<Tensor> {
        match self {
            Reference::Live(model, _) => frozen_logps(model, seqs, chunk_tokens),
            Reference::Placed(model) => Ok(model.logps(&seqs.sequences())?),
            // Rows are hashed from the host copies (no read from the device); the values
            // are uploaded.
            Reference::Precomputed(cache) => Ok(cache
                .logps(&seqs.host_sequences())?
                .to_device(seqs.sequences().ids.device())),
        }
    }

    /// Writes the weights as a Hugging Face folder in the compute dtype, a sharded or
    /// offloaded reference one gathered unit at a time (never the whole model at once).
    /// Every rank must call this; the rank given `Some(dir)` writes.
    pub fn save_hf(&self, dir: Option<&Path>, config: &LlamaConfig) -> Result<()> {
        match self {
            Reference::Live(_, vs) => dir.map_or(Ok(()), |d| Ok(save_hf(d, vs, config)?)),
            Reference::Placed(model) => Ok(model.save_compute_hf(dir, config)?),
            Reference::Precomputed(cache) => bail!(
                Invalid,
                "a precomputed reference ({}) has no weights to save",
                cache.path().display()
            ),
        }
    }
}

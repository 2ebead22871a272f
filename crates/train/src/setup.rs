//! Set-up shared by the entry points (`run`, `precompute_ref`, `memory_plan`): the
//! compute dtype, the policy under ZeRO, a separate reference, the optimizer and the
//! prompt embedder, each built from the config. Nothing here trains.

use rpo_comm::Collective;
use rpo_model::{load_hf, preset, HfCheckpoint, Llama, LlamaConfig, TokenIds};
use rpo_optim::{AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig};
use rpo_zero::{source_from_params, ShardedModel, ZeroOptions};
use tch::{Device, Kind};

use crate::choices::ReferenceMode;
use crate::config::{OptimConfig, OptimizerName, TrainConfig};
use crate::data_source::RunData;
use crate::device::{check_available, parse_dtype};
use crate::error::{Result, TrainError};
use crate::objective::Objective;
use crate::prompt_embedding::{self, BagOfWords, PromptEmbedder};
use crate::reference::Reference;

/// The compute dtype (`model.dtype`) on `device`, once the device is known to exist.
pub fn compute_kind(cfg: &TrainConfig, device: Device) -> Result<Kind> {
    check_available(device)?;
    parse_dtype(&cfg.model.dtype, device)
}

/// A Hugging Face folder under ZeRO stage 3 (`options`): each rank reads only its own
/// slices (memory-mapped), never the whole model.
pub fn sharded_from_hf(
    path: &std::path::Path,
    world: &dyn Collective,
    options: ZeroOptions,
) -> Result<(ShardedModel, LlamaConfig)> {
    let config = LlamaConfig::from_file(&path.join("config.json"))?;
    let checkpoint = HfCheckpoint::open(path)?;
    let (model, vs) = Llama::deferred(&config)?;
    let mut source = source_from_params(|name: &str, start, len| {
        Ok(checkpoint.read_range(name, start, len, Kind::Float, Device::Cpu)?)
    });
    let policy = ShardedModel::from_source(model, vs, world, options, &mut source)?;
    Ok((policy, config))
}

/// The policy: a preset with random init from the seed, or a Hugging Face folder, under
/// ZeRO (fp32 master weights, compute parameters in `kind`), from rank 0's values.
pub fn build_policy(
    cfg: &TrainConfig,
    data: &RunData,
    world: &dyn Collective,
    kind: Kind,
) -> Result<(ShardedModel, LlamaConfig)> {
    let device = world.device();
    let options = ZeroOptions {
        stage: cfg.zero.stage,
        compute_kind: kind,
        checkpoint_activations: cfg.zero.checkpoint_activations(),
        logits_chunk_tokens: cfg.zero.logits_chunk_tokens as i64,
        reduce_kind: cfg.zero.reduce_kind(),
        overlap: cfg.zero.overlap,
    };
    if let (Some(path), true) = (&cfg.model.path, cfg.zero.stage.shards_parameters()) {
        let config = LlamaConfig::from_file(&path.join("config.json"))?;
        check_vocab(data, &config)?;
        return sharded_from_hf(path, world, options);
    }
    let (model, vs, config) = if let Some(path) = &cfg.model.path {
        load_hf(path, device)?
    } else {
        let mut config = preset_config(cfg)?;
        let tok = data.tokenizer.tokenizer();
        let special = data.tokenizer.special();
        config.vocab_size = tok.get_vocab_size(true) as i64;
        config.eos_token_id = Some(TokenIds::One(special.eos));
        config.bos_token_id = special.bos;
        config.pad_token_id = Some(special.pad);
        let (model, vs) = Llama::init(&config, device, Kind::Float, cfg.seed as i64)?;
        (model, vs, config)
    };
    check_vocab(data, &config)?;
    Ok((ShardedModel::new(model, vs, world, options)?, config))
}

/// The preset `model.preset` names (for a run without `model.path`).
pub fn preset_config(cfg: &TrainConfig) -> Result<LlamaConfig> {
    let name = cfg
        .model
        .preset
        .as_deref()
        .ok_or_else(|| TrainError::config("model.preset", "model.preset or model.path"))?;
    Ok(preset(name)?)
}

fn check_vocab(data: &RunData, config: &LlamaConfig) -> Result<()> {
    let vocab = data.tokenizer.tokenizer().get_vocab_size(true) as i64;
    if vocab > config.vocab_size {
        return Err(TrainError::VocabMismatch {
            tokenizer: vocab,
            model: config.vocab_size,
        });
    }
    Ok(())
}

/// A separate reference checkpoint, loaded up front so a bad path fails before training,
/// placed as `mode` says. Every rank must call this.
pub fn load_reference(
    cfg: &TrainConfig,
    mode: ReferenceMode,
    world: &dyn Collective,
    kind: Kind,
) -> Result<Option<Reference>> {
    let Some(path) = &cfg.reference.path else {
        return Ok(None);
    };
    let chunk = cfg.zero.logits_chunk_tokens as i64;
    Reference::load_hf(path, mode, world, kind, chunk)
        .map_err(|e| TrainError::LoadingReference {
            path: path.clone(),
            source: Box::new(e),
        })
        .map(|r| Some(r.with_overlap(cfg.zero.overlap)))
}

/// The optimizer `[optim]` names, with its hyperparameters.
pub fn build_optimizer(cfg: &OptimConfig) -> Box<dyn Optimizer> {
    // Every name is matched: an unknown one never gets here (it fails to parse).
    match cfg.name {
        OptimizerName::AdamW => Box::new(AdamW::new(AdamWConfig {
            beta1: cfg.betas[0],
            beta2: cfg.betas[1],
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
        })),
        OptimizerName::RmsProp => Box::new(RmsProp::new(RmsPropConfig {
            alpha: cfg.alpha,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            ..RmsPropConfig::default()
        })),
    }
}

/// The prompt embedder of `objective`: the sentence encoder (or its cache) only when the
/// weighting reads embeddings. Every rank must call this.
pub fn build_embedder(
    cfg: &TrainConfig,
    objective: Objective,
    data: &RunData,
    world: &dyn Collective,
) -> Result<Box<dyn PromptEmbedder>> {
    Ok(match objective {
        Objective::Rpo { weighting, .. } if weighting.uses_embeddings() => {
            prompt_embedding::build_for_run(&cfg.embedding, data, world.device(), world)?
        }
        _ => Box::new(BagOfWords { dim: 1 }), // never asked
    })
}

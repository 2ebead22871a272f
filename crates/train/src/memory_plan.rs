//! The memory plan of a training config (`rpo_zero::plan`): what `rpo-shard plan`
//! prints and what `train` logs at start, and the refusal of a stage that cannot fit
//! `zero.memory_budget`, before any weights are loaded.

use rpo_model::LlamaConfig;
use rpo_zero::plan::{parse_bytes, MemoryPlan, PlanInputs, ReferencePlan};
use tch::Kind;

use crate::config::{ReferenceMode, TrainConfig};
use crate::error::{Result, TrainError};
use crate::objective::Objective;
use crate::setup::{build_optimizer, preset_config};

/// The model's shape as the config names it: `model.path`'s config.json, or the preset
/// (its vocabulary `vocab`, the tokenizer's, when given).
pub fn model_shape(cfg: &TrainConfig, vocab: Option<i64>) -> Result<LlamaConfig> {
    if let Some(path) = &cfg.model.path {
        return Ok(LlamaConfig::from_file(&path.join("config.json"))?);
    }
    let mut config = preset_config(cfg)?;
    if let Some(v) = vocab {
        config.vocab_size = v;
    }
    Ok(config)
}

/// The vocabulary of the config's tokenizer (what a preset's embedding is sized by in
/// training), if it can be read.
pub fn tokenizer_vocab(cfg: &TrainConfig) -> Option<i64> {
    let path = cfg.tokenizer_path();
    let tok = if path == crate::config::BUILTIN_SYNTHETIC_TOKENIZER {
        rpo_data::synthetic::synthetic_tokenizer().ok()?
    } else {
        tokenizers::Tokenizer::from_file(&path).ok()?
    };
    Some(tok.get_vocab_size(true) as i64)
}

/// The planner's inputs for `cfg` on `world` ranks computing in `kind`.
pub fn plan_inputs(
    cfg: &TrainConfig,
    model: LlamaConfig,
    world: usize,
    kind: Kind,
) -> Result<PlanInputs> {
    let objective = Objective::from_config(&cfg.loss)?;
    let reference = if objective.needs_reference() {
        match cfg.reference.mode {
            ReferenceMode::Live => ReferencePlan::Live,
            ReferenceMode::Sharded => ReferencePlan::Sharded,
            ReferenceMode::Offload => ReferencePlan::Offload,
            ReferenceMode::Precomputed => ReferencePlan::Precomputed,
        }
    } else {
        ReferencePlan::None
    };
    let c = kind.elt_size_in_bytes() as i64;
    let micro = cfg.train.micro_batch_size as i64;
    Ok(PlanInputs {
        config: model,
        world,
        compute_bytes: c,
        grad_bytes: cfg.zero.reduce_kind().elt_size_in_bytes() as i64,
        optimizer_bytes: 4 * build_optimizer(&cfg.optim).slots_per_param() as i64,
        reference,
        // Preference objectives score two sequences per example (chosen and rejected,
        // or a completion and its KL partner); SFT one.
        sequences: if objective.needs_reference() {
            2 * micro
        } else {
            micro
        },
        length: cfg.data.max_length as i64,
        accumulation: cfg.accumulation_steps(world).max(1) as i64,
        logits_chunk_tokens: cfg.zero.logits_chunk_tokens as i64,
        checkpointing: cfg.zero.activation_checkpointing,
        overlap: cfg.zero.overlap,
    })
}

/// The plan for `cfg`, against `zero.memory_budget` when set.
pub fn plan(cfg: &TrainConfig, model: LlamaConfig, world: usize, kind: Kind) -> Result<MemoryPlan> {
    let budget = cfg
        .zero
        .memory_budget
        .as_deref()
        .map(parse_bytes)
        .transpose()
        .map_err(|e| TrainError::ConfigValue {
            key: "zero.memory_budget",
            source: Box::new(e.into()),
        })?;
    Ok(MemoryPlan::new(
        &plan_inputs(cfg, model, world, kind)?,
        budget,
    ))
}

/// Refuses the configured stage when it cannot fit the budget, naming the stage that would.
pub fn check_fits(cfg: &TrainConfig, plan: &MemoryPlan) -> Result<()> {
    let chosen = plan.stage(cfg.zero.stage);
    if chosen.fits != Some(false) {
        return Ok(());
    }
    let gib = |b: i64| b as f64 / (1u64 << 30) as f64;
    let budget = gib(plan.budget.unwrap_or(0));
    let fits = plan.lowest_fitting();
    let advice = match fits {
        Some(s) => format!(
            "zero.stage = {s} would fit ({:.2} GiB per rank)",
            gib(plan.stages[s as usize].total)
        ),
        None => "no stage fits on this many ranks: add ranks, shorten sequences or lower the micro-batch".into(),
    };
    let message = format!(
        "zero.stage = {} needs about {:.2} GiB per rank ({} ranks), more than zero.memory_budget = {budget:.2} GiB: {advice}\n{}",
        cfg.zero.stage,
        gib(chosen.total),
        plan.world,
        plan.table()
    );
    Err(TrainError::OverBudget {
        stage: cfg.zero.stage,
        fits,
        message,
    })
}

//! A whole training run: data, model, SFT warm-up, frozen reference, preference
//! training, evaluation at each boundary, and the saved policy.

use crate::error::{chain, Result, TrainError};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Kind;

use crate::checkpointing::{save_reference_once, write_tokenizer, Checkpointing, Resume};
use crate::choices::ReferenceMode;
use crate::config::TrainConfig;
use crate::data_source::{reward_pairs, RunData};
use crate::device::parse_device;
use crate::evaluate::{
    greedy_answers, greedy_answers_sharded, judge_answers, reward_accuracy_data_parallel,
    EvalReport,
};
use crate::memory_plan;
use crate::metrics::{show, MetricsWriter, StepMetrics};
use crate::micro_batch::{Models, RewardStats};
use crate::objective::Objective;
use crate::out_dir;
use crate::parallel::DataParallel;
use crate::reference::Reference;
use crate::setup::{build_embedder, build_optimizer, build_policy, compute_kind, load_reference};
use crate::trainer::{check_batches, run_phase, Phase};
use rpo_comm::Collective;
use rpo_data::synthetic::SyntheticExample;

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub objective: String,
    pub steps: usize,
    pub last_step: Option<StepMetrics>,
    pub evals: Vec<EvalReport>,
    pub model_dir: Option<PathBuf>,
    /// What could not be written at the end (the final checkpoint, the model), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    pub wall_time_s: f64,
}

/// How `train` was asked to start.
#[derive(Debug, Default, Clone, Copy)]
pub struct Launch<'a> {
    /// A checkpoint folder, a folder of checkpoints, or "latest" (this run's
    /// checkpoint folder) to continue from; its world size and ZeRO stage may differ.
    pub resume: Option<&'a Path>,
    /// When the newest checkpoint is damaged, resume from the newest intact one.
    pub fallback: bool,
    /// Start a fresh run even where an earlier run left checkpoints or metrics
    /// (they are deleted first).
    pub overwrite: bool,
}

/// Trains on every rank of `world` (a [`SingleProcess`](rpo_comm::SingleProcess) for one
/// process); rank 0 writes the files and runs the evaluations its summary reports.
///
/// Before any work: rank 0 locks `out_dir` and refuses to start a fresh run over an
/// earlier one's files (see [`Launch`]), and every rank must see the same checkpoint
/// folder. A signal (see [`crate::preemption`]) ends the run after a checkpoint with the
/// error [`Preempted`](crate::preemption::Preempted).
pub fn train(cfg: &TrainConfig, world: &dyn Collective, launch: Launch) -> Result<RunSummary> {
    let started = Instant::now();
    cfg.validate_world(world.world_size())?;
    let main = world.rank() == 0;
    // Held until the run returns.
    let _lock = main
        .then(|| out_dir::claim(cfg, launch.resume.is_some(), launch.overwrite))
        .transpose()?;
    out_dir::check_shared(cfg, world)?;
    let resume = launch
        .resume
        .map(|p| Resume::open(p, cfg, world.world_size(), launch.fallback))
        .transpose()?;
    // Past the warm-up (or in a run without one), the checkpoint's phase is the preference one.
    let in_preference = resume.as_ref().is_some_and(|r| r.state.phase != "sft");
    let device = world.device();
    let asked = parse_device(&cfg.model.device)?;
    if asked.is_cuda() != device.is_cuda() {
        bail_config!(
            "model.device",
            "model.device = {:?} but the {} communicator works on {device:?}",
            cfg.model.device,
            world.backend()
        );
    }
    let kind = compute_kind(cfg, device)?;
    let objective = Objective::from_config(&cfg.loss)?;
    let parallel = DataParallel::new(world, cfg.contrast.scope, cfg.contrast.form)?;

    let data = RunData::load(cfg)?;
    // The memory plan, from the model's shape alone: logged, and a stage that cannot fit
    // zero.memory_budget is refused before any weights are loaded.
    let vocab = data.tokenizer.tokenizer().get_vocab_size(true) as i64;
    let shape = memory_plan::model_shape(cfg, Some(vocab))?;
    let plan = memory_plan::plan(cfg, shape, world.world_size(), kind)?;
    if main {
        tracing::info!(
            "memory plan per rank (running zero.stage = {}):\n{}",
            cfg.zero.stage,
            plan.table()
        );
    }
    memory_plan::check_fits(cfg, &plan)?;
    let (policy, model_config) = build_policy(cfg, &data, world, kind)?;
    if let Some(r) = &resume {
        r.check_model(&policy)?;
    }
    let mut loaded_reference = if !objective.needs_reference() {
        None
    } else if cfg.reference.mode == ReferenceMode::Precomputed {
        // Checked against this run's sequences and reference before any training.
        Some(Reference::precomputed(cfg, &data, &policy, world, kind)?)
    } else {
        load_reference(cfg, cfg.reference.mode, world, kind)?
    };
    // Reward accuracy against a reference that is a copy of the policy is 0 by
    // construction (ties): report it only once they can differ.
    let separate_reference = loaded_reference.is_some() && cfg.reference.path.is_some();
    tracing::info!(
        objective = objective.name(),
        examples = data.train.len(),
        params = policy.layout().numel(),
        zero_stage = %cfg.zero.stage,
        ranks = world.world_size(),
        backend = world.backend(),
        contrast = %cfg.contrast.scope,
        ?device,
        dtype = %cfg.model.dtype,
        out_dir = %cfg.out_dir.display(),
        "starting"
    );
    if main && cfg.eval.judge && data.judged.is_empty() {
        // Say it once, not as a silent "n/a" at every evaluation.
        tracing::warn!(
            "eval.judge is on, but the synthetic judge only knows the built-in suite: no held-out judge accuracy for data.format = {:?} \
             (score generations with `rpo-shard sample --judge match|command|http` or `rpo-shard eval --judge http`, or set eval.judge = false)",
            cfg.data.format
        );
    }
    if main {
        tracing::info!(
            expected = %policy.expected_state(build_optimizer(&cfg.optim).as_ref()),
            "ZeRO state per rank (stage {}, {} ranks; activations and gathered units extra)",
            cfg.zero.stage,
            world.world_size()
        );
    }
    // The sentence encoder is loaded only when the weighting reads embeddings.
    let embedder = build_embedder(cfg, objective, &data, world)?;
    let mut evals = resume
        .as_ref()
        .map(|r| r.state.evals.clone())
        .unwrap_or_default();
    let mut step = 0;
    let mut last_step = None;
    let final_failure = RefCell::new(None);

    // Rank 0 evaluates while the others wait, but what reads the model runs on every
    // rank, data-parallel, so that under stage 3 nothing is ever gathered whole: the judged
    // answers are decoded one unit gathered at a time (`greedy_answers_sharded`), and reward
    // accuracy sums each rank's share of the held-out batches
    // (`reward_accuracy_data_parallel`). Nothing runs when an evaluation reads no model.
    let eval = |at: &str, models: &Models, rewards: bool| -> Result<Option<EvalReport>> {
        let sharded = models.policy.options().stage.shards_parameters() && world.world_size() > 1;
        let answers = match judged_questions(cfg, &data) {
            Some(questions) if sharded => greedy_answers_sharded(
                world,
                models.policy,
                &data.tokenizer,
                questions,
                cfg.eval.max_new_tokens,
            )?,
            _ => None,
        };
        let reward_stats = rewards_read_models(cfg, &data, models, rewards)
            .then(|| {
                reward_accuracy_data_parallel(
                    world,
                    models,
                    &data.tokenizer,
                    reward_pairs(cfg, &data),
                    cfg.train.micro_batch_size,
                )
            })
            .transpose()?;
        let report = main
            .then(|| evaluate(cfg, &data, at, models, answers, reward_stats))
            .transpose()?;
        parallel.barrier()?;
        Ok(report)
    };
    // Refuse a preference phase that cannot draw batches before spending the warm-up.
    let global_micro = cfg.train.micro_batch_size * world.world_size();
    check_batches(objective, &data, global_micro, cfg.seed)?;
    // Every check has passed: only now does this run write into out_dir.
    if main {
        std::fs::write(cfg.out_dir.join("config.toml"), toml::to_string(cfg)?)?;
    }
    let metrics_path = cfg.out_dir.join("metrics.jsonl");
    let mut metrics = match (&resume, main) {
        (_, false) => MetricsWriter::discard(),
        (Some(r), true) => MetricsWriter::resume(&metrics_path, r.step())?,
        (None, true) => MetricsWriter::create(&metrics_path)?,
    };

    let no_ref = Models {
        policy: &policy,
        reference: None,
        embedder: embedder.as_ref(),
        beta: cfg.loss.beta,
        parallel: &parallel,
        packing: cfg.packing(),
        pad: data.tokenizer.special().pad,
    };
    if resume.is_none() && (cfg.train.sft_warmup_steps > 0 || !objective.needs_reference()) {
        evals.extend(eval("init", &no_ref, false)?);
    }
    if cfg.train.sft_warmup_steps > 0 {
        let phase = Phase {
            name: "sft",
            objective: Objective::Sft,
            steps: cfg.train.sft_warmup_steps,
            lr: cfg.train.sft_lr.unwrap_or(cfg.optim.lr),
        };
        if !in_preference {
            let checkpoints = Checkpointing {
                cfg,
                reference: None,
                evals: &evals,
                final_failure: &final_failure,
            };
            last_step = run_phase(
                cfg,
                &phase,
                &data,
                &no_ref,
                &mut metrics,
                step,
                &checkpoints,
                resume.as_ref(),
            )?;
        }
        step += phase.steps;
    }

    // The reference: `[reference] path` if given, else the policy as it is now (after
    // the SFT warm-up, if any) — or, resuming in the preference phase, that copy as the
    // checkpoint saved it.
    let saved_reference = match &resume {
        Some(r) if in_preference && loaded_reference.is_none() => {
            r.reference(cfg, &model_config, world, kind)?
        }
        _ => None,
    };
    let copied = loaded_reference.is_none() && objective.needs_reference();
    let reference = match (loaded_reference.take(), saved_reference) {
        (Some(r), _) | (None, Some(r)) => Some(r),
        (None, None) if objective.needs_reference() => {
            Some(Reference::copy_of(&policy, cfg.reference.mode)?)
        }
        (None, None) => None,
    };
    let models = Models {
        reference: reference.as_ref(),
        ..no_ref
    };
    if objective.needs_reference() && !in_preference {
        let at = if cfg.train.sft_warmup_steps > 0 {
            "sft"
        } else {
            "init"
        };
        evals.extend(eval(at, &models, separate_reference)?);
    }
    let phase = Phase {
        name: objective.name(),
        objective,
        steps: cfg.train.steps,
        lr: cfg.optim.lr,
    };
    // A reference copied from the policy is written once for the run (a resumed run could
    // not rebuild it); the checkpoints point at it. A `[reference] path` is never copied.
    let checkpointing = cfg.checkpoint.every > 0 || cfg.checkpoint.at_end;
    // Resumed into this run's own checkpoint folder, the reference is already there.
    let already_written = resume.as_ref().and_then(|r| {
        let saved = r.state.reference.as_ref()?;
        let here = cfg.checkpoint_root().join(&saved.folder).exists();
        (in_preference && here).then(|| saved.clone())
    });
    let saved = match &reference {
        Some(_) if copied && already_written.is_some() => already_written,
        Some(r) if copied && checkpointing => save_reference_once(cfg, r, &model_config, main)?,
        _ => None,
    };
    let checkpoints = Checkpointing {
        cfg,
        reference: saved,
        evals: &evals,
        final_failure: &final_failure,
    };
    last_step = run_phase(
        cfg,
        &phase,
        &data,
        &models,
        &mut metrics,
        step,
        &checkpoints,
        resume.as_ref(),
    )?
    .or(last_step);
    step += phase.steps;
    evals.extend(eval("final", &models, true)?);

    // The final checkpoint (written at the last step), the model and the summary are
    // independent: a failure of one is reported at the end and loses none of the others.
    let mut failed: Vec<String> = final_failure
        .take()
        .map(|e| format!("final checkpoint: {e}"))
        .into_iter()
        .collect();
    // Every rank takes part in gathering the fp32 masters unit by unit; rank 0 writes
    // each unit into its place in the folder (one unit extra in memory, never the model).
    // A failed write still takes part in every gather, so no rank is left waiting.
    let mut model_dir = None;
    if cfg.train.save_model {
        let dir = cfg.out_dir.join("model");
        let target = main.then_some(dir.as_path());
        let saved = policy
            .save_hf(target, &model_config, Kind::Float, u64::MAX)
            .map_err(TrainError::from)
            // The tokenizer travels with the model: loading the folder later picks it up.
            .and_then(|()| {
                if main {
                    write_tokenizer(cfg, &dir)
                } else {
                    Ok(())
                }
            });
        match saved {
            Ok(()) => model_dir = main.then_some(dir),
            Err(e) => {
                tracing::error!("the final model could not be written: {}", chain(&e));
                failed.push(format!("model {}: {}", dir.display(), chain(&e)));
            }
        }
    }
    let summary = RunSummary {
        out_dir: cfg.out_dir.clone(),
        objective: objective.name().to_string(),
        steps: step,
        last_step,
        evals,
        model_dir,
        failed,
        wall_time_s: started.elapsed().as_secs_f64(),
    };
    let mut problems = summary.failed.clone();
    if main {
        let path = cfg.out_dir.join("summary.json");
        if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&summary)?) {
            tracing::error!("{} could not be written: {e}", path.display());
            problems.push(format!("summary {}: {e}", path.display()));
        }
    }
    if !problems.is_empty() {
        return Err(TrainError::Unwritten { problems });
    }
    Ok(summary)
}

/// The held-out questions the judge will answer at an evaluation, if any.
fn judged_questions<'a>(cfg: &TrainConfig, data: &'a RunData) -> Option<&'a [SyntheticExample]> {
    let n = cfg.eval.max_examples.min(data.judged.len());
    (cfg.eval.judge && n > 0).then(|| &data.judged[..n])
}

/// Whether [`evaluate`]'s reward accuracy will run the policy and the reference. The
/// same on every rank (config and data are).
fn rewards_read_models(cfg: &TrainConfig, data: &RunData, models: &Models, rewards: bool) -> bool {
    rewards && models.reference.is_some() && !reward_pairs(cfg, data).is_empty()
}

/// Rank 0's evaluation; `answers`: the judged questions' answers when decoded already
/// (sharded, [`greedy_answers_sharded`]); `reward_stats`: the held-out pairs' figures, when
/// this evaluation reads them ([`reward_accuracy_data_parallel`], on every rank).
fn evaluate(
    cfg: &TrainConfig,
    data: &RunData,
    at: &str,
    models: &Models,
    answers: Option<Vec<Vec<i64>>>,
    reward_stats: Option<RewardStats>,
) -> Result<EvalReport> {
    let mut report = EvalReport {
        at: at.to_string(),
        ..Default::default()
    };
    if let Some(questions) = judged_questions(cfg, data) {
        let out = cfg.out_dir.join(format!("eval_{at}.jsonl"));
        let answers = match answers {
            Some(a) => a,
            None => greedy_answers(
                models.policy.model(),
                &data.tokenizer,
                questions,
                cfg.eval.max_new_tokens,
            )?,
        };
        let (acc, by_family) = judge_answers(&data.tokenizer, questions, answers, Some(&out))?;
        report.judge_accuracy = Some(acc);
        report.judge_by_family = by_family;
        report.judged = questions.len();
    }
    if let Some(stats) = reward_stats {
        report.reward_accuracy = stats.accuracy();
        report.reward_margin = stats
            .mean_chosen()
            .zip(stats.mean_rejected())
            .map(|(c, r)| c - r);
    }
    tracing::info!(at, judge_accuracy = %show(report.judge_accuracy), reward_accuracy = %show(report.reward_accuracy), "eval");
    Ok(report)
}

//! The training loop, top to bottom.
//!
//! One optimizer step: for each micro-batch (this rank's slice of a global micro-batch),
//! policy (and reference) log-probs, the objective, and the backward of this rank's
//! share / accumulation through the policy unit by unit; then the ZeRO step (gradients
//! summed over ranks, global-norm clipping, the optimizer on the fp32 master shards,
//! the new weights back to every rank) at the scheduled learning rate, and one metrics
//! line from rank 0.

use indicatif::ProgressBar;
use rpo_data::sampler::SamplerPosition;
use rpo_optim::WarmupConstant;
use std::time::Instant;

use crate::batches::MicroBatches;
use crate::checkpointing::{Checkpointing, Resume, TrainerState};
use crate::config::TrainConfig;
use crate::data_source::RunData;
use crate::error::{chain, Result, TrainError};
use crate::metrics::{show, MetricsWriter, StepMetrics};
use crate::micro_batch::{self, DeviceStats, Models};
use crate::objective::Objective;
use crate::preemption::{self, Preempted};
use crate::progress::progress_bar;
use crate::reward_stats::{from_step_vector, STEP_FIGURES};
use rpo_comm::host;
use tch::Tensor;

/// A phase of training: the SFT warm-up, or the preference objective.
pub struct Phase<'a> {
    pub name: &'a str,
    pub objective: Objective,
    pub steps: usize,
    pub lr: f64,
}

/// Where it was before `setup.rs` (`rpo_train::trainer::build_optimizer`).
pub use crate::setup::build_optimizer;

/// Runs one phase on the policy, from `resume` if it was written in this phase, writing
/// checkpoints as `checkpoints` says; returns the last step's metrics.
#[allow(clippy::too_many_arguments)]
pub fn run_phase(
    cfg: &TrainConfig,
    phase: &Phase,
    data: &RunData,
    models: &Models,
    metrics: &mut MetricsWriter,
    first_step: usize,
    checkpoints: &Checkpointing,
    resume: Option<&Resume>,
) -> Result<Option<StepMetrics>> {
    let policy = models.policy;
    let mut optimizer = build_optimizer(&cfg.optim);
    let (start, position) = match resume.filter(|r| r.state.phase == phase.name) {
        Some(r) => {
            policy.load_checkpoint(&r.checkpoint, optimizer.as_mut())?;
            (r.state.phase_step, r.state.sampler())
        }
        None => (0, SamplerPosition::default()),
    };
    let schedule = WarmupConstant {
        base_lr: phase.lr,
        warmup_steps: cfg.optim.warmup_steps as u64,
    };
    let parallel = models.parallel;
    let world = parallel.world_size();
    let accumulation = cfg.accumulation_steps(world);
    let global_micro = cfg.train.micro_batch_size * world;
    let mut batches = MicroBatches::new(phase.objective, data, global_micro, cfg.seed, position)?;
    let bar = if parallel.is_main() {
        progress_bar(phase.steps as u64, phase.name)
    } else {
        ProgressBar::hidden()
    };
    bar.set_position(start as u64);
    let mut last = None;

    for step in start..phase.steps {
        let started = Instant::now();
        let lr = schedule.lr(step as u64);
        let traffic = policy.traffic();
        let waited = policy.comm_wait_s();
        let reads = host::reads();
        // The micro-batches queue their work and leave their figures on the device.
        let mut sums = DeviceStats::default();
        for _ in 0..accumulation {
            let out = next_loss(&mut batches, &phase.objective, models)?;
            policy.backward(&out.scaled_objective(accumulation), out.policy)?;
            sums.merge(&out.stats);
        }
        // The step's figures summed over ranks on the device (with every rank's stop flag,
        // so all ranks stop at the same step), the gradients reduced and their global norm:
        // then the step's one device-to-host read, before the update, which needs the norm
        // on the host to refuse a non-finite one.
        let requested = if preemption::requested_here() {
            1.0
        } else {
            0.0
        };
        let mut figures = sums.step_vector(accumulation, requested, policy.model().device());
        parallel.sum(&mut figures)?;
        let reduced = policy.reduce_grads()?;
        let read = host::to_host_f64s(&Tensor::cat(&[figures, reduced.norm.reshape([1])], 0))?;
        let (loss, stats, requested) = from_step_vector(&read[..STEP_FIGURES], world);
        let grad_norm = read[STEP_FIGURES];
        policy
            .apply_update(
                reduced,
                grad_norm,
                optimizer.as_mut(),
                lr,
                cfg.optim.max_grad_norm,
            )
            .map_err(|e| TrainError::StepFailed {
                phase: phase.name.to_string(),
                step: first_step + step + 1,
                loss,
                source: Box::new(e.into()),
            })?;
        if step == start && parallel.is_main() {
            tracing::info!(
                expected = %policy.expected_state(optimizer.as_ref()),
                measured = %policy.measured_state(optimizer.as_ref()),
                "ZeRO state per rank"
            );
        }

        let m = StepMetrics {
            phase: phase.name.to_string(),
            step: first_step + step + 1,
            loss,
            lr,
            grad_norm,
            rewards_chosen: stats.mean_chosen(),
            rewards_rejected: stats.mean_rejected(),
            reward_margin: stats
                .mean_chosen()
                .zip(stats.mean_rejected())
                .map(|(c, r)| c - r),
            reward_accuracy: stats.accuracy(),
            tokens: stats.tokens,
            tokens_computed: stats.tokens_computed,
            step_time_s: started.elapsed().as_secs_f64(),
            zero_bytes: policy.traffic().since(&traffic).total(),
            zero_wait_s: policy.comm_wait_s() - waited,
            host_reads: host::reads_since(reads),
        };
        metrics.write(&m)?;
        bar.set_message(format!("loss {:.4}", m.loss));
        bar.inc(1);
        // In a terminal the bar shows progress; elsewhere (CI, log files) a line every 10 steps.
        if parallel.is_main()
            && bar.is_hidden()
            && (step == 0 || (step + 1) % 10 == 0 || step + 1 == phase.steps)
        {
            let acc = show(m.reward_accuracy);
            tracing::info!(phase = phase.name, step = m.step, loss = m.loss, lr, grad_norm, reward_accuracy = %acc, "step");
        }
        // Every rank learned (in the step's figures) whether any rank was signalled, so all
        // stop at this step.
        let stop = requested > 0.0;
        if checkpoints.due(m.step) || stop {
            let state = TrainerState {
                phase: phase.name.to_string(),
                phase_step: step + 1,
                sampler_epoch: batches.position().epoch,
                sampler_batch: batches.position().batch,
                global_micro_batch: global_micro,
                evals: checkpoints.evals.to_vec(),
                reference_saved: false,
                reference: checkpoints.reference.clone(),
            };
            let saved = checkpoints.save(policy, optimizer.as_ref(), m.step, state);
            if stop {
                let checkpoint = saved.map_err(|e| TrainError::PreemptedCheckpoint {
                    source: Box::new(e),
                })?;
                bar.finish_and_clear();
                return Err(Preempted {
                    step: m.step,
                    checkpoint,
                }
                .into());
            }
            match saved {
                Err(e) if checkpoints.is_last(m.step) => {
                    tracing::error!(
                        "the final checkpoint failed (the model and summary are still written): {}",
                        chain(&e)
                    );
                    *checkpoints.final_failure.borrow_mut() = Some(chain(&e));
                }
                other => {
                    other?;
                }
            }
        }
        last = Some(m);
    }
    bar.finish_and_clear();
    Ok(last)
}

/// Fails if `objective` cannot draw global micro-batches of `size` from the training set
/// (too few examples, or too few of one class for balanced unpaired batches).
pub fn check_batches(objective: Objective, data: &RunData, size: usize, seed: u64) -> Result<()> {
    MicroBatches::new(objective, data, size, seed, SamplerPosition::default()).map(|_| ())
}

/// The next global micro-batch's own slice, and the objective on it.
fn next_loss(
    batches: &mut MicroBatches,
    objective: &Objective,
    models: &Models,
) -> Result<micro_batch::MicroBatchLoss> {
    let global = batches.next_global();
    let counts = batches.block_counts(&global, models.parallel.world_size())?;
    let batch = batches.collate(models.parallel.own(&global)?)?;
    micro_batch::loss(objective, models, &batch, Some(&counts))
}

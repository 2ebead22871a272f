//! Held-out evaluation: the synthetic suite's judge on greedy answers, and reward
//! accuracy of the policy against its reference on held-out pairs.

use crate::error::Result;
use rpo_comm::{all_gather_varlen, Collective};
use rpo_data::synthetic::SyntheticExample;
use rpo_data::{PairedBatch, PairedExample, PreferenceTokenizer};
use rpo_model::{generate_greedy, Decoder, Llama};
use rpo_zero::{ShardedDecoder, ShardedModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

use crate::metrics::MetricsWriter;
use crate::micro_batch::{self, DeviceStats, Models, RewardStats};
use crate::objective::Objective;
use crate::reward_stats::from_step_vector;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EvalReport {
    /// Where in the run: "init", "sft", "final".
    pub at: String,
    /// Share of held-out synthetic questions whose greedy answer the judge accepts.
    pub judge_accuracy: Option<f64>,
    pub judge_by_family: BTreeMap<String, f64>,
    pub judged: usize,
    /// Share of held-out pairs where the policy's implicit reward ranks chosen above rejected.
    pub reward_accuracy: Option<f64>,
    pub reward_margin: Option<f64>,
}

/// One generated answer, written to `eval_<at>.jsonl` for people to read.
#[derive(Serialize)]
struct Generation<'a> {
    family: &'a str,
    prompt: &'a str,
    response: String,
    preferred: &'a str,
    correct: bool,
}

/// Greedy (temperature 0) answers to held-out questions, checked by the programmatic judge.
pub fn judge_generations(
    policy: &Llama,
    tokenizer: &PreferenceTokenizer,
    questions: &[SyntheticExample],
    max_new_tokens: usize,
    out: Option<&Path>,
) -> Result<(f64, BTreeMap<String, f64>)> {
    let outputs = greedy_answers(policy, tokenizer, questions, max_new_tokens)?;
    judge_answers(tokenizer, questions, outputs, out)
}

/// Greedy answer tokens to `questions` (stop token included, as generated).
pub fn greedy_answers(
    policy: &dyn Decoder,
    tokenizer: &PreferenceTokenizer,
    questions: &[SyntheticExample],
    max_new_tokens: usize,
) -> Result<Vec<Vec<i64>>> {
    let prompts = questions
        .iter()
        .map(|q| tokenizer.encode_prompt_for_generation(&q.prompt))
        .collect::<rpo_data::Result<Vec<_>>>()?;
    Ok(generate_greedy(
        policy,
        &prompts,
        max_new_tokens,
        &tokenizer.special().stop,
    )?)
}

/// [`greedy_answers`] from a sharded policy, data-parallel: every rank decodes its
/// contiguous share, gathering one unit at a time (never the whole model); rank 0 gets
/// every answer in question order, the other ranks `None`. Every rank must call this.
pub fn greedy_answers_sharded(
    world: &dyn Collective,
    policy: &ShardedModel,
    tokenizer: &PreferenceTokenizer,
    questions: &[SyntheticExample],
    max_new_tokens: usize,
) -> Result<Option<Vec<Vec<i64>>>> {
    let per_rank = questions.len().div_ceil(world.world_size());
    let from = (world.rank() * per_rank).min(questions.len());
    let to = (from + per_rank).min(questions.len());
    let mine = greedy_answers(
        &ShardedDecoder::new(policy),
        tokenizer,
        &questions[from..to],
        max_new_tokens,
    )?;
    let bytes = serde_json::to_vec(&mine)?;
    let t = Tensor::from_slice(&bytes).to_device(world.device());
    let (all, counts) = all_gather_varlen(world, &t)?;
    if world.rank() != 0 {
        return Ok(None);
    }
    let all = Vec::<u8>::try_from(&all.to_device(tch::Device::Cpu))?;
    let mut answers = Vec::with_capacity(questions.len());
    let mut at = 0usize;
    for n in counts {
        let part: Vec<Vec<i64>> = serde_json::from_slice(&all[at..at + n as usize])?;
        answers.extend(part);
        at += n as usize;
    }
    Ok(Some(answers))
}

/// Judges greedy answers to `questions` (writes them to `out` for people to read):
/// accuracy overall and by family.
pub fn judge_answers(
    tokenizer: &PreferenceTokenizer,
    questions: &[SyntheticExample],
    outputs: Vec<Vec<i64>>,
    out: Option<&Path>,
) -> Result<(f64, BTreeMap<String, f64>)> {
    ensure!(
        outputs.len() == questions.len(),
        Invalid,
        "one answer per question"
    );
    let stop = &tokenizer.special().stop;
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut writer = out.map(MetricsWriter::create).transpose()?;
    let mut correct_total = 0;
    for (q, ids) in questions.iter().zip(outputs) {
        let ids: Vec<i64> = ids.into_iter().filter(|t| !stop.contains(t)).collect();
        let response = tokenizer.decode(&ids)?;
        let correct = q.judge(&response);
        correct_total += correct as usize;
        let e = per_family.entry(q.family.name().to_string()).or_default();
        e.0 += correct as usize;
        e.1 += 1;
        if let Some(w) = writer.as_mut() {
            w.write(&Generation {
                family: q.family.name(),
                prompt: &q.prompt,
                response,
                preferred: &q.chosen,
                correct,
            })?;
        }
    }
    let by_family = per_family
        .into_iter()
        .map(|(k, (c, n))| (k, c as f64 / n as f64))
        .collect();
    Ok((
        correct_total as f64 / questions.len().max(1) as f64,
        by_family,
    ))
}

/// Reward accuracy and margin of held-out pairs (policy vs reference), without gradients;
/// the sums stay on the device until one read at the end.
pub fn reward_accuracy(
    models: &Models,
    tokenizer: &PreferenceTokenizer,
    pairs: &[PairedExample],
    batch: usize,
) -> Result<RewardStats> {
    let mut stats = DeviceStats::default();
    tch::no_grad(|| -> Result<()> {
        for chunk in pairs.chunks(batch) {
            let refs: Vec<&PairedExample> = chunk.iter().collect();
            let b = PairedBatch::from_examples(&refs, tokenizer)?;
            stats.merge(&micro_batch::paired(&Objective::Dpo, models, &b, None)?.stats);
        }
        Ok(())
    })?;
    stats.read()
}

/// [`reward_accuracy`] data-parallel over `world`, for a model sharded in stage 3 (never
/// gathered whole): rank r takes batches r, r + W, … A rank with no batch left in a round
/// runs the first batch again and drops its figures, so every rank runs the same number of
/// forwards (a stage-3 forward gathers each unit with every rank). The batches are those of
/// one process, so the per-pair rewards are the same numbers; only the order of the final
/// sums differs. One all-reduce and one device read; every rank gets the result. Every
/// rank must call this.
pub fn reward_accuracy_data_parallel(
    world: &dyn Collective,
    models: &Models,
    tokenizer: &PreferenceTokenizer,
    pairs: &[PairedExample],
    batch: usize,
) -> Result<RewardStats> {
    let (w, rank) = (world.world_size(), world.rank());
    let batches: Vec<&[PairedExample]> = pairs.chunks(batch.max(1)).collect();
    let mut stats = DeviceStats::default();
    tch::no_grad(|| -> Result<()> {
        for round in 0..batches.len().div_ceil(w) {
            let index = round * w + rank;
            let chunk = batches.get(index).copied().unwrap_or(batches[0]);
            let refs: Vec<&PairedExample> = chunk.iter().collect();
            let b = PairedBatch::from_examples(&refs, tokenizer)?;
            let figures = micro_batch::paired(&Objective::Dpo, models, &b, None)?.stats;
            if index < batches.len() {
                stats.merge(&figures);
            }
        }
        Ok(())
    })?;
    let mut v = stats.step_vector(1, 0.0, world.device());
    world.all_reduce(&mut v)?;
    Ok(from_step_vector(&rpo_comm::host::to_host_f64s(&v)?, w).1)
}

/// Reward accuracy and margin of a saved policy against a saved reference (both Hugging
/// Face folders) on the held-out pairs of `cfg`'s data, in one process.
#[derive(Debug, Serialize)]
pub struct HeldOutRewards {
    pub pairs: usize,
    pub reward_accuracy: Option<f64>,
    pub reward_margin: Option<f64>,
    pub rewards_chosen: Option<f64>,
    pub rewards_rejected: Option<f64>,
    pub beta: f64,
}

pub fn held_out_rewards(
    cfg: &crate::config::TrainConfig,
    policy_dir: &Path,
    reference_dir: &Path,
) -> Result<HeldOutRewards> {
    use crate::parallel::DataParallel;
    use crate::prompt_embedding::BagOfWords;
    use crate::reference::Reference;
    use rpo_zero::{ShardedModel, ZeroOptions, ZeroStage};

    let world = rpo_comm::SingleProcess::new(tch::Device::Cpu);
    let data = crate::data_source::RunData::load_held_out(cfg)?;
    if data.pairs.is_empty() {
        bail_config!(
            "data.eval",
            "the config's data has no held-out pairs (data.eval, data.eval_fraction, or synthetic_eval for the suite)"
        );
    }
    let chunk = cfg.zero.logits_chunk_tokens as i64;
    let (model, vs, _) = rpo_model::load_hf(policy_dir, tch::Device::Cpu)?;
    let options = ZeroOptions {
        stage: ZeroStage::Zero0,
        compute_kind: tch::Kind::Float,
        checkpoint_activations: false,
        logits_chunk_tokens: chunk,
        reduce_kind: tch::Kind::Float,
        overlap: true,
    };
    let policy = ShardedModel::new(model, vs, &world, options)?;
    let reference = Reference::load_hf(
        reference_dir,
        crate::choices::ReferenceMode::Live,
        &world,
        tch::Kind::Float,
        chunk,
    )?;
    let parallel = DataParallel::new(
        &world,
        rpo_contrast::ContrastScope::Local,
        Default::default(),
    )?;
    let models = Models {
        policy: &policy,
        reference: Some(&reference),
        embedder: &BagOfWords { dim: 1 }, // DPO's metrics read no embeddings
        beta: cfg.loss.beta,
        parallel: &parallel,
        packing: cfg.packing(),
        pad: data.tokenizer.special().pad,
    };
    let n = cfg.eval.max_examples.min(data.pairs.len());
    let stats = reward_accuracy(
        &models,
        &data.tokenizer,
        &data.pairs[..n],
        cfg.train.micro_batch_size,
    )?;
    Ok(HeldOutRewards {
        pairs: n,
        reward_accuracy: stats.accuracy(),
        reward_margin: stats
            .mean_chosen()
            .zip(stats.mean_rejected())
            .map(|(c, r)| c - r),
        rewards_chosen: stats.mean_chosen(),
        rewards_rejected: stats.mean_rejected(),
        beta: cfg.loss.beta,
    })
}

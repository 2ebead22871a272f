//! The `[online]` loop: round after round, sample from the current policy, judge, build
//! preference data, train `steps_per_round` steps on it, evaluate on held-out questions.
//!
//! Every round lives in `<out_dir>/round_NNN/`: `samples.jsonl` (scored), `data.jsonl`
//! and `data_stats.json`, the round's training run under `train/` (its own metrics,
//! checkpoints and final `model/`), and `round.json` once the round is complete. A
//! relaunch with `--resume` skips complete rounds, reuses a round's data if it was
//! written, and resumes the round's training from its newest checkpoint, so an
//! interrupted run ends as an uninterrupted one would. Each round's training is a fresh
//! optimizer on the previous round's model (as iterative DPO does).

use rpo_comm::Collective;
use rpo_judge::scoring::{MatchMode, ScorerSpec};
use rpo_judge::{build_preferences, PairingRule, PreferenceRow, Sample, ScoredSample, Scorer};
use rpo_model::load_hf;
use rpo_train::config::{DataFormatName, LossName, TrainConfig};
use rpo_train::data_source::RunData;
use rpo_train::decoding_model::DecodingModel;
use rpo_train::evaluate::{greedy_answers_sharded, judge_answers, judge_generations};
use rpo_train::online_config::{OnlineConfig, OnlineJudge, OnlineMatchMode, OnlineRule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tch::{Kind, Tensor};

use crate::error::{OnlineError, Result};
use crate::prompts::{read_prompts, run_prompts, PromptRecord};
use crate::sampling::{sample, to_jsonl, write_atomic, SamplingParams};

/// One complete round, as `round.json` and a line of `<out_dir>/online.jsonl` hold it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundReport {
    pub round: usize,
    pub samples: usize,
    /// Fraction of this round's samples the judge labelled desirable.
    pub sample_accuracy: f64,
    pub prompts: usize,
    /// Fraction of prompts with both a desirable and an undesirable sample.
    pub prompts_mixed_fraction: f64,
    /// Rows of the round's preference data (pairs, or unpaired examples).
    pub rows: usize,
    /// Slices of `prompts_per_round` prompts sampled: more than 1 when the first did not
    /// give one global batch of rows.
    #[serde(default = "one_draw")]
    pub draws: usize,
    pub steps: usize,
    pub last_loss: Option<f64>,
    /// Greedy answers to the run's held-out questions checked by the suite's judge, after
    /// this round's training (None when the data has no held-out questions).
    pub heldout_accuracy: Option<f64>,
    pub heldout_by_family: BTreeMap<String, f64>,
    pub model_dir: PathBuf,
}

fn scorer(o: &OnlineConfig) -> Box<dyn Scorer> {
    let spec = match o.judge {
        OnlineJudge::Synthetic => ScorerSpec::Synthetic,
        OnlineJudge::Match => ScorerSpec::Match {
            field: o.reference_field.clone(),
            mode: match o.match_mode {
                OnlineMatchMode::Exact => MatchMode::Exact,
                OnlineMatchMode::Normalized => MatchMode::Normalized,
                OnlineMatchMode::Regex => MatchMode::Regex,
            },
        },
        OnlineJudge::Command => ScorerSpec::Command {
            command: o.judge_command.clone().unwrap_or_default(),
            threshold: o.threshold,
            timeout: Duration::from_secs(3600),
        },
    };
    spec.build()
}

/// What rank 0 learnt, told to every rank: 1 = go on, 0 = rank 0 failed (its error
/// is its own to report; the others stop with a pointer to it).
fn agree(world: &dyn Collective, ok: bool, what: &'static str) -> Result<()> {
    let mut flag = Tensor::from_slice(&[ok as u8 as f64]).to_device(world.device());
    world.broadcast(&mut flag, 0)?;
    if flag.double_value(&[0]) != 1.0 && world.rank() != 0 {
        return Err(OnlineError::RankFailed { what });
    }
    Ok(())
}

/// Rank 0's value of `x`, on every rank.
fn broadcast_f64(world: &dyn Collective, x: f64) -> Result<f64> {
    let mut t = Tensor::from_slice(&[x])
        .to_kind(Kind::Double)
        .to_device(world.device());
    world.broadcast(&mut t, 0)?;
    Ok(t.double_value(&[0]))
}

/// Scores `records` with the configured judge, adding `score` and `label` to each.
fn score_records(
    o: &OnlineConfig,
    records: &mut [serde_json::Map<String, Value>],
    dir: &Path,
) -> Result<Vec<ScoredSample>> {
    let samples = records
        .iter()
        .map(|r| serde_json::from_value(Value::Object(r.clone())))
        .collect::<serde_json::Result<Vec<Sample>>>()?;
    let scorer = scorer(o);
    let scores = scorer.score(&samples).map_err(|e| OnlineError::Judge {
        judge: scorer.name().to_string(),
        dir: dir.to_path_buf(),
        source: Box::new(e.into()),
    })?;
    for (r, s) in records.iter_mut().zip(&scores) {
        r.insert("score".into(), s.score.into());
        r.insert("label".into(), s.label.into());
    }
    Ok(samples
        .into_iter()
        .zip(&scores)
        .map(|(s, sc)| ScoredSample {
            prompt: s.prompt,
            response: s.response,
            score: sc.score,
            label: sc.label,
        })
        .collect())
}

/// The round's rows from every scored sample so far, by `o.rule` (SFT: every desirable
/// sample, agreeing prompts included).
fn round_rows(
    o: &OnlineConfig,
    sft: bool,
    scored: &[ScoredSample],
) -> (Vec<PreferenceRow>, rpo_judge::PreferenceStats) {
    let rule = match o.rule {
        OnlineRule::Unpaired => PairingRule::Unpaired,
        OnlineRule::BestWorst => PairingRule::BestWorst,
        OnlineRule::AllPairs => PairingRule::AllPairs,
    };
    let (mut rows, mut stats) = build_preferences(scored, rule, o.max_pairs_per_prompt);
    if sft {
        // Rejection-sampling fine-tuning: SFT never reads `rejected`.
        rows = scored
            .iter()
            .filter(|s| s.label)
            .map(|s| PreferenceRow::Paired {
                prompt: s.prompt.clone(),
                chosen: s.response.clone(),
                rejected: String::new(),
            })
            .collect();
        stats.rows = rows.len();
    }
    (rows, stats)
}

/// Round `r`'s data, written into `dir` (samples.jsonl, data.jsonl, data_stats.json).
/// The round samples its slice of prompts; while its rows do not fill one global batch
/// (the trainer's minimum), it samples the next slice too, until every prompt has been
/// drawn once. Draw d seeds its streams with `seed + r + d << 32`, so draw 0 is what a
/// round without top-up samples.
#[allow(clippy::too_many_arguments)]
fn sample_round_data(
    world: &dyn Collective,
    cfg: &TrainConfig,
    o: &OnlineConfig,
    sft: bool,
    tokenizer: &rpo_data::PreferenceTokenizer,
    all_prompts: &[PromptRecord],
    policy: &Path,
    r: usize,
    dir: &Path,
) -> Result<()> {
    let per_draw = o
        .prompts_per_round
        .unwrap_or(all_prompts.len())
        .clamp(1, all_prompts.len().max(1));
    let needed = cfg.train.global_batch_size;
    let model = DecodingModel::load(
        policy,
        world,
        decodes_sharded(cfg, world),
        kind(cfg, world)?,
    )?;
    let mut records: Vec<serde_json::Map<String, Value>> = Vec::new();
    let mut scored: Vec<ScoredSample> = Vec::new();
    // Rank 0's rows and statistics from every sample drawn so far.
    let mut built = (Vec::new(), rpo_judge::PreferenceStats::default());
    let mut draw = 0usize;
    loop {
        let prompts: Vec<PromptRecord> = (0..per_draw)
            .map(|j| all_prompts[((r + draw) * per_draw + j) % all_prompts.len()].clone())
            .collect();
        let params = SamplingParams {
            samples_per_prompt: o.samples_per_prompt,
            max_new_tokens: o.max_new_tokens.unwrap_or(cfg.eval.max_new_tokens),
            temperature: o.temperature,
            top_p: o.top_p,
            seed: cfg
                .seed
                .wrapping_add(r as u64)
                .wrapping_add((draw as u64) << 32),
        };
        let drawn = sample(world, &model, tokenizer, &prompts, params)?;
        // Rank 0 scores the draw and counts the rows of everything drawn so far.
        let counted: Result<usize> = match drawn {
            Some(mut new) => (|| {
                let new_scored = score_records(o, &mut new, dir)?;
                for line in &mut new {
                    line.insert("draw".into(), draw.into());
                }
                records.extend(new);
                scored.extend(new_scored);
                built = round_rows(o, sft, &scored);
                Ok(built.1.rows)
            })(),
            None => Ok(0),
        };
        agree(world, counted.is_ok(), "judge the round's samples")?;
        let rows = broadcast_f64(world, counted? as f64)? as usize;
        draw += 1;
        if rows >= needed {
            break;
        }
        if draw * per_draw >= all_prompts.len() {
            let what = if world.rank() == 0 {
                let stats = &built.1;
                format!(
                    "{} prompts: {} had only desirable and {} only undesirable samples",
                    stats.prompts, stats.prompts_all_desirable, stats.prompts_all_undesirable
                )
            } else {
                "see rank 0".into()
            };
            return Err(OnlineError::TooFewRows {
                round: r,
                rows,
                needed,
                detail: what,
            });
        }
        tracing::info!(
            round = r,
            rows,
            needed,
            "online: too few rows for one batch; sampling {per_draw} more prompts"
        );
    }
    drop(model);
    let written: Result<()> = if world.rank() == 0 {
        (|| {
            let (rows, stats) = built;
            write_atomic(&dir.join("samples.jsonl"), &to_jsonl(&records)?)?;
            write_atomic(&dir.join("data.jsonl"), &to_jsonl(&rows)?)?;
            write_atomic(
                &dir.join("data_stats.json"),
                &serde_json::to_string_pretty(&RoundDataStats { stats, draws: draw })?,
            )
        })()
    } else {
        Ok(())
    };
    agree(world, written.is_ok(), "write the round's data")?;
    written
}

/// `data_stats.json`: the preference statistics and how many prompt slices were drawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoundDataStats {
    #[serde(flatten)]
    stats: rpo_judge::PreferenceStats,
    #[serde(default = "one_draw")]
    draws: usize,
}

fn one_draw() -> usize {
    1
}

/// Whether the rounds decode (sample, evaluate) with the model sharded as it trains:
/// ZeRO stage 3 on several ranks, so no rank ever loads it whole.
fn decodes_sharded(cfg: &TrainConfig, world: &dyn Collective) -> bool {
    cfg.zero.stage.shards_parameters() && world.world_size() > 1
}

fn kind(cfg: &TrainConfig, world: &dyn Collective) -> Result<Kind> {
    Ok(rpo_train::setup::compute_kind(cfg, world.device())?)
}

/// Held-out accuracy of the model in `model_dir` (rank 0 generates, or under stage 3 on
/// several ranks every rank decodes its share; every rank gets it).
fn heldout(
    world: &dyn Collective,
    cfg: &TrainConfig,
    data: &RunData,
    model_dir: &Path,
    out: &Path,
) -> Result<(Option<f64>, BTreeMap<String, f64>)> {
    let n = cfg.eval.max_examples.min(data.judged.len());
    if n == 0 {
        return Ok((None, BTreeMap::new()));
    }
    let questions = &data.judged[..n];
    let mut result = Ok((0.0, BTreeMap::new()));
    if decodes_sharded(cfg, world) {
        // Every rank decodes its share through its slices; rank 0 judges. Rank 0 may
        // have just written the folder: every rank reads it only once it is complete.
        world.barrier()?;
        let model = DecodingModel::load(model_dir, world, true, kind(cfg, world)?)?;
        let sharded = model
            .sharded()
            .ok_or_else(|| OnlineError::Invalid("a sharded model".into()))?;
        let max_new = cfg.eval.max_new_tokens;
        if let Some(answers) =
            greedy_answers_sharded(world, sharded, &data.tokenizer, questions, max_new)?
        {
            result = judge_answers(&data.tokenizer, questions, answers, Some(out))
                .map_err(OnlineError::from);
        }
    } else if world.rank() == 0 {
        result = (|| {
            let (model, _, _) = load_hf(model_dir, world.device())?;
            Ok(judge_generations(
                &model,
                &data.tokenizer,
                questions,
                cfg.eval.max_new_tokens,
                Some(out),
            )?)
        })();
    }
    agree(world, result.is_ok(), "evaluate on the held-out questions")?;
    let (acc, by_family) = result?;
    Ok((Some(broadcast_f64(world, acc)?), by_family))
}

fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
        })
        .unwrap_or(false)
}

/// Runs `cfg.online`'s rounds; `resume` continues a run found in `cfg.out_dir`.
pub fn train_online(
    cfg: &TrainConfig,
    world: &dyn Collective,
    resume: bool,
) -> Result<Vec<RoundReport>> {
    let o = cfg
        .online
        .clone()
        .ok_or_else(|| OnlineError::Config("the config has no [online] section".into()))?;
    cfg.validate_world(world.world_size())?;
    let main = world.rank() == 0;
    let out = &cfg.out_dir;
    if !resume && out.join("round_000").exists() {
        return Err(OnlineError::RunExists { dir: out.clone() });
    }
    if main {
        std::fs::create_dir_all(out).map_err(|source| OnlineError::Io {
            action: "cannot create",
            path: out.clone(),
            source,
        })?;
        write_atomic(&out.join("config.toml"), &toml::to_string(cfg)?)?;
    }
    let start_model = cfg
        .model
        .path
        .clone()
        .ok_or_else(|| OnlineError::Config("[online] needs model.path".into()))?;
    let data = RunData::load(cfg)?;
    let all_prompts = match &o.prompts {
        Some(p) => read_prompts(p)?,
        None => run_prompts(&data, true),
    };
    let sft = cfg.loss.name == LossName::Sft;
    let paired_data = sft || o.rule != OnlineRule::Unpaired;

    let (start_acc, _) = heldout(
        world,
        cfg,
        &data,
        &start_model,
        &out.join("eval_start.jsonl"),
    )?;
    tracing::info!(heldout_accuracy = ?start_acc, "online: the start model");
    let mut policy = start_model.clone();
    let mut reference = cfg
        .reference
        .path
        .clone()
        .unwrap_or_else(|| start_model.clone());
    let mut reports = Vec::new();
    for r in 0..o.rounds {
        let dir = out.join(format!("round_{r:03}"));
        let report_path = dir.join("round.json");
        if report_path.exists() {
            let report: RoundReport = serde_json::from_str(&std::fs::read_to_string(&report_path)?)
                .map_err(|source| OnlineError::NotARoundReport {
                    path: report_path.clone(),
                    source,
                })?;
            policy = report.model_dir.clone();
            reports.push(report);
            continue;
        }
        if o.reference_refresh {
            reference = policy.clone();
        }
        // 1. Sample from the policy, 2. judge, 3. build the data (unless already written).
        let data_path = dir.join("data.jsonl");
        if !data_path.exists() {
            sample_round_data(
                world,
                cfg,
                &o,
                sft,
                &data.tokenizer,
                &all_prompts,
                &policy,
                r,
                &dir,
            )?;
        }
        // 4. Train on it: a run of its own, from the policy, against the reference.
        let mut rc = cfg.clone();
        rc.online = None;
        rc.out_dir = dir.join("train");
        rc.model.path = Some(policy.clone());
        rc.model.preset = None;
        rc.tokenizer.path = None;
        rc.reference.path = Some(reference.clone());
        rc.data.format = if paired_data {
            DataFormatName::Paired
        } else {
            DataFormatName::Unpaired
        };
        rc.data.train = Some(rpo_train::config::DataFiles::One(
            data_path.display().to_string(),
        ));
        rc.data.eval = None;
        // The round's data is written with the canonical columns and nothing held out.
        rc.data.eval_fraction = 0.0;
        rc.data.columns = Default::default();
        rc.train.steps = o.steps_per_round;
        rc.train.sft_warmup_steps = 0;
        rc.train.save_model = true;
        rc.eval.judge = false;
        rc.seed = cfg.seed.wrapping_add(r as u64);
        rc.validate().map_err(|e| OnlineError::RoundConfig {
            round: r,
            source: Box::new(e),
        })?;
        let checkpoints = rc.out_dir.join("checkpoints");
        let resume_from = has_checkpoint(&checkpoints).then_some(checkpoints);
        if resume_from.is_none() && main && rc.out_dir.exists() {
            // A round that stopped before its first checkpoint starts over.
            std::fs::remove_dir_all(&rc.out_dir)?;
        }
        world.barrier()?;
        let launch = rpo_train::Launch {
            resume: resume_from.as_deref(),
            ..Default::default()
        };
        let summary = rpo_train::train(&rc, world, launch)?;
        // Rank 0 writes the model and reports where; every rank reads it from there.
        let model_dir = match (summary.model_dir.clone(), main) {
            (Some(dir), _) => dir,
            (None, false) => rc.out_dir.join("model"),
            (None, true) => {
                return Err(OnlineError::Invalid(
                    "a round's training saves its model".into(),
                ))
            }
        };
        // 5. Evaluate and record.
        let (acc, by_family) = heldout(world, cfg, &data, &model_dir, &dir.join("eval.jsonl"))?;
        let RoundDataStats { stats, draws } =
            serde_json::from_str(&std::fs::read_to_string(dir.join("data_stats.json"))?)?;
        let report = RoundReport {
            round: r,
            samples: stats.samples,
            sample_accuracy: stats.desirable_fraction,
            prompts: stats.prompts,
            prompts_mixed_fraction: stats.prompts_mixed as f64 / stats.prompts.max(1) as f64,
            rows: stats.rows,
            draws,
            steps: summary.steps,
            last_loss: summary.last_step.as_ref().map(|m| m.loss),
            heldout_accuracy: acc,
            heldout_by_family: by_family,
            model_dir: model_dir.clone(),
        };
        tracing::info!(
            round = r,
            sample_accuracy = format!("{:.3}", report.sample_accuracy),
            mixed = format!("{:.3}", report.prompts_mixed_fraction),
            rows = report.rows,
            heldout_accuracy = ?report.heldout_accuracy,
            "online round done"
        );
        if main {
            let line = serde_json::to_string(&report)?;
            let log = out.join("online.jsonl");
            let mut previous = std::fs::read_to_string(&log).unwrap_or_default();
            previous.push_str(&line);
            previous.push('\n');
            write_atomic(&log, &previous)?;
            write_atomic(&report_path, &serde_json::to_string_pretty(&report)?)?;
        }
        world.barrier()?;
        policy = model_dir;
        reports.push(report);
    }
    Ok(reports)
}

//! Held-out evaluation: the synthetic suite's judge on greedy answers, and reward
//! accuracy of the policy against its reference on held-out pairs.

use anyhow::Result;
use rpo_data::synthetic::SyntheticExample;
use rpo_data::{PairedBatch, PairedExample, PreferenceTokenizer};
use rpo_model::{generate_greedy, Llama};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::metrics::MetricsWriter;
use crate::micro_batch::{self, Models, RewardStats};
use crate::objective::Objective;

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
    let prompts = questions
        .iter()
        .map(|q| tokenizer.encode_prompt_for_generation(&q.prompt))
        .collect::<Result<Vec<_>>>()?;
    let eos = tokenizer.special().eos;
    let outputs = generate_greedy(policy, &prompts, max_new_tokens, Some(eos))?;
    let mut per_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut writer = out.map(MetricsWriter::create).transpose()?;
    let mut correct_total = 0;
    for (q, ids) in questions.iter().zip(outputs) {
        let ids: Vec<i64> = ids.into_iter().filter(|&t| t != eos).collect();
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

/// Reward accuracy and margin of held-out pairs (policy vs reference), without gradients.
pub fn reward_accuracy(
    models: &Models,
    tokenizer: &PreferenceTokenizer,
    pairs: &[PairedExample],
    batch: usize,
) -> Result<RewardStats> {
    let mut stats = RewardStats::default();
    tch::no_grad(|| -> Result<()> {
        for chunk in pairs.chunks(batch) {
            let refs: Vec<&PairedExample> = chunk.iter().collect();
            let b = PairedBatch::from_examples(&refs, tokenizer)?;
            stats.merge(&micro_batch::paired(&Objective::Dpo, models, &b)?.stats);
        }
        Ok(())
    })?;
    Ok(stats)
}

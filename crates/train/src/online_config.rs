//! `[online]`: on-policy preference training in rounds (issue 18; run by `rpo-online`).
//! Each round samples from the current policy, judges the samples, builds preference
//! data from them and trains `steps_per_round` steps on it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineConfig {
    /// Sample → judge → build data → train, this many times.
    pub rounds: usize,
    /// Optimizer steps of each round's training.
    pub steps_per_round: usize,
    /// Samples per prompt.
    #[serde(default = "default_k")]
    pub samples_per_prompt: usize,
    /// Prompts sampled per round: consecutive slices of the prompt list, round r starting
    /// at r × this (wrapping). All prompts when unset. When a slice's data does not fill
    /// one global batch, the round samples the next slice too (until every prompt was drawn).
    pub prompts_per_round: Option<usize>,
    /// JSONL `{"prompt", …}` (other fields go to the judge); default: the run's training prompts
    /// (with the preferred response as `reference`).
    pub prompts: Option<PathBuf>,
    #[serde(default = "one")]
    pub temperature: f64,
    #[serde(default = "one")]
    pub top_p: f64,
    /// Default: eval.max_new_tokens.
    pub max_new_tokens: Option<usize>,
    #[serde(default)]
    pub judge: OnlineJudge,
    /// `match`: the prompt record's field holding the reference answer.
    #[serde(default = "default_reference_field")]
    pub reference_field: String,
    #[serde(default)]
    pub match_mode: OnlineMatchMode,
    /// `command`: run through `sh -c` (JSONL samples in, one score a line out).
    pub judge_command: Option<String>,
    /// A sample is desirable when its score is at least this.
    #[serde(default = "half")]
    pub threshold: f64,
    /// How samples become data: "unpaired" (every sample of a prompt with both labels),
    /// "best-worst" or "all-pairs" (paired). SFT trains on every desirable sample.
    #[serde(default)]
    pub rule: OnlineRule,
    /// "all-pairs": at most this many pairs per prompt.
    #[serde(default = "default_pairs")]
    pub max_pairs_per_prompt: usize,
    /// Replace the reference by the policy at the start of each round (default: the
    /// reference stays the round-0 model, or `reference.path`).
    #[serde(default)]
    pub reference_refresh: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnlineJudge {
    #[default]
    Synthetic,
    Match,
    Command,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnlineMatchMode {
    #[default]
    Exact,
    Normalized,
    Regex,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnlineRule {
    #[default]
    Unpaired,
    BestWorst,
    AllPairs,
}

fn default_k() -> usize {
    4
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn default_pairs() -> usize {
    4
}
fn default_reference_field() -> String {
    "reference".into()
}

impl OnlineConfig {
    /// Refuse what cannot run, naming the key.
    pub fn validate(
        &self,
        loss: crate::choices::LossName,
        unpaired_loss: bool,
    ) -> crate::error::Result<()> {
        if self.rounds == 0 || self.steps_per_round == 0 || self.samples_per_prompt == 0 {
            bail_config!(
                "online.rounds",
                "online.rounds, online.steps_per_round and online.samples_per_prompt must be ≥ 1"
            );
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            bail_config!(
                "online.temperature",
                "online.temperature must be > 0 (samples must differ to be compared)"
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail_config!("online.top_p", "online.top_p must be in (0, 1]");
        }
        if !self.threshold.is_finite() {
            bail_config!("online.threshold", "online.threshold must be finite");
        }
        if (self.judge == OnlineJudge::Command) != self.judge_command.is_some() {
            bail_config!(
                "online.judge",
                "online.judge = \"command\" and online.judge_command go together"
            );
        }
        let paired_rule = self.rule != OnlineRule::Unpaired;
        if loss != crate::choices::LossName::Sft && paired_rule == unpaired_loss {
            bail_config!(
                "online.rule",
                "online.rule = {:?} builds {} data, but loss \"{loss}\" trains on {} data",
                self.rule,
                if paired_rule { "paired" } else { "unpaired" },
                if unpaired_loss { "unpaired" } else { "paired" }
            );
        }
        Ok(())
    }
}

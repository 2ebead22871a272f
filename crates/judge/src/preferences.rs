//! Preference data from scored samples (issue 18): the policy's own responses, labelled
//! by a scorer, turned into the project's paired or unpaired JSONL.

use serde::{Deserialize, Serialize};

/// A sampled response with its score, as `rpo-shard sample --judge …` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredSample {
    pub prompt: String,
    pub response: String,
    pub score: f64,
    pub label: bool,
}

/// How samples become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairingRule {
    /// Unpaired: every sample of a mixed prompt, labelled desirable or not.
    Unpaired,
    /// Paired: per prompt, the best-scored desirable against the worst-scored undesirable.
    BestWorst,
    /// Paired: every (desirable, undesirable) pair of a prompt, strongest contrasts first
    /// (ranked by the sum of the two ranks), at most `max_pairs_per_prompt`.
    AllPairs,
}

/// One row of the project's JSONL formats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PreferenceRow {
    Paired {
        prompt: String,
        chosen: String,
        rejected: String,
    },
    Unpaired {
        prompt: String,
        completion: String,
        label: bool,
    },
}

/// What building the data did, for logs and per-round metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreferenceStats {
    pub samples: usize,
    pub prompts: usize,
    /// Fraction of samples labelled desirable (the judge accuracy of the samples).
    pub desirable_fraction: f64,
    /// Prompts with at least one desirable and one undesirable sample: the ones used.
    pub prompts_mixed: usize,
    /// Prompts skipped because all their samples were desirable / undesirable.
    pub prompts_all_desirable: usize,
    pub prompts_all_undesirable: usize,
    pub rows: usize,
}

/// Groups `samples` by prompt (in order of first appearance), skips prompts whose
/// samples all agree, and builds rows by `rule`. Ties in score keep sample order, so the
/// result depends only on the samples' order.
pub fn build_preferences(
    samples: &[ScoredSample],
    rule: PairingRule,
    max_pairs_per_prompt: usize,
) -> (Vec<PreferenceRow>, PreferenceStats) {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: std::collections::HashMap<&str, Vec<&ScoredSample>> = Default::default();
    for s in samples {
        groups
            .entry(s.prompt.as_str())
            .or_insert_with(|| {
                order.push(s.prompt.as_str());
                Vec::new()
            })
            .push(s);
    }
    let mut stats = PreferenceStats {
        samples: samples.len(),
        prompts: order.len(),
        desirable_fraction: if samples.is_empty() {
            0.0
        } else {
            samples.iter().filter(|s| s.label).count() as f64 / samples.len() as f64
        },
        ..Default::default()
    };
    let mut rows = Vec::new();
    for prompt in order {
        let group = &groups[prompt];
        // Desirable best first; undesirable worst first (stable: ties keep sample order).
        let mut good: Vec<&ScoredSample> = group.iter().copied().filter(|s| s.label).collect();
        let mut bad: Vec<&ScoredSample> = group.iter().copied().filter(|s| !s.label).collect();
        if bad.is_empty() {
            stats.prompts_all_desirable += 1;
            continue;
        }
        if good.is_empty() {
            stats.prompts_all_undesirable += 1;
            continue;
        }
        stats.prompts_mixed += 1;
        good.sort_by(|a, b| b.score.total_cmp(&a.score));
        bad.sort_by(|a, b| a.score.total_cmp(&b.score));
        let paired = |c: &ScoredSample, r: &ScoredSample| PreferenceRow::Paired {
            prompt: prompt.to_string(),
            chosen: c.response.clone(),
            rejected: r.response.clone(),
        };
        match rule {
            PairingRule::Unpaired => rows.extend(group.iter().map(|s| PreferenceRow::Unpaired {
                prompt: prompt.to_string(),
                completion: s.response.clone(),
                label: s.label,
            })),
            PairingRule::BestWorst => rows.push(paired(good[0], bad[0])),
            PairingRule::AllPairs => {
                let mut pairs: Vec<(usize, usize)> = (0..good.len())
                    .flat_map(|i| (0..bad.len()).map(move |j| (i, j)))
                    .collect();
                pairs.sort_by_key(|&(i, j)| (i + j, i));
                rows.extend(
                    pairs
                        .into_iter()
                        .take(max_pairs_per_prompt)
                        .map(|(i, j)| paired(good[i], bad[j])),
                );
            }
        }
    }
    stats.rows = rows.len();
    (rows, stats)
}

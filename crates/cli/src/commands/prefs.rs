//! `rpo-shard prefs`: preference data from scored samples (`rpo-shard sample --judge …`),
//! as the project's paired or unpaired JSONL, ready for `train`.

use anyhow::{bail, Context, Result};
use rpo_judge::{build_preferences, PairingRule, Sample, ScoredSample};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

use super::scorer_args::ScorerArgs;
use rpo_online::sampling::to_jsonl;
use rpo_online::write_atomic;

#[derive(clap::Args)]
pub struct Args {
    /// Samples JSONL as `rpo-shard sample` writes it (with `score` and `label`, or give
    /// --judge to score them here).
    #[arg(long)]
    samples: PathBuf,
    /// unpaired: every sample of a prompt with both labels; best-worst: one pair per
    /// prompt; all-pairs: every (desirable, undesirable) pair, capped.
    #[arg(long, value_enum, default_value = "unpaired")]
    rule: Rule,
    /// all-pairs: at most this many pairs per prompt.
    #[arg(long, default_value_t = 4)]
    max_pairs_per_prompt: usize,
    /// The preference data: `{prompt, chosen, rejected}` or `{prompt, completion, label}` lines.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    scorer: ScorerArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Rule {
    Unpaired,
    BestWorst,
    AllPairs,
}

fn read_lines(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read samples {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(Value::Object(m)) => out.push(m),
            _ => bail!("{}:{}: not a JSON object", path.display(), i + 1),
        }
    }
    if out.is_empty() {
        bail!("{}: no samples", path.display());
    }
    Ok(out)
}

pub fn run(a: Args) -> Result<()> {
    let records = read_lines(&a.samples)?;
    let out_dir = a.out.parent().unwrap_or(Path::new(".")).to_path_buf();
    let scored: Vec<ScoredSample> = match a.scorer.build(a.seed, &out_dir)? {
        Some(scorer) => {
            let samples = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    serde_json::from_value::<Sample>(Value::Object(r.clone())).with_context(|| {
                        format!("{}: sample {}: needs string fields prompt and response", a.samples.display(), i + 1)
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let scores = scorer.score(&samples)?;
            samples
                .into_iter()
                .zip(scores)
                .map(|(s, sc)| ScoredSample {
                    prompt: s.prompt,
                    response: s.response,
                    score: sc.score,
                    label: sc.label,
                })
                .collect()
        }
        None => records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value::<ScoredSample>(Value::Object(r.clone())).with_context(|| {
                    format!(
                        "{}: sample {}: needs prompt, response, score and label (score the samples with --judge …)",
                        a.samples.display(),
                        i + 1
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let rule = match a.rule {
        Rule::Unpaired => PairingRule::Unpaired,
        Rule::BestWorst => PairingRule::BestWorst,
        Rule::AllPairs => PairingRule::AllPairs,
    };
    let (rows, stats) = build_preferences(&scored, rule, a.max_pairs_per_prompt);
    if rows.is_empty() {
        bail!(
            "no preference data: none of the {} prompts has both a desirable and an undesirable sample ({} all desirable, {} all undesirable)",
            stats.prompts,
            stats.prompts_all_desirable,
            stats.prompts_all_undesirable
        );
    }
    write_atomic(&a.out, &to_jsonl(&rows)?)?;
    tracing::info!(
        rows = stats.rows,
        prompts_used = stats.prompts_mixed,
        prompts_skipped = stats.prompts_all_desirable + stats.prompts_all_undesirable,
        out = %a.out.display(),
        "wrote preference data"
    );
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}

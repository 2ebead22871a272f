//! `rpo-shard eval`: win rate of generated responses against the preferred responses,
//! through the synthetic suite's judge or an OpenAI-compatible chat endpoint; and/or
//! reward accuracy and margins of a trained policy against its reference on held-out pairs.

use anyhow::{bail, Result};
use rpo_judge::{evaluate, read_generations, HttpJudge, Judge, JudgeConfig, SyntheticJudge, Task};
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JudgeKind {
    /// The built-in synthetic suite's programmatic judge (no network).
    Synthetic,
    /// An OpenAI-compatible chat endpoint with the paper's appendix-H prompts.
    Http,
}

#[derive(clap::Args)]
pub struct Args {
    /// Generations JSONL: one `{"prompt", "response", "reference"}` object a line
    /// (`reference` = the dataset's preferred response), optionally with `"family"`.
    #[arg(long, requires = "judge")]
    generations: Option<PathBuf>,
    #[arg(long, value_enum, requires = "generations")]
    judge: Option<JudgeKind>,
    /// Reward accuracy and margin of this policy (a Hugging Face folder) against
    /// --reference on the held-out pairs of the config's data (--config / --set).
    #[arg(long, requires = "reference")]
    policy: Option<PathBuf>,
    #[arg(long, requires = "policy")]
    reference: Option<PathBuf>,
    #[command(flatten)]
    config: super::ConfigArgs,
    /// HTTP judge: which appendix-H prompt, `dialogue` (default) or `summarization`.
    #[arg(long)]
    task: Option<Task>,
    /// Where comparisons.jsonl and summary.json go [default: <generations folder>/eval_<judge>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// HTTP judge: seed of the order the two responses are shown in.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// HTTP judge settings (TOML: base_url, model, api_key, task, timeout_s, max_retries,
    /// backoff_initial_s, backoff_max_s, concurrency, max_tokens); the environment
    /// (RPO_JUDGE_BASE_URL, RPO_JUDGE_MODEL, RPO_JUDGE_API_KEY or OPENAI_API_KEY) fills the rest.
    #[arg(long)]
    judge_config: Option<PathBuf>,
    /// HTTP judge: the endpoint's base URL, e.g. https://api.openai.com/v1.
    #[arg(long)]
    base_url: Option<String>,
    /// HTTP judge: the judge model, e.g. gpt-4-0613.
    #[arg(long)]
    judge_model: Option<String>,
    /// HTTP judge: requests in flight at once [default: 4].
    #[arg(long)]
    concurrency: Option<usize>,
    /// HTTP judge: the answer cache [default: <out>/judge_cache.jsonl].
    #[arg(long)]
    cache: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    if let (Some(policy), Some(reference)) = (&a.policy, &a.reference) {
        let mut cfg = a.config.load()?;
        if cfg.tokenizer.path.is_none() && policy.join("tokenizer.json").exists() {
            cfg.tokenizer.path = Some(policy.join("tokenizer.json").display().to_string());
        }
        let rewards = rpo_train::evaluate::held_out_rewards(&cfg, policy, reference)?;
        println!("{}", serde_json::to_string_pretty(&rewards)?);
    }
    let (Some(generations_path), Some(kind)) = (a.generations.clone(), a.judge) else {
        if a.policy.is_none() {
            bail!("give --generations FILE --judge KIND (win rate), --policy DIR --reference DIR (reward accuracy), or both");
        }
        return Ok(());
    };
    let a = Args {
        generations: Some(generations_path.clone()),
        judge: Some(kind),
        ..a
    };
    let name = match kind {
        JudgeKind::Synthetic => "synthetic",
        JudgeKind::Http => "http",
    };
    let out = a.out.clone().unwrap_or_else(|| {
        let dir = generations_path.parent().unwrap_or_else(|| ".".as_ref());
        dir.join(format!("eval_{name}"))
    });
    let generations = read_generations(&generations_path)?;
    let judge: Box<dyn Judge> = match kind {
        JudgeKind::Synthetic => {
            let http_only = [
                ("--task", a.task.is_some()),
                ("--judge-config", a.judge_config.is_some()),
                ("--base-url", a.base_url.is_some()),
                ("--judge-model", a.judge_model.is_some()),
                ("--concurrency", a.concurrency.is_some()),
                ("--cache", a.cache.is_some()),
            ];
            if let Some((flag, _)) = http_only.iter().find(|(_, set)| *set) {
                bail!("{flag} is for --judge http; the synthetic judge needs no settings");
            }
            Box::new(SyntheticJudge)
        }
        JudgeKind::Http => {
            let file = match &a.judge_config {
                Some(p) => JudgeConfig::load(p)?,
                None => JudgeConfig::default(),
            };
            let flags = JudgeConfig {
                base_url: a.base_url,
                model: a.judge_model,
                task: a.task,
                concurrency: a.concurrency,
                ..Default::default()
            };
            let settings = file
                .overridden_by(flags)
                .resolve(|k| std::env::var(k).ok())?;
            let cache = a.cache.unwrap_or_else(|| out.join("judge_cache.jsonl"));
            Box::new(HttpJudge::new(settings, a.seed, &cache)?)
        }
    };
    tracing::info!(
        "judging {} comparisons from {} ({name} judge)",
        generations.len(),
        generations_path.display()
    );
    let summary = evaluate(judge.as_ref(), &generations, &generations_path, &out)?;
    let t = &summary.total;
    tracing::info!(
        wins = t.wins,
        losses = t.losses,
        ties = t.ties,
        unparsable = t.unparsable,
        win_rate = t.win_rate,
        win_rate_ties_half = t.win_rate_ties_half,
        "wrote {}",
        out.join("summary.json").display()
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

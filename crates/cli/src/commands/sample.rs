//! `rpo-shard sample`: k sampled responses per prompt from a model folder or checkpoint,
//! data-parallel under mpirun, optionally scored by a judge — the first half of on-policy
//! preference data (`rpo-shard prefs` is the second). See `rpo_online::sampling`.

use anyhow::{ensure, Context, Result};
use rpo_comm::{Backend, Runtime};
use rpo_online::sampling::to_jsonl;
use rpo_online::{read_prompts, run_prompts, write_atomic, PromptRecord, SamplingParams};
use rpo_train::data_source::RunData;
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::model_args::ModelArgs;
use super::scorer_args::ScorerArgs;
use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The run whose data gives the prompts (without --prompts) and whose tokenizer
    /// settings apply; its model settings are replaced by --model / --checkpoint.
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// JSONL prompts `{"prompt": …, …}`; other fields are carried to the output (and to
    /// the judge). Without it: the config's data (see --split).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Without --prompts: sample the run's `train` prompts or its held-out `eval` ones.
    #[arg(long, value_enum, default_value = "train")]
    split: Split,
    /// Samples per prompt.
    #[arg(long, short = 'k', default_value_t = 4)]
    k: usize,
    /// At most this many prompts (the first ones); all when absent.
    #[arg(long)]
    max_prompts: Option<usize>,
    /// [default: the config's eval.max_new_tokens]
    #[arg(long)]
    max_new_tokens: Option<usize>,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// [default: the config's seed]
    #[arg(long)]
    seed: Option<u64>,
    /// Samples JSONL: `{prompt, response, prompt_index, sample, tokens, [score, label], …fields}`.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    scorer: ScorerArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    Train,
    Eval,
}

pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.config.load()?;
    let seed = args.seed.unwrap_or(cfg.seed);
    let runtime = Runtime::init(false, Backend::Auto, cfg.distributed.watchdog())?;
    let world = runtime.world();
    let (model, tokenizer) = args.model.decoding_model(world)?;
    if cfg.tokenizer.path.is_none() && tokenizer.exists() {
        cfg.tokenizer.path = Some(tokenizer.display().to_string());
    }
    let data = RunData::load(&cfg)?;
    let mut prompts: Vec<PromptRecord> = match &args.prompts {
        Some(path) => read_prompts(path)?,
        None => run_prompts(&data, args.split == Split::Train),
    };
    if let Some(n) = args.max_prompts {
        prompts.truncate(n);
    }
    ensure!(!prompts.is_empty(), "no prompts to sample");
    // Build the scorer before the work, so a bad judge setting fails at once.
    let out_dir = args.out.parent().unwrap_or(Path::new(".")).to_path_buf();
    let scorer = args.scorer.build(seed, &out_dir)?;
    let params = SamplingParams {
        samples_per_prompt: args.k,
        max_new_tokens: args.max_new_tokens.unwrap_or(cfg.eval.max_new_tokens),
        temperature: args.temperature,
        top_p: args.top_p,
        seed,
    };
    if world.rank() == 0 {
        tracing::info!(
            prompts = prompts.len(),
            ?params,
            ranks = world.world_size(),
            "sampling"
        );
    }
    let Some(mut records) = rpo_online::sample(world, &model, &data.tokenizer, &prompts, params)?
    else {
        return Ok(()); // not rank 0
    };
    write_atomic(&args.out, &to_jsonl(&records)?)?;
    if let Some(scorer) = scorer {
        let samples = records
            .iter()
            .map(|r| serde_json::from_value(Value::Object(r.clone())))
            .collect::<serde_json::Result<Vec<rpo_judge::Sample>>>()?;
        let scores = scorer.score(&samples).with_context(|| {
            format!(
                "scoring with the {} judge failed; the unscored samples are kept in {} (score them with `rpo-shard prefs --samples {} --judge …`)",
                scorer.name(),
                args.out.display(),
                args.out.display()
            )
        })?;
        for (r, s) in records.iter_mut().zip(&scores) {
            r.insert("score".into(), s.score.into());
            r.insert("label".into(), s.label.into());
        }
        write_atomic(&args.out, &to_jsonl(&records)?)?;
        let desirable = scores.iter().filter(|s| s.label).count();
        tracing::info!(
            judge = scorer.name(),
            desirable,
            accuracy = format!("{:.3}", desirable as f64 / scores.len() as f64),
            "scored"
        );
    }
    tracing::info!(out = %args.out.display(), "wrote samples");
    Ok(())
}

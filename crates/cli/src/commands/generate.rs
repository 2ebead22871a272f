//! `rpo-shard generate`: responses to prompts from a model folder or a training
//! checkpoint, greedy (the paper's setting) or sampled, with a KV cache; data parallel
//! under mpirun (rank r answers the r-th contiguous part; sampling streams are keyed by
//! the prompt's index, so the file is the same at any rank count).
//!
//! The prompts are a file's (`--prompts`: records with a `prompt`, every other field
//! copied to the output), or the held-out prompts of a run's `--config`. Rank 0 writes
//! one JSON line per prompt: the record's fields plus `response` (held-out prompts:
//! `{prompt, response, reference, family?}`), as `rpo-shard eval` reads them.

use anyhow::{bail, Context, Result};
use rpo_comm::{all_gather_varlen, Backend, Collective, Runtime};
use rpo_data::read_prompts;
use rpo_model::{generate, Decoding};
use rpo_train::config::TrainConfig;
use rpo_train::data_source::{load_tokenizer, RunData};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

use super::model_args::ModelArgs;
use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    /// A run's config: its held-out prompts are answered when --prompts is not given, and
    /// its eval.max_new_tokens, data.max_prompt_length and tokenizer apply; its model
    /// settings are replaced by --model / --checkpoint.
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Prompts to answer: .jsonl, .jsonl.gz, .json or .parquet records with a `prompt`
    /// string; their other fields are copied to the output.
    #[arg(long)]
    prompts: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// At most this many prompts, the first ones (default: all).
    #[arg(long)]
    max_prompts: Option<usize>,
    /// Default: the config's eval.max_new_tokens.
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// 0: greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// A prompt and the fields its output line carries besides `prompt` and `response`.
type Item = (String, Map<String, Value>);

fn held_out_item(prompt: &str, reference: &str, family: Option<&str>) -> Item {
    let mut fields = Map::new();
    fields.insert("reference".into(), reference.into());
    if let Some(family) = family {
        fields.insert("family".into(), family.into());
    }
    (prompt.to_string(), fields)
}

/// The prompts of `--prompts`, else the held-out prompts of `--config`'s run.
fn prompt_items(args: &Args, cfg: &TrainConfig) -> Result<Vec<Item>> {
    if let Some(path) = &args.prompts {
        return Ok(read_prompts(path)?
            .into_iter()
            .map(|r| (r.prompt, r.fields))
            .collect());
    }
    if !args.config.has_file() {
        bail!(
            "give --prompts FILE (records with a `prompt`), or --config FILE to answer that run's held-out prompts"
        );
    }
    let held_out = RunData::load_held_out(cfg)?;
    // Synthetic questions (with their family, for the suite's judge), else the held-out pairs.
    Ok(if !held_out.judged.is_empty() {
        held_out
            .judged
            .iter()
            .map(|q| held_out_item(&q.prompt, &q.chosen, Some(q.family.name())))
            .collect()
    } else {
        held_out
            .pairs
            .iter()
            .map(|p| held_out_item(&p.prompt, &p.chosen, None))
            .collect()
    })
}

pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.config.load()?;
    let runtime = Runtime::init(false, Backend::Auto, cfg.distributed.watchdog())?;
    let world = runtime.world();
    let device = world.device();
    let (model, tokenizer) = args.model.decoding_model(world)?;
    if cfg.tokenizer.path.is_none() {
        // The model's own tokenizer; never another one by default.
        anyhow::ensure!(
            tokenizer.exists(),
            "{} is missing: the model's tokenizer is needed (or set tokenizer.path in --config)",
            tokenizer.display()
        );
        cfg.tokenizer.path = Some(tokenizer.display().to_string());
    }
    let all = prompt_items(&args, &cfg)?;
    let total = all.len();
    let items = &all[..total.min(args.max_prompts.unwrap_or(usize::MAX))];
    anyhow::ensure!(!items.is_empty(), "there are no prompts to answer");
    let max_new_tokens = args.max_new_tokens.unwrap_or(cfg.eval.max_new_tokens);
    let (rank, ranks) = (world.rank(), world.world_size());
    if rank == 0 {
        // Said even under RPO_LOG=warn: how many prompts were used is part of the result.
        eprintln!(
            "generate: answering {} of {total} prompts{}, at most {max_new_tokens} new tokens each",
            items.len(),
            if items.len() < total {
                " (--max-prompts)"
            } else {
                ""
            }
        );
    }
    let tokenizer = load_tokenizer(&cfg)?;

    let per_rank = items.len().div_ceil(ranks);
    let mine = (rank * per_rank).min(items.len())..((rank + 1) * per_rank).min(items.len());
    let prompts = items[mine.clone()]
        .iter()
        .map(|(p, _)| tokenizer.encode_prompt_for_generation(p))
        .collect::<rpo_data::Result<Vec<_>>>()?;
    let ids: Vec<u64> = mine.clone().map(|i| i as u64).collect();
    let decoding = if args.temperature == 0.0 {
        Decoding::Greedy
    } else {
        Decoding::Sample {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        }
    };
    let stop = tokenizer.special().stop.clone();
    let outputs = generate(&model, &prompts, &ids, max_new_tokens, &stop, decoding)?;
    let mut lines = String::new();
    for ((prompt, fields), tokens) in items[mine].iter().zip(outputs) {
        let tokens: Vec<i64> = tokens.into_iter().filter(|t| !stop.contains(t)).collect();
        let mut line = Map::new();
        line.insert("prompt".into(), prompt.clone().into());
        line.insert("response".into(), tokenizer.decode(&tokens)?.into());
        for (key, value) in fields {
            line.entry(key.clone()).or_insert_with(|| value.clone());
        }
        lines.push_str(&serde_json::to_string(&line)?);
        lines.push('\n');
    }
    // Every rank's lines, in rank order (= prompt order), to rank 0.
    let bytes = Tensor::from_slice(lines.as_bytes()).to_kind(Kind::Uint8);
    let (all, _) = all_gather_varlen(world as &dyn Collective, &bytes.to_device(device))?;
    if rank == 0 {
        let all = Vec::<u8>::try_from(&all.to_device(Device::Cpu))?;
        let mut f = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        f.write_all(&all)?;
        tracing::info!(prompts = items.len(), ranks, out = %args.out.display(), "generated");
    }
    Ok(())
}

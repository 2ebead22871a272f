//! `rpo-shard plan`: per-rank bytes of a training config at every ZeRO stage (the formula
//! in docs/architecture.md), bytes moved per step, and which stages fit a GPU's memory,
//! from the model's shape alone (no weights are read).

use anyhow::{Context, Result};
use rpo_model::LlamaConfig;
use rpo_train::device::{parse_device, parse_dtype};
use rpo_train::memory_plan::{model_shape, plan, tokenizer_vocab};
use std::path::PathBuf;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Ranks (GPUs) the run would use.
    #[arg(long, default_value_t = 1)]
    ranks: usize,
    /// Memory per GPU, e.g. 80GiB (default: the config's zero.memory_budget, if any).
    #[arg(long)]
    gpu_mem: Option<String>,
    /// The model's shape instead of the config's: a preset (llama-2-7b, llama-2-13b,
    /// mistral-7b, ...) or a config.json.
    #[arg(long)]
    model: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.config.load()?;
    if let Some(mem) = args.gpu_mem {
        cfg.zero.memory_budget = Some(mem);
    }
    let model = match args.model.as_deref() {
        Some(m) if m.ends_with(".json") => {
            LlamaConfig::from_file(&PathBuf::from(m)).with_context(|| format!("--model {m}"))?
        }
        Some(m) => rpo_model::preset(m)?,
        None => model_shape(&cfg, tokenizer_vocab(&cfg))?,
    };
    let kind = parse_dtype(&cfg.model.dtype, parse_device(&cfg.model.device)?)?;
    let plan = plan(&cfg, model, args.ranks, kind)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        println!(
            "dtype {:?}, optimizer {}, reference {}, {} examples × {} tokens per rank per micro-batch, {} micro-batches per step",
            kind,
            cfg.optim.name,
            cfg.reference.mode,
            cfg.train.micro_batch_size,
            cfg.data.max_length,
            cfg.accumulation_steps(args.ranks)
        );
        print!("{}", plan.table());
    }
    Ok(())
}

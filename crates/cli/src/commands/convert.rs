//! `rpo-shard convert`: a training checkpoint (any world size, any ZeRO stage) to a
//! Hugging Face folder that `transformers.AutoModelForCausalLM.from_pretrained` loads:
//! the fp32 master weights consolidated from every rank's shard one unit at a time, in the dtype asked for,
//! sharded with an index above the size limit, with config.json and the tokenizer.

use anyhow::Result;
use rpo_model::hf_io::DEFAULT_MAX_SHARD_BYTES;
use rpo_zero::Checkpoint;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint folder, or a folder of checkpoints (its newest, as `latest` names).
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// fp32 (the master weights as trained), bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    dtype: String,
    /// Largest weight file in bytes before the weights are split into shards with an index.
    #[arg(long, default_value_t = DEFAULT_MAX_SHARD_BYTES)]
    max_shard_bytes: u64,
}

pub fn run(args: Args) -> Result<()> {
    let kind = rpo_model::hf_io::parse_weight_dtype(&args.dtype)?;
    let checkpoint = Checkpoint::open(&args.checkpoint)?;
    // One unit in memory at a time, read from the memory-mapped shard files.
    checkpoint.save_hf(&args.out, kind, args.max_shard_bytes)?;
    let tokenizer = checkpoint.dir.join("tokenizer.json");
    if tokenizer.exists() {
        std::fs::copy(&tokenizer, args.out.join("tokenizer.json"))?;
    }
    tracing::info!(
        checkpoint = %checkpoint.dir.display(),
        step = checkpoint.manifest.step,
        written_on = checkpoint.manifest.world_size,
        stage = %checkpoint.manifest.zero_stage,
        out = %args.out.display(),
        dtype = %args.dtype,
        "converted"
    );
    Ok(())
}

//! `rpo-shard embed`: precompute a run's embeddings into the cache training reads
//! (`[embedding] cache`), so the sentence encoder never runs during training.

use anyhow::Result;
use rpo_train::precompute::{precompute, CacheDtype};
use std::path::PathBuf;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where to write the cache (default: embedding.cache, else <out_dir>/embeddings.bin).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How rows are stored: "f32" (exact) or "bf16" (half the size).
    #[arg(long, default_value = "f32")]
    dtype: CacheDtype,
    /// libtorch CPU threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
}

/// Prints one JSON line: the file, its fingerprints and the timing (texts per second).
pub fn run(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    if let Some(n) = args.threads {
        tch::set_num_threads(n);
    }
    let out = args.out.unwrap_or_else(|| cfg.embedding_cache_path());
    if cfg.embedding.cache.as_ref() != Some(&out) {
        tracing::info!(
            "training reads this file only with `--set embedding.cache={}`",
            out.display()
        );
    }
    let report = precompute(&cfg, &out, args.dtype)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

//! Writes the synthetic suite as paired JSONL: DIR/train.jsonl and DIR/eval.jsonl.
//!
//!     cargo run -p rpo-data --example write_synthetic_data -- DIR [N_TRAIN [N_EVAL [SEED]]]

use anyhow::{Context, Result};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    args.get(i)
        .map(|s| s.parse().with_context(|| format!("argument {i}: {s:?}")))
        .unwrap_or(Ok(default))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .context("usage: write_synthetic_data DIR [N_TRAIN [N_EVAL [SEED]]]")?;
    let (n_train, n_eval, seed) = (arg(&args, 2, 4096)?, arg(&args, 3, 256)?, arg(&args, 4, 0)?);
    rpo_data::synthetic::write_jsonl(dir, n_train, n_eval, seed)?;
    println!("wrote {n_train} train and {n_eval} eval examples to {dir}");
    Ok(())
}

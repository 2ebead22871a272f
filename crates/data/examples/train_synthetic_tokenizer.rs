//! Regenerates configs/synthetic/tokenizer.json (or the path given as the first argument).
//!
//!     cargo run -p rpo-data --example train_synthetic_tokenizer [-- OUT.json]

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let out = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/synthetic/tokenizer.json")
        }
    };
    let json = rpo_data::synthetic::train_synthetic_tokenizer_json()?;
    std::fs::write(&out, json).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder for train.jsonl and eval.jsonl (paired format, with a `family` field).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 4096)]
    train: usize,
    #[arg(long, default_value_t = 256)]
    eval: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also train the suite's BPE tokenizer afresh and write it as tokenizer.json
    /// (byte-identical to the one shipped in configs/synthetic/).
    #[arg(long)]
    tokenizer: bool,
}

pub fn run(args: Args) -> Result<()> {
    rpo_data::synthetic::write_jsonl(&args.out, args.train, args.eval, args.seed)?;
    if args.tokenizer {
        let json = rpo_data::synthetic::train_synthetic_tokenizer_json()?;
        std::fs::write(args.out.join("tokenizer.json"), json)?;
    }
    tracing::info!(out = %args.out.display(), train = args.train, eval = args.eval, "wrote the synthetic suite");
    Ok(())
}

//! `rpo-shard tokenizer train`: a byte-level BPE tokenizer for a small model of your own,
//! trained on your data files and written as a folder transformers loads.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Train on the texts of data files (every string of every record; lines of .txt).
    Train(TrainArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// .jsonl, .jsonl.gz, .json, .parquet or .txt files, or glob patterns.
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<String>,
    /// Vocabulary size, the 256 bytes and <pad>, <s>, </s> included.
    #[arg(long)]
    vocab: usize,
    /// Folder for tokenizer.json, tokenizer_config.json and special_tokens_map.json.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let Command::Train(args) = args.command;
    let paths = rpo_data::expand_paths(&args.data)?;
    let texts = rpo_data::corpus_texts(&paths)?;
    anyhow::ensure!(!texts.is_empty(), "the data files hold no text");
    let tokenizer = rpo_data::train_tokenizer(&texts, args.vocab)?;
    let vocab = tokenizer.get_vocab_size(true);
    rpo_data::write_trained_tokenizer_folder(tokenizer, &args.out)?;
    eprintln!(
        "tokenizer: trained on {} texts from {} files, {vocab} tokens, written to {}",
        texts.len(),
        paths.len(),
        args.out.display()
    );
    Ok(())
}

//! `rpo-shard init-model`: a randomly initialised model in the Hugging Face layout
//! (config.json, model.safetensors, tokenizer.json), for tests, benchmarks and scratch
//! runs. Like transformers' `from_config`, from a preset or any Llama-family config.json.

use anyhow::{bail, Context, Result};
use rpo_model::{preset, save_hf, Llama, LlamaConfig, TokenIds};
use std::path::PathBuf;
use std::str::FromStr;
use tch::{Device, Kind};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in shape (tiny, small, qwen2.5-0.5b, llama-2-7b, ...)...
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// ...or a Hugging Face config.json.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random initialisation (transformers' normal(0, initializer_range)).
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Parameter dtype of the written checkpoint: fp32, bf16 or fp16.
    #[arg(long, default_value = "fp32")]
    dtype: String,
    /// tokenizer.json to copy in ("builtin:synthetic", the default, is the synthetic
    /// suite's); with --preset its vocabulary and special tokens set vocab_size, eos, bos
    /// and pad, as `train` does for presets.
    #[arg(long, default_value = "builtin:synthetic")]
    tokenizer: String,
}

pub fn run(args: Args) -> Result<()> {
    let kind = rpo_model::hf_io::parse_weight_dtype(&args.dtype)?;
    let (tokenizer_json, files) =
        if args.tokenizer == rpo_train::config::BUILTIN_SYNTHETIC_TOKENIZER {
            (
                rpo_data::synthetic::SYNTHETIC_TOKENIZER_JSON.to_string(),
                rpo_data::trained_tokenizer_files(),
            )
        } else {
            let path = std::path::Path::new(&args.tokenizer);
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("reading --tokenizer {}", args.tokenizer))?;
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            (json, rpo_data::TokenizerFiles::read(dir)?)
        };
    let tok = tokenizers::Tokenizer::from_str(&tokenizer_json)
        .map_err(|e| anyhow::anyhow!("cannot read tokenizer {}: {e}", args.tokenizer))?;
    let special = rpo_data::SpecialTokens::resolve(&tok, &files, &Default::default())
        .with_context(|| format!("in tokenizer {}", args.tokenizer))?;
    let mut config = match (&args.preset, &args.config) {
        (Some(name), None) => {
            let mut config = preset(name)?;
            config.vocab_size = tok.get_vocab_size(true) as i64;
            config.eos_token_id = Some(TokenIds::One(special.eos));
            config.bos_token_id = special.bos;
            config.pad_token_id = Some(special.pad);
            config
        }
        (None, Some(path)) => LlamaConfig::from_file(path)?,
        _ => bail!("give --preset NAME or --config config.json"),
    };
    config.torch_dtype = None;
    let (_model, mut vs): (Llama, _) = Llama::init(&config, Device::Cpu, Kind::Float, args.seed)?;
    vs.set_kind(kind);
    save_hf(&args.out, &vs, &config)?;
    rpo_data::write_tokenizer_folder(&args.out, &tokenizer_json, &files, &special)?;
    let params: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    tracing::info!(out = %args.out.display(), params, dtype = %args.dtype, "wrote a randomly initialised model");
    Ok(())
}

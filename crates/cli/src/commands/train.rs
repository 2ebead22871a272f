use anyhow::Result;
use rpo_train::config::TrainConfig;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// TOML config; without it the embedded default runs (see `rpo-shard config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any config key, e.g. `--set optim.lr=1e-5 --set loss.name=dpo`; `--set key=` removes a key.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = TrainConfig::load(args.config.as_deref(), &args.overrides)?;
    let summary = rpo_train::train(&cfg)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

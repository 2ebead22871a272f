use anyhow::Result;
use rpo_train::config::TrainConfig;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// TOML config to resolve; without it, the embedded default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides, as for `train`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Prints the validated config with every default filled in: the exact run `train` would do.
pub fn run(args: Args) -> Result<()> {
    let cfg = TrainConfig::load(args.config.as_deref(), &args.overrides)?;
    print!("{}", toml::to_string(&cfg)?);
    Ok(())
}

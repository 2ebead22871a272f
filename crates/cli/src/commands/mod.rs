//! One file per subcommand.
pub mod config;
pub mod convert;
pub mod embed;
pub mod init_model;
pub mod selftest;
pub mod synth;
pub mod train;

use anyhow::Result;
use rpo_train::config::TrainConfig;
use std::path::PathBuf;

/// How a subcommand names its training config: a file (or the embedded default) plus overrides.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// TOML config; without it the embedded default (see `rpo-shard config`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any config key, e.g. `--set optim.lr=1e-5 --set loss.name=dpo`; `--set key=` removes a key.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl ConfigArgs {
    /// The validated config: refused here, before any work, if anything is wrong.
    pub fn load(&self) -> Result<TrainConfig> {
        TrainConfig::load(self.config.as_deref(), &self.overrides)
    }
}

//! One file per subcommand.
pub mod config;
pub mod convert;
pub mod embed;
pub mod eval;
pub mod generate;
pub mod init_model;
mod model_args;
pub mod plan;
pub mod precompute_ref;
pub mod prefs;
pub mod sample;
mod scorer_args;
pub mod selftest;
pub mod synth;
pub mod tokenizer;
pub mod train;

use anyhow::Result;
use rpo_comm::{Backend, Collective, Runtime};
use rpo_train::config::{BackendName, TrainConfig};
use rpo_train::device::parse_device;
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
        Ok(TrainConfig::load(self.config.as_deref(), &self.overrides)?)
    }

    /// Was a config file given (rather than the embedded default)?
    pub fn has_file(&self) -> bool {
        self.config.is_some()
    }
}

/// Runs `work` on every rank of this launch, with the communicator `cfg` asks for (MPI
/// under mpirun, NCCL where `distributed.backend` says). One failing rank ends the whole
/// job: the others would wait in their next collective.
pub fn on_every_rank(
    cfg: &TrainConfig,
    work: impl FnOnce(&dyn Collective) -> Result<()>,
) -> Result<()> {
    let cuda = parse_device(&cfg.model.device)?.is_cuda();
    let backend = match cfg.distributed.backend {
        BackendName::Nccl => Backend::Nccl,
        BackendName::Auto => Backend::Auto,
    };
    let runtime = Runtime::init(cuda, backend, cfg.distributed.watchdog())?;
    let world = runtime.world();
    match work(world) {
        // Every rank stopped at the same step after a checkpoint: a clean exit, no abort.
        Err(e) if e.is::<rpo_train::preemption::Preempted>() => Err(e),
        Err(e) if world.world_size() > 1 => {
            eprintln!(
                "error on rank {} of {}: {e:#}",
                world.rank(),
                world.world_size()
            );
            runtime.abort(1)
        }
        result => result,
    }
}

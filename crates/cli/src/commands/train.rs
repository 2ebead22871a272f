use anyhow::Result;

use super::{on_every_rank, ConfigArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Continue from a checkpoint: its folder, a folder of checkpoints (the newest), or
    /// "latest" (this run's checkpoint folder). Any world size or ZeRO stage.
    #[arg(long, value_name = "DIR|latest")]
    resume: Option<std::path::PathBuf>,
    /// With --resume: if the newest checkpoint is damaged, continue from the newest intact one.
    #[arg(long, requires = "resume")]
    fallback: bool,
    /// Start afresh in an out_dir where an earlier run left checkpoints or metrics,
    /// deleting them (without it such a run is refused).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    // SIGTERM / SIGINT / SIGUSR1: checkpoint at the next step end, then exit 75.
    rpo_train::preemption::install()?;
    let launch = rpo_train::Launch {
        resume: args.resume.as_deref(),
        fallback: args.fallback,
        overwrite: args.overwrite,
    };
    on_every_rank(&cfg, |world| {
        if cfg.online.is_some() {
            let rounds = rpo_online::train_online(&cfg, world, args.resume.is_some())?;
            if world.rank() == 0 {
                println!("{}", serde_json::to_string_pretty(&rounds)?);
            }
            return Ok(());
        }
        let summary = rpo_train::train(&cfg, world, launch)?;
        if world.rank() == 0 {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Ok(())
    })
}

use anyhow::Result;

use super::{on_every_rank, ConfigArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Continue from a checkpoint: its folder, a folder of checkpoints (the newest), or
    /// "latest" (this run's <out_dir>/checkpoints). Any world size or ZeRO stage.
    #[arg(long, value_name = "DIR|latest")]
    resume: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    on_every_rank(&cfg, |world| {
        if cfg.online.is_some() {
            let rounds = rpo_online::train_online(&cfg, world, args.resume.is_some())?;
            if world.rank() == 0 {
                println!("{}", serde_json::to_string_pretty(&rounds)?);
            }
            return Ok(());
        }
        let summary = rpo_train::train(&cfg, world, args.resume.as_deref())?;
        if world.rank() == 0 {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Ok(())
    })
}

use anyhow::Result;
use rpo_comm::{Backend, Runtime};
use rpo_train::device::parse_device;

use super::ConfigArgs;

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
    let cuda = parse_device(&cfg.model.device)?.is_cuda();
    let backend = match cfg.distributed.backend.as_str() {
        "nccl" => Backend::Nccl,
        _ => Backend::Auto,
    };
    let runtime = Runtime::init(cuda, backend)?;
    let world = runtime.world();
    match rpo_train::train(&cfg, world, args.resume.as_deref()) {
        Ok(summary) => {
            if world.rank() == 0 {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(())
        }
        // One failing rank ends the job: the others would wait in their next collective.
        Err(e) if world.world_size() > 1 => {
            eprintln!(
                "error on rank {} of {}: {e:#}",
                world.rank(),
                world.world_size()
            );
            runtime.abort(1)
        }
        Err(e) => Err(e),
    }
}

//! `rpo-shard precompute-ref`: run the reference once over every sequence a training run
//! will ask it about (in parallel under mpirun), into the cache that
//! `reference.mode = "precomputed"` reads instead of loading a reference model.

use anyhow::Result;
use rpo_train::config::ReferenceMode;
use rpo_train::precompute_ref::precompute_reference;
use std::path::PathBuf;

use super::{on_every_rank, ConfigArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The training run's config and overrides (launch under the same mpirun -n as training).
    #[command(flatten)]
    config: ConfigArgs,
    /// Where to write the cache (default: reference.cache, else <out_dir>/reference_logps.bin).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How the reference runs meanwhile: "live" (a full copy per rank), "sharded" or "offload".
    #[arg(long, default_value = "live")]
    mode: ReferenceMode,
}

/// Rank 0 prints one JSON line: the file, its fingerprints, reused parts and timing.
pub fn run(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    let out = args.out.unwrap_or_else(|| cfg.reference_cache_path());
    on_every_rank(&cfg, |world| {
        if world.rank() == 0
            && (cfg.reference.mode != ReferenceMode::Precomputed
                || cfg.reference_cache_path() != out)
        {
            tracing::info!(
                "training reads this file only with `--set reference.mode=precomputed --set reference.cache={}`",
                out.display()
            );
        }
        let report = precompute_reference(&cfg, world, &out, args.mode)?;
        if world.rank() == 0 {
            println!("{}", serde_json::to_string(&report)?);
        }
        Ok(())
    })
}

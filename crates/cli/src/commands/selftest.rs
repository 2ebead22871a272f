//! `rpo-shard selftest`: proves the collectives and the contrast scopes on this launch
//! (run it under the same `mpirun` / `srun` line as training, before a long job).

use anyhow::{bail, Result};
use rpo_comm::selftest::{agree, check_collectives, Check};
use rpo_comm::{Backend, Runtime, Watchdog};
use tch::Kind;

#[derive(clap::Args)]
pub struct Args {
    /// "cpu" (MPI between ranks) or "cuda" (NCCL, one GPU per rank).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// "auto", or "nccl" to use NCCL even with one rank.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Examples per rank in the contrast checks.
    #[arg(long, default_value_t = 4)]
    per_rank: i64,
    /// Seconds any rank may wait in one collective before the job is aborted (0: forever).
    #[arg(long, default_value_t = 600.0)]
    collective_timeout_s: f64,
}

pub fn run(args: Args) -> Result<()> {
    let cuda = match args.device.as_str() {
        "cpu" => false,
        "cuda" => true,
        other => bail!("--device {other:?}: expected \"cpu\" or \"cuda\""),
    };
    let backend = match args.backend.as_str() {
        "auto" => Backend::Auto,
        "nccl" => Backend::Nccl,
        other => bail!("--backend {other:?}: expected \"auto\" or \"nccl\""),
    };
    let runtime = Runtime::init(
        cuda,
        backend,
        Watchdog::from_secs(args.collective_timeout_s),
    )?;
    let world = runtime.world();
    let kinds = [Kind::Float, Kind::Double, Kind::BFloat16, Kind::Int64];
    let mut checks = agree(world, check_collectives(world, &kinds)?)?;
    checks.extend(agree(
        world,
        rpo_contrast::selftest::check_contrast(world, args.per_rank)?,
    )?);
    let failed = checks.iter().filter(|c| !c.passed).count();
    if world.rank() == 0 {
        println!(
            "selftest: {} rank(s), backend {}, device {:?}",
            world.world_size(),
            world.backend(),
            world.device()
        );
        for Check {
            name,
            max_error,
            passed,
        } in &checks
        {
            let verdict = if *passed { "ok  " } else { "FAIL" };
            println!("{verdict} {name:<70} max error (sum over ranks) {max_error:.2e}");
        }
        println!("{} checks, {failed} failed", checks.len());
    }
    if failed > 0 {
        bail!("{failed} of {} selftest checks failed", checks.len());
    }
    Ok(())
}

//! The contrast computation alone (no model): loss and gradients of a paired, embedding-
//! weighted global contrast matrix with `--rows` rows over the ranks of this launch, in
//! the row-partitioned or replicated form. Run under mpirun by benches/contrast_scope.sh.
//! Prints one JSON line from rank 0: median seconds per call and the largest peak RSS of
//! any rank (each configuration runs in fresh processes, so the peak is its own).
//!
//!   mpirun -n 2 <bench binary> --rows 4096 --form row-partitioned [--dim 384] [--repeats 3]

use anyhow::{bail, Result};
use rpo_comm::{Backend, Collective, Runtime};
use rpo_contrast::{contrast, ContrastForm, ContrastInputs};
use rpo_losses::Weighting;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set of this process, bytes (Linux: VmHWM).
fn peak_rss() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib * 1024.0)
}

fn main() -> Result<()> {
    let runtime = Runtime::init(false, Backend::Auto, rpo_comm::Watchdog::default())?;
    let world = runtime.world();
    let rows: i64 = arg("--rows", 4096);
    let dim: i64 = arg("--dim", 384);
    let repeats: usize = arg("--repeats", 3);
    let form = match arg("--form", "row-partitioned".to_string()).as_str() {
        "row-partitioned" => ContrastForm::RowPartitioned,
        "replicated" => ContrastForm::Replicated,
        other => bail!("--form {other:?}"),
    };
    let w = world.world_size() as i64;
    if rows % w != 0 {
        bail!("--rows {rows} must divide over {w} ranks");
    }
    let b = rows / w;
    tch::manual_seed(world.rank() as i64);
    let opts = (Kind::Float, Device::Cpu);
    let (a, bl, emb) = (
        Tensor::randn([b], opts),
        Tensor::randn([b], opts),
        Tensor::randn([b, dim], opts),
    );
    let inputs = ContrastInputs {
        chosen: &a,
        rejected: &bl,
        win_emb: Some(&emb),
        lose_emb: Some(&emb),
        counts: None,
    };
    let weighting = Weighting::Embedding { tau: 0.5 };
    let mut times = Vec::with_capacity(repeats);
    let mut loss = 0.0;
    for _ in 0..repeats {
        world.barrier()?;
        let t = Instant::now();
        let g = contrast(world, &inputs, &weighting, 0.1, form)?;
        loss = rpo_comm::host::to_host_f64(&g.loss_share)?;
        world.barrier()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let peak = peak_of_ranks(world, peak_rss())?;
    if world.rank() == 0 {
        println!(
            "{}",
            serde_json::json!({
                "ranks": w, "rows": rows, "dim": dim, "form": format!("{form:?}"),
                "median_s": times[times.len() / 2], "peak_rss_bytes_max_rank": peak,
                "loss_share_rank0": loss, "traffic_bytes_rank0": world.traffic().total(),
            })
        );
    }
    Ok(())
}

fn peak_of_ranks(world: &dyn Collective, mine: f64) -> Result<f64> {
    let all = world.all_gather(&Tensor::from_slice(&[mine]))?;
    Ok(all.max().double_value(&[]))
}

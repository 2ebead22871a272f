//! ZeRO per-rank memory, step time and traffic, on the ranks of this launch.
//!
//! Builds a Llama of the given shape (random init), shards it at `--stage` over the
//! ranks, and runs `--steps` steps of a log-likelihood objective on random tokens
//! through the layer-wise executor and the sharded RMSprop. Rank 0 prints one JSON line
//! per rank: the state the formula expects, what the state tensors hold, the process's
//! resident memory before the model, after the first step and at its peak, the median
//! step time, and the bytes the ZeRO collectives moved in the last step. With
//! `--reference live|sharded|offload` a frozen reference (a copy of the initial policy)
//! also runs every step, and its bytes and forward time are reported apart.
//!
//!   mpirun -n 4 target/release/deps/zero_memory-* --stage 3 --layers 16 ...
//! (benches/zero_memory.sh runs the whole table.)

use anyhow::Result;
use rpo_comm::{Backend, Runtime};
use rpo_model::{preset, Llama};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_zero::{FrozenPlacement, Sequences, ShardedModel, ZeroOptions, ZeroStage};

/// The frozen reference of the run, if any.
enum Reference {
    Live(Llama, tch::nn::VarStore),
    Placed(ShardedModel),
}

impl Reference {
    fn bytes(&self) -> i64 {
        match self {
            Reference::Live(_, vs) => vs
                .variables()
                .values()
                .map(|t| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64)
                .sum(),
            Reference::Placed(m) => m.parameter_bytes(),
        }
    }

    fn logps(&self, seqs: &Sequences) -> Result<Tensor> {
        match self {
            Reference::Live(model, _) => Ok(tch::no_grad(|| {
                rpo_losses::sequence_logps_chunked(
                    &model.hidden_states(seqs.ids),
                    &|h| model.head(h),
                    seqs.labels,
                    seqs.mask,
                    4096,
                )
            })?),
            Reference::Placed(m) => Ok(m.logps(seqs)?),
        }
    }
}
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (resident, peak resident) bytes of this process, from /proc/self/status.
fn resident() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib * 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<()> {
    let runtime = Runtime::init(false, Backend::Auto, rpo_comm::Watchdog::default())?;
    let world = runtime.world();
    let stage = ZeroStage::try_from(arg::<u8>("--stage", 0)).map_err(anyhow::Error::msg)?;
    let steps: usize = arg("--steps", 3);
    let (batch, seq): (i64, i64) = (arg("--batch", 1), arg("--seq", 64));
    let mut config = preset("small")?;
    config.hidden_size = arg("--hidden", 1024);
    config.intermediate_size = arg("--intermediate", 2816);
    config.num_hidden_layers = arg("--layers", 16);
    config.num_attention_heads = arg("--heads", 16);
    config.num_key_value_heads = arg("--kv-heads", 16);
    config.vocab_size = arg("--vocab", 32000);
    config.tie_word_embeddings = false;
    let kind = match arg("--dtype", "fp32".to_string()).as_str() {
        "bf16" => Kind::BFloat16,
        _ => Kind::Float,
    };
    let options = ZeroOptions {
        checkpoint_activations: arg("--checkpointing", stage == ZeroStage::Zero3),
        overlap: arg("--overlap", true),
        ..ZeroOptions::new(stage, kind)
    };

    let (before, _) = resident();
    let (model, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 0)?;
    let policy = ShardedModel::new(model, vs, world, options)?;
    let reference_mode = arg("--reference", "none".to_string());
    let reference = match reference_mode.as_str() {
        "none" => None,
        "live" => {
            let (model, mut vs) = Llama::init(&config, Device::Cpu, Kind::Float, 0)?;
            vs.set_kind(kind);
            vs.freeze();
            Some(Reference::Live(model, vs))
        }
        "sharded" => Some(Reference::Placed(
            policy.frozen_copy(FrozenPlacement::Sharded)?,
        )),
        "offload" => Some(Reference::Placed(
            policy.frozen_copy(FrozenPlacement::Offloaded)?,
        )),
        other => anyhow::bail!("--reference {other}: none, live, sharded or offload"),
    };
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    let mut times = Vec::new();
    let mut reference_times = Vec::new();
    let (mut after_first, mut bytes) = (0.0, 0u64);
    for step in 0..steps {
        tch::manual_seed((world.rank() * 1000 + step) as i64);
        let ids = Tensor::randint(config.vocab_size, [batch, seq], (Kind::Int64, Device::Cpu));
        let labels = ids.roll([-1], [1]);
        let mask = Tensor::ones([batch, seq], (Kind::Int64, Device::Cpu));
        let started = Instant::now();
        let traffic = policy.traffic();
        let seqs = Sequences {
            ids: &ids,
            labels: &labels,
            mask: &mask,
            packed: None,
            targets: None,
        };
        let reference_logps = match &reference {
            Some(r) => {
                let t = Instant::now();
                let logps = r.logps(&seqs)?;
                reference_times.push(t.elapsed().as_secs_f64());
                logps
            }
            None => Tensor::zeros([batch], (Kind::Float, Device::Cpu)),
        };
        let pass = policy.forward(&seqs)?;
        let objective = -(&pass.logps - reference_logps).sum(Kind::Float) / (batch * seq) as f64;
        policy.backward(&objective, pass)?;
        policy.step(&mut optimizer, 1e-5, 1.0)?;
        times.push(started.elapsed().as_secs_f64());
        bytes = policy.traffic().since(&traffic).total();
        if step == 0 {
            after_first = resident().0;
        }
    }
    times.sort_by(f64::total_cmp);
    reference_times.sort_by(f64::total_cmp);
    let reference_s = reference_times
        .get(reference_times.len() / 2)
        .copied()
        .unwrap_or(0.0);
    let reference_bytes = reference.as_ref().map_or(0, Reference::bytes) as f64;
    let expected = policy.expected_state(&optimizer);
    let measured = policy.measured_state(&optimizer);
    let (_, peak) = resident();
    let mine = Tensor::from_slice(&[
        expected.total() as f64,
        measured.total() as f64,
        before,
        after_first,
        peak,
        times[times.len() / 2],
        bytes as f64,
        reference_bytes,
        reference_s,
    ]);
    let all = world.all_gather(&mine.view([1, -1]))?;
    if world.rank() == 0 {
        let mib = |x: f64| (x / 1048576.0 * 10.0).round() / 10.0;
        for r in 0..world.world_size() as i64 {
            let v = |i: i64| all.double_value(&[r, i]);
            println!(
                "{}",
                serde_json::json!({
                    "stage": stage as u8, "ranks": world.world_size(), "rank": r,
                    "params": policy.layout().numel(), "padded_params": policy.layout().padded(),
                    "dtype": if kind == Kind::Float { "fp32" } else { "bf16" },
                    "checkpointing": options.checkpoint_activations,
                    "expected_state_mib": mib(v(0)), "measured_state_mib": mib(v(1)),
                    "rss_before_model_mib": mib(v(2)), "rss_after_first_step_mib": mib(v(3)),
                    "peak_rss_mib": mib(v(4)), "median_step_s": v(5), "zero_bytes_per_step": v(6) as u64,
                    "reference": reference_mode, "reference_mib": mib(v(7)), "median_reference_s": v(8),
                })
            );
        }
    }
    Ok(())
}

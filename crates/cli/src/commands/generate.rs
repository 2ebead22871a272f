//! `rpo-shard generate`: responses to a run's held-out prompts from a model folder or a
//! training checkpoint, greedy (the paper's setting) or sampled, with a KV cache; data
//! parallel under mpirun (rank r answers the r-th contiguous part; sampling streams are
//! keyed by the prompt's index, so the file is the same at any rank count). Rank 0
//! writes JSONL lines `{prompt, response, reference, family?}` for `rpo-shard eval`.

use anyhow::{bail, Context, Result};
use rpo_comm::{all_gather_varlen, Backend, Collective, Runtime};
use rpo_model::{generate, load_hf, Decoding, Llama, LlamaConfig};
use rpo_train::data_source::RunData;
use rpo_zero::Checkpoint;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The run whose data (its held-out split) gives the prompts; its model settings are
    /// replaced by --model / --checkpoint.
    #[command(flatten)]
    config: ConfigArgs,
    /// A Hugging Face model folder (with its tokenizer.json)...
    #[arg(long, conflicts_with = "checkpoint")]
    model: Option<PathBuf>,
    /// ...or a training checkpoint (folder, or folder of checkpoints).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// At most this many prompts (the paper samples 256).
    #[arg(long, default_value_t = 256)]
    max_prompts: usize,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// 0: greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Serialize)]
struct Generation<'a> {
    prompt: &'a str,
    response: String,
    /// The data set's preferred response, what a judge compares against.
    reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'a str>,
}

/// The model of a checkpoint: its consolidated fp32 masters.
pub(super) fn from_checkpoint(path: &std::path::Path, device: Device) -> Result<(Llama, PathBuf)> {
    let checkpoint = Checkpoint::open(path)?;
    let config: LlamaConfig = serde_json::from_value(checkpoint.manifest.model_config.clone())?;
    let vs = VarStore::new(device);
    let model = Llama::new(&vs.root(), &config)?;
    let mut vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, t) in checkpoint.consolidated()? {
            vars.get_mut(&name)
                .with_context(|| {
                    format!(
                        "{} holds an unknown tensor {name}",
                        checkpoint.dir.display()
                    )
                })?
                .f_copy_(&t)?;
        }
        Ok(())
    })?;
    Ok((model, checkpoint.dir.join("tokenizer.json")))
}

pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.config.load()?;
    let runtime = Runtime::init(false, Backend::Auto)?;
    let world = runtime.world();
    let device = world.device();
    let (model, tokenizer) = match (&args.model, &args.checkpoint) {
        (Some(dir), None) => (load_hf(dir, device)?.0, dir.join("tokenizer.json")),
        (None, Some(path)) => from_checkpoint(path, device)?,
        _ => bail!("give --model DIR or --checkpoint DIR"),
    };
    if cfg.tokenizer.path.is_none() && tokenizer.exists() {
        cfg.tokenizer.path = Some(tokenizer.display().to_string());
    }
    let data = RunData::load(&cfg)?;
    // (prompt, preferred response, family): synthetic questions, else the held-out pairs.
    let items: Vec<(&str, &str, Option<&str>)> = if !data.judged.is_empty() {
        data.judged
            .iter()
            .map(|q| (q.prompt.as_str(), q.chosen.as_str(), Some(q.family.name())))
            .collect()
    } else {
        data.eval_pairs
            .iter()
            .map(|p| (p.prompt.as_str(), p.chosen.as_str(), None))
            .collect()
    };
    let items = &items[..items.len().min(args.max_prompts)];
    anyhow::ensure!(
        !items.is_empty(),
        "the run's data has no held-out prompts to answer"
    );

    let (rank, ranks) = (world.rank(), world.world_size());
    let per_rank = items.len().div_ceil(ranks);
    let mine = (rank * per_rank).min(items.len())..((rank + 1) * per_rank).min(items.len());
    let prompts = items[mine.clone()]
        .iter()
        .map(|(p, _, _)| data.tokenizer.encode_prompt_for_generation(p))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<u64> = mine.clone().map(|i| i as u64).collect();
    let decoding = if args.temperature == 0.0 {
        Decoding::Greedy
    } else {
        Decoding::Sample {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        }
    };
    let eos = data.tokenizer.special().eos;
    let outputs = generate(
        &model,
        &prompts,
        &ids,
        args.max_new_tokens,
        Some(eos),
        decoding,
    )?;
    let mut lines = String::new();
    for ((prompt, reference, family), tokens) in items[mine].iter().zip(outputs) {
        let tokens: Vec<i64> = tokens.into_iter().filter(|&t| t != eos).collect();
        let line = Generation {
            prompt,
            response: data.tokenizer.decode(&tokens)?,
            reference,
            family: *family,
        };
        lines.push_str(&serde_json::to_string(&line)?);
        lines.push('\n');
    }
    // Every rank's lines, in rank order (= prompt order), to rank 0.
    let bytes = Tensor::from_slice(lines.as_bytes()).to_kind(Kind::Uint8);
    let (all, _) = all_gather_varlen(world as &dyn Collective, &bytes.to_device(device))?;
    if rank == 0 {
        let all = Vec::<u8>::try_from(&all.to_device(Device::Cpu))?;
        let mut f = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        f.write_all(&all)?;
        tracing::info!(prompts = items.len(), ranks, out = %args.out.display(), "generated");
    }
    Ok(())
}

//! `rpo-shard sample`: k sampled responses per prompt from a model folder or checkpoint,
//! data-parallel under mpirun, optionally scored by a judge — the first half of on-policy
//! preference data (`rpo-shard prefs` is the second).
//!
//! Sample s of prompt i draws from the random stream `(seed, i << 16 | s)`, so the file is
//! the same at any rank count and a prompt's first samples do not depend on k.

use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rpo_comm::{all_gather_varlen, Backend, Collective, Runtime};
use rpo_model::{generate, load_hf, Decoding};
use rpo_train::data_source::RunData;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

use super::prompts_file::{read_prompts, run_prompts, PromptRecord};
use super::scorer_args::ScorerArgs;
use super::ConfigArgs;

/// Most samples per prompt: the sample number takes the low 16 bits of the stream id.
const MAX_K: usize = 1 << 16;

#[derive(clap::Args)]
pub struct Args {
    /// The run whose data gives the prompts (without --prompts) and whose tokenizer
    /// settings apply; its model settings are replaced by --model / --checkpoint.
    #[command(flatten)]
    config: ConfigArgs,
    /// A Hugging Face model folder (with its tokenizer.json)...
    #[arg(long, conflicts_with = "checkpoint")]
    model: Option<PathBuf>,
    /// ...or a training checkpoint (folder, or folder of checkpoints).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// JSONL prompts `{"prompt": …, …}`; other fields are carried to the output (and to
    /// the judge). Without it: the config's data, its training prompts (see --split).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Without --prompts: sample the run's `train` prompts or its held-out `eval` ones.
    #[arg(long, value_enum, default_value = "train")]
    split: Split,
    /// Samples per prompt.
    #[arg(long, short = 'k', default_value_t = 4)]
    k: usize,
    /// At most this many prompts (the first ones); all when absent.
    #[arg(long)]
    max_prompts: Option<usize>,
    /// [default: the config's eval.max_new_tokens]
    #[arg(long)]
    max_new_tokens: Option<usize>,
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// [default: the config's seed]
    #[arg(long)]
    seed: Option<u64>,
    /// Samples JSONL: `{prompt, response, prompt_index, sample, tokens, [score, label], …fields}`.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    scorer: ScorerArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    Train,
    Eval,
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees
/// half a file and a failed write leaves the previous one.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    ensure!((1..=MAX_K).contains(&args.k), "-k must be 1..={MAX_K}");
    ensure!(
        args.temperature > 0.0 && args.top_p > 0.0 && args.top_p <= 1.0,
        "sampling needs --temperature > 0 and 0 < --top-p ≤ 1"
    );
    let mut cfg = args.config.load()?;
    let seed = args.seed.unwrap_or(cfg.seed);
    let max_new_tokens = args.max_new_tokens.unwrap_or(cfg.eval.max_new_tokens);
    let runtime = Runtime::init(false, Backend::Auto)?;
    let world = runtime.world();
    let device = world.device();
    let (model, tokenizer) = match (&args.model, &args.checkpoint) {
        (Some(dir), None) => (load_hf(dir, device)?.0, dir.join("tokenizer.json")),
        (None, Some(path)) => super::generate::from_checkpoint(path, device)?,
        _ => bail!("give --model DIR or --checkpoint DIR"),
    };
    if cfg.tokenizer.path.is_none() && tokenizer.exists() {
        cfg.tokenizer.path = Some(tokenizer.display().to_string());
    }
    let data = RunData::load(&cfg)?;
    let mut prompts: Vec<PromptRecord> = match &args.prompts {
        Some(path) => read_prompts(path)?,
        None => run_prompts(&data, args.split == Split::Train),
    };
    ensure!(!prompts.is_empty(), "no prompts to sample");
    if let Some(n) = args.max_prompts {
        prompts.truncate(n);
    }
    // Build the scorer before the work, so a bad judge setting fails at once.
    let out_dir = args.out.parent().unwrap_or(Path::new(".")).to_path_buf();
    let scorer = args.scorer.build(seed, &out_dir)?;

    let (rank, ranks) = (world.rank(), world.world_size());
    let items: Vec<(usize, usize)> = (0..prompts.len())
        .flat_map(|i| (0..args.k).map(move |s| (i, s)))
        .collect();
    let per_rank = items.len().div_ceil(ranks);
    let mine = &items[(rank * per_rank).min(items.len())..((rank + 1) * per_rank).min(items.len())];
    if rank == 0 {
        tracing::info!(
            prompts = prompts.len(),
            k = args.k,
            samples = items.len(),
            ranks,
            max_new_tokens,
            temperature = args.temperature,
            top_p = args.top_p,
            seed,
            "sampling"
        );
    }
    let encoded = prompts
        .iter()
        .map(|p| data.tokenizer.encode_prompt_for_generation(&p.prompt))
        .collect::<Result<Vec<_>>>()?;
    let eos = data.tokenizer.special().eos;
    let decoding = Decoding::Sample {
        temperature: args.temperature,
        top_p: args.top_p,
        seed,
    };
    let bar = if rank == 0 && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(mine.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("sample {bar:40} {pos}/{len} {per_sec} eta {eta}")?);
    let start = Instant::now();
    let mut lines = String::new();
    // Chunks keep the progress bar moving; prompts of equal length batch within a chunk.
    for chunk in mine.chunks(64) {
        let batch: Vec<Vec<i64>> = chunk.iter().map(|&(i, _)| encoded[i].clone()).collect();
        let ids: Vec<u64> = chunk.iter().map(|&(i, s)| ((i as u64) << 16) | s as u64).collect();
        let outputs = generate(&model, &batch, &ids, max_new_tokens, Some(eos), decoding)?;
        for (&(i, s), tokens) in chunk.iter().zip(outputs) {
            let n_tokens = tokens.len();
            let text: Vec<i64> = tokens.into_iter().filter(|&t| t != eos).collect();
            let mut line = Map::new();
            line.insert("prompt".into(), Value::String(prompts[i].prompt.clone()));
            line.insert("response".into(), Value::String(data.tokenizer.decode(&text)?));
            line.insert("prompt_index".into(), i.into());
            line.insert("sample".into(), s.into());
            line.insert("tokens".into(), n_tokens.into());
            for (k, v) in &prompts[i].fields {
                line.entry(k.clone()).or_insert_with(|| v.clone());
            }
            lines.push_str(&serde_json::to_string(&line)?);
            lines.push('\n');
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // Every rank's lines, in rank order (= item order), to rank 0.
    let bytes = Tensor::from_slice(lines.as_bytes()).to_kind(Kind::Uint8);
    let (all, _) = all_gather_varlen(world as &dyn Collective, &bytes.to_device(device))?;
    let seconds = start.elapsed().as_secs_f64();
    if rank != 0 {
        return Ok(());
    }
    let text = String::from_utf8(Vec::<u8>::try_from(&all.to_device(Device::Cpu))?)?;
    let mut records: Vec<Map<String, Value>> = text
        .lines()
        .map(|l| serde_json::from_str(l).context("a gathered sample line"))
        .collect::<Result<_>>()?;
    let tokens: u64 = records.iter().map(|r| r["tokens"].as_u64().unwrap_or(0)).sum();
    tracing::info!(
        samples = records.len(),
        tokens,
        seconds = format!("{seconds:.1}"),
        tokens_per_s = format!("{:.0}", tokens as f64 / seconds.max(1e-9)),
        "sampled"
    );
    write_atomic(&args.out, &text)?;
    if let Some(scorer) = scorer {
        let samples = records
            .iter()
            .map(|r| serde_json::from_value(Value::Object(r.clone())))
            .collect::<serde_json::Result<Vec<rpo_judge::Sample>>>()?;
        let scores = scorer.score(&samples).with_context(|| {
            format!(
                "scoring with the {} judge failed; the unscored samples are kept in {} (score them with `rpo-shard prefs --samples {} --judge …`)",
                scorer.name(),
                args.out.display(),
                args.out.display()
            )
        })?;
        let mut scored = String::new();
        for (r, s) in records.iter_mut().zip(&scores) {
            r.insert("score".into(), s.score.into());
            r.insert("label".into(), s.label.into());
            scored.push_str(&serde_json::to_string(r)?);
            scored.push('\n');
        }
        write_atomic(&args.out, &scored)?;
        let desirable = scores.iter().filter(|s| s.label).count();
        tracing::info!(
            judge = scorer.name(),
            desirable,
            accuracy = format!("{:.3}", desirable as f64 / scores.len() as f64),
            "scored"
        );
    }
    tracing::info!(out = %args.out.display(), "wrote samples");
    Ok(())
}

//! One RPO training step of rpo-shard, timed: policy forward on chosen+rejected,
//! reference forward, embedding-weighted RPO loss, layer-wise backward, clipping,
//! RMSprop (ZeRO stage 0 on one process, `--checkpointing` to recompute activations).
//!
//! Writes the model (Hugging Face folder) and the batch it used into `--out`, so that
//! `benches/train_step_pytorch.py` can time the same step in PyTorch on the same data.
//! Run both through `benches/train_step_vs_pytorch.sh`.
//!
//! `--lengths fixed` (every sequence `--seq` tokens, half prompt) or `hh` (Anthropic-HH-like:
//! prompts 16–256 tokens, long-tailed; responses 8–128; chosen and rejected share the
//! prompt). `--share-prompt` and `--pack` pick rpo-shard's layout (crates/train/src/packing.rs);
//! the head runs at response positions only in every layout. `--preset 100m` is a ~100M
//! Llama (hidden 768, 8 layers, 12 heads / 4 kv heads, vocab 32000, untied).

use rpo_contrast::{ContrastForm, ContrastScope};
use rpo_data::{PairedBatch, SeqBatch, TokenizedSequence};
use rpo_model::{preset, save_hf, Llama};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_train::micro_batch::{self, Models};
use rpo_train::objective::Objective;
use rpo_train::parallel::DataParallel;
use rpo_train::prompt_embedding::PromptEmbedder;
use rpo_train::Result;
use rpo_zero::{ShardedModel, ZeroOptions, ZeroStage};
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

struct Fixed(Tensor);
impl PromptEmbedder for Fixed {
    fn embed(&self, _: &[String]) -> Result<Tensor> {
        Ok(self.0.shallow_clone())
    }
}

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Random ids in `3..vocab` (so never the pad id 0).
fn random_ids(n: usize, vocab: i64) -> Vec<i64> {
    Vec::<i64>::try_from(Tensor::randint_low(
        3,
        vocab,
        [n as i64],
        (Kind::Int64, Device::Cpu),
    ))
    .expect("i64 ids")
}

/// A long-tailed length: `exp(N(ln median, sigma))` clamped to `[lo, hi]`.
fn draw_len(median: f64, sigma: f64, lo: usize, hi: usize) -> usize {
    let z = Tensor::randn([1], (Kind::Double, Device::Cpu)).double_value(&[0]);
    ((median.ln() + sigma * z).exp().round() as usize).clamp(lo, hi)
}

/// `b` pairs: (prompt length, chosen length, rejected length) per pair.
fn pair_lengths(b: usize, lengths: &str, seq: usize) -> Vec<(usize, usize, usize)> {
    (0..b)
        .map(|_| match lengths {
            "hh" => (
                draw_len(64.0, 0.8, 16, 256),
                draw_len(40.0, 0.6, 8, 128),
                draw_len(40.0, 0.6, 8, 128),
            ),
            _ => (seq / 2, seq - seq / 2, seq - seq / 2),
        })
        .collect()
}

/// Chosen and rejected batches (one width) sharing each pair's prompt.
fn random_pairs(shape: &[(usize, usize, usize)], vocab: i64) -> Result<(SeqBatch, SeqBatch)> {
    let (mut chosen, mut rejected) = (Vec::new(), Vec::new());
    for &(p, c, r) in shape {
        let prompt = random_ids(p, vocab);
        let seq = |n: usize| TokenizedSequence {
            input_ids: prompt.iter().copied().chain(random_ids(n, vocab)).collect(),
            prompt_len: p,
            prompt_truncated: false,
        };
        chosen.push(seq(c));
        rejected.push(seq(r));
    }
    let width = shape
        .iter()
        .map(|&(p, c, r)| p + c.max(r))
        .max()
        .unwrap_or(0);
    let (chosen, rejected): (Vec<_>, Vec<_>) = (chosen.iter().collect(), rejected.iter().collect());
    Ok((
        SeqBatch::collate(&chosen, 0, width)?,
        SeqBatch::collate(&rejected, 0, width)?,
    ))
}

/// Forward FLOPs (multiply-adds × 2) of one model pass over `rows × width` positions with
/// the head at `scored` positions: the layers' matrix products per position, attention
/// scores and values over the whole row (dense kernels), the head per scored position.
fn forward_flops(c: &rpo_model::LlamaConfig, rows: i64, width: i64, scored: i64) -> f64 {
    let (h, i, hd) = (c.hidden_size, c.intermediate_size, c.head_dim());
    let proj = h * hd * (2 * c.num_attention_heads + 2 * c.num_key_value_heads) + 3 * h * i;
    let attention = 4 * width * hd * c.num_attention_heads;
    let per_layer = (2 * proj + attention) as f64 * (rows * width) as f64;
    per_layer * c.num_hidden_layers as f64 + 2.0 * (h * c.vocab_size) as f64 * scored as f64
}

fn main() -> Result<()> {
    let preset_name: String = arg("--preset", "small".to_string());
    let batch: usize = arg("--batch", 8);
    let seq: usize = arg("--seq", 128);
    let vocab: i64 = arg("--vocab", 8192);
    let steps: usize = arg("--steps", 10);
    let warmup: usize = arg("--warmup", 2);
    let threads: i32 = arg("--threads", 2);
    let out: PathBuf = arg("--out", PathBuf::from("target/bench-train-step"));
    tch::set_num_threads(threads);
    std::fs::create_dir_all(&out)?;

    let lengths: String = arg("--lengths", "fixed".to_string());
    let packing = rpo_train::packing::Packing {
        share_prompt: arg("--share-prompt", false),
        pack: arg("--pack", false),
        row_tokens: 0,
    };
    let mut config = if preset_name == "100m" {
        let mut c = preset("small")?;
        (c.hidden_size, c.intermediate_size, c.num_hidden_layers) = (768, 2048, 8);
        (c.num_attention_heads, c.num_key_value_heads) = (12, 4);
        c
    } else {
        preset(&preset_name)?
    };
    config.vocab_size = if preset_name == "100m" {
        arg("--vocab", 32000)
    } else {
        vocab
    };
    let vocab = config.vocab_size;
    let checkpointing: bool = arg("--checkpointing", false);
    let (policy, policy_vs) = Llama::init(&config, Device::Cpu, Kind::Float, 0)?;
    save_hf(&out.join("model"), &policy_vs, &config)?;
    let mut ref_vs = VarStore::new(Device::Cpu);
    let reference = Llama::new(&ref_vs.root(), &config)?;
    ref_vs.copy(&policy_vs)?;
    ref_vs.freeze();
    let reference = rpo_train::reference::Reference::Live(reference, ref_vs);
    let world = rpo_comm::SingleProcess::new(Device::Cpu);
    let options = ZeroOptions {
        stage: ZeroStage::Zero0,
        compute_kind: Kind::Float,
        checkpoint_activations: checkpointing,
        logits_chunk_tokens: 4096,
        reduce_kind: Kind::Float,
        overlap: false, // one process: nothing to overlap
    };
    let policy = ShardedModel::new(policy, policy_vs, &world, options)?;

    tch::manual_seed(1);
    let shape = pair_lengths(batch, &lengths, seq);
    let (chosen, rejected) = random_pairs(&shape, vocab)?;
    let pb = PairedBatch {
        chosen,
        rejected,
        prompts: vec![String::new(); batch],
        chosen_texts: vec![String::new(); batch],
        rejected_texts: vec![String::new(); batch],
    };
    let emb = Tensor::randn([batch as i64, 32], (Kind::Float, Device::Cpu));
    let emb = &emb / emb.norm_scalaropt_dim(2, [1], true);
    Tensor::write_safetensors(
        &[
            ("chosen_input_ids", &pb.chosen.input_ids),
            ("chosen_labels", &pb.chosen.labels),
            ("chosen_loss_mask", &pb.chosen.loss_mask),
            ("rejected_input_ids", &pb.rejected.input_ids),
            ("rejected_labels", &pb.rejected.labels),
            ("rejected_loss_mask", &pb.rejected.loss_mask),
            ("embeddings", &emb),
        ],
        out.join("batch.safetensors"),
    )?;

    let embedder = Fixed(emb);
    let parallel = DataParallel::new(&world, ContrastScope::Global, ContrastForm::default())?;
    let models = Models {
        policy: &policy,
        reference: Some(&reference),
        embedder: &embedder,
        beta: 0.1,
        parallel: &parallel,
        packing,
        pad: 0,
    };
    let objective = Objective::Rpo {
        weighting: rpo_losses::Weighting::Embedding { tau: 0.5 },
        unpaired: false,
    };
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    let mut times = Vec::new();
    let mut update_times = Vec::new();
    let mut first_loss = f64::NAN;
    let mut tokens_computed = 0;
    for step in 0..warmup + steps {
        let t0 = Instant::now();
        let out = micro_batch::paired(&objective, &models, &pb, None)?;
        policy.backward(&out.scaled_objective(1), out.policy)?;
        let t_update = Instant::now();
        policy.step(&mut optimizer, 1e-5, 10.0)?;
        if step == 0 {
            first_loss = rpo_comm::host::to_host_f64(&out.stats.loss())?;
            tokens_computed = out.stats.tokens_computed;
        }
        if step >= warmup {
            times.push(t0.elapsed().as_secs_f64());
            update_times.push(t_update.elapsed().as_secs_f64());
        }
    }
    // Where the time goes: the policy forward alone (no grad) and forward + backward.
    let ids = Tensor::cat(&[&pb.chosen.input_ids, &pb.rejected.input_ids], 0);
    let mut forward = vec![f64::NAN];
    let mut fwd_bwd = vec![f64::NAN];
    let breakdown: bool = arg("--breakdown", true);
    for _ in 0..if breakdown { steps } else { 0 } {
        let t0 = Instant::now();
        let _ = tch::no_grad(|| policy.model().forward(&ids));
        forward.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        policy.model().forward(&ids).mean(Kind::Float).backward();
        fwd_bwd.push(t0.elapsed().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (forward, fwd_bwd, update) = (median(forward), median(fwd_bwd), median(update_times));
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let tokens = pb.num_tokens();
    let scored = pb.chosen.num_response_tokens + pb.rejected.num_response_tokens;
    let (rows, width) = (ids.size()[0], ids.size()[1]);
    // Policy forward + backward (≈ 2 × forward) and the reference forward: 4 forwards.
    // rpo-shard: its layout's positions (rows as wide as computed), head at response
    // positions; PyTorch: the padded [2B, T] rows, head everywhere.
    let packed_width = if packing.is_padded() {
        width
    } else {
        shape
            .iter()
            .map(|&(p, c, r)| (p + c + r) as i64)
            .max()
            .unwrap_or(width)
    };
    let flops = 4.0
        * forward_flops(
            &config,
            tokens_computed as i64 / packed_width.max(1),
            packed_width,
            scored as i64,
        );
    let flops_padded = 4.0 * forward_flops(&config, rows, width, rows * width);
    let n_params = policy.layout().numel();
    println!(
        "{}",
        serde_json::json!({
            "impl": "rpo-shard", "preset": preset_name, "params": n_params, "batch_pairs": batch, "seq": seq,
            "threads": threads, "steps": steps, "activation_checkpointing": checkpointing, "median_step_s": median, "tokens_per_s": tokens as f64 / median,
            "first_loss": first_loss, "forward_s": forward, "forward_backward_s": fwd_bwd, "clip_and_update_s": update,
            "lengths": lengths, "share_prompt": packing.share_prompt, "pack": packing.pack, "tokens": tokens,
            "tokens_computed": tokens_computed, "padded_tokens": rows * width, "flops_step": flops, "flops_step_padded_full_head": flops_padded,
        })
    );
    Ok(())
}

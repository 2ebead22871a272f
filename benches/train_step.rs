//! One RPO training step of rpo-shard, timed: policy forward on chosen+rejected,
//! reference forward, embedding-weighted RPO loss, layer-wise backward, clipping,
//! RMSprop (ZeRO stage 0 on one process, `--checkpointing` to recompute activations).
//!
//! Writes the model (Hugging Face folder) and the batch it used into `--out`, so that
//! `benches/train_step_pytorch.py` can time the same step in PyTorch on the same data.
//! Run both through `benches/train_step_vs_pytorch.sh`.

use anyhow::Result;
use rpo_contrast::{ContrastForm, ContrastScope};
use rpo_data::{PairedBatch, SeqBatch, TokenizedSequence};
use rpo_model::{preset, save_hf, Llama};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_train::micro_batch::{self, Models};
use rpo_train::objective::Objective;
use rpo_train::parallel::DataParallel;
use rpo_train::prompt_embedding::PromptEmbedder;
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

fn random_batch(b: usize, t: usize, vocab: i64, pad: i64) -> Result<SeqBatch> {
    let ids = Tensor::randint_low(3, vocab, [b as i64, t as i64], (Kind::Int64, Device::Cpu));
    let seqs: Vec<TokenizedSequence> = (0..b)
        .map(|i| TokenizedSequence {
            input_ids: Vec::<i64>::try_from(ids.get(i as i64)).expect("i64 row"),
            prompt_len: t / 2,
            prompt_truncated: false,
        })
        .collect();
    let refs: Vec<&TokenizedSequence> = seqs.iter().collect();
    SeqBatch::collate(&refs, pad, 0)
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

    let mut config = preset(&preset_name)?;
    config.vocab_size = vocab;
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
    };
    let policy = ShardedModel::new(policy, policy_vs, &world, options)?;

    tch::manual_seed(1);
    let pb = PairedBatch {
        chosen: random_batch(batch, seq, vocab, 0)?,
        rejected: random_batch(batch, seq, vocab, 0)?,
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
    };
    let objective = Objective::Rpo {
        weighting: rpo_losses::Weighting::Embedding { tau: 0.5 },
        unpaired: false,
    };
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    let mut times = Vec::new();
    let mut update_times = Vec::new();
    let mut first_loss = f64::NAN;
    for step in 0..warmup + steps {
        let t0 = Instant::now();
        let out = micro_batch::paired(&objective, &models, &pb)?;
        policy.backward(&out.objective, out.policy)?;
        let t_update = Instant::now();
        policy.step(&mut optimizer, 1e-5, 10.0)?;
        if step == 0 {
            first_loss = out.loss;
        }
        if step >= warmup {
            times.push(t0.elapsed().as_secs_f64());
            update_times.push(t_update.elapsed().as_secs_f64());
        }
    }
    // Where the time goes: the policy forward alone (no grad) and forward + backward.
    let ids = Tensor::cat(&[&pb.chosen.input_ids, &pb.rejected.input_ids], 0);
    let mut forward = Vec::new();
    let mut fwd_bwd = Vec::new();
    for _ in 0..steps {
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
    let tokens = 2 * batch * seq;
    let n_params = policy.layout().numel();
    println!(
        "{}",
        serde_json::json!({
            "impl": "rpo-shard", "preset": preset_name, "params": n_params, "batch_pairs": batch, "seq": seq,
            "threads": threads, "steps": steps, "activation_checkpointing": checkpointing, "median_step_s": median, "tokens_per_s": tokens as f64 / median,
            "first_loss": first_loss, "forward_s": forward, "forward_backward_s": fwd_bwd, "clip_and_update_s": update,
        })
    );
    Ok(())
}

//! Shared prompts and packed rows against the padded `[2B, T]` forward (the reference
//! code's layout): the same log-probs and the same gradients, for every ZeRO stage,
//! with and without activation checkpointing, for the policy and for every reference
//! placement. Training equivalence over steps (and W ranks = 1 process) is in
//! crates/cli/tests/distributed.rs.

use rpo_comm::SingleProcess;
use rpo_data::{PairedBatch, SeqBatch, TokenizedSequence};
use rpo_model::{preset, Llama, LlamaConfig};
use rpo_train::choices::ReferenceMode;
use rpo_train::micro_batch::{frozen_logps, DeviceSeqs};
use rpo_train::packing::Packing;
use rpo_train::reference::Reference;
use rpo_zero::{ShardedModel, ZeroOptions, ZeroStage};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

const PAD: i64 = 0;

/// Models are initialised from torch's process-global RNG, which a concurrent test's
/// `Llama::new` (inside `Reference::copy_of`) would advance mid-initialisation: the tests
/// of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn config(tied: bool, window: Option<i64>) -> LlamaConfig {
    let mut c = preset("tiny").unwrap();
    c.vocab_size = 97;
    c.tie_word_embeddings = tied;
    c.sliding_window = window;
    if window.is_some() {
        c.model_type = "mistral".into();
    }
    c
}

fn seq(prompt: &[i64], response: &[i64]) -> TokenizedSequence {
    TokenizedSequence {
        input_ids: prompt.iter().chain(response).copied().collect(),
        prompt_len: prompt.len(),
        prompt_truncated: false,
    }
}

/// Deterministic tokens 1..96 (0 is padding).
fn tokens(n: usize, salt: i64) -> Vec<i64> {
    (0..n as i64)
        .map(|i| (i * 37 + salt * 11) % 96 + 1)
        .collect()
}

/// Five pairs of varied lengths; the last pair's prompts differ (as when truncation
/// cuts them differently), so it cannot share.
fn batch() -> PairedBatch {
    let shapes = [(3, 4, 6), (9, 2, 5), (1, 7, 3), (6, 5, 1), (4, 3, 3)];
    let mut chosen = Vec::new();
    let mut rejected = Vec::new();
    for (i, &(p, c, r)) in shapes.iter().enumerate() {
        let prompt = tokens(p, i as i64);
        chosen.push(seq(&prompt, &tokens(c, 50 + i as i64)));
        let reject_prompt = if i == 4 { tokens(p + 1, 90) } else { prompt };
        rejected.push(seq(&reject_prompt, &tokens(r, 70 + i as i64)));
    }
    let width = chosen
        .iter()
        .chain(&rejected)
        .map(|s| s.len())
        .max()
        .unwrap();
    let n = shapes.len();
    PairedBatch {
        chosen: SeqBatch::collate(&refs(&chosen), PAD, width).unwrap(),
        rejected: SeqBatch::collate(&refs(&rejected), PAD, width).unwrap(),
        prompts: vec![String::new(); n],
        chosen_texts: vec![String::new(); n],
        rejected_texts: vec![String::new(); n],
    }
}

fn refs(v: &[TokenizedSequence]) -> Vec<&TokenizedSequence> {
    v.iter().collect()
}

fn layouts() -> Vec<(&'static str, Packing)> {
    let p = |share_prompt, pack, row_tokens| Packing {
        share_prompt,
        pack,
        row_tokens,
    };
    vec![
        ("shared prompt", p(true, false, 0)),
        ("packed", p(false, true, 0)),
        ("shared prompt, packed", p(true, true, 0)),
        (
            "shared prompt, packed into 40-token rows",
            p(true, true, 40),
        ),
    ]
}

fn close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1e-6);
    assert!(
        diff <= tol * scale,
        "{what}: max difference {diff:e} (scale {scale:e})"
    );
}

fn sharded(tied: bool, window: Option<i64>, stage: ZeroStage, checkpoint: bool) -> ShardedModel {
    let (model, vs) = Llama::init(&config(tied, window), Device::Cpu, Kind::Float, 5).unwrap();
    let options = ZeroOptions {
        stage,
        compute_kind: Kind::Float,
        checkpoint_activations: checkpoint,
        logits_chunk_tokens: 7,
        reduce_kind: Kind::Float,
        overlap: true,
    };
    ShardedModel::new(model, vs, &SingleProcess::new(Device::Cpu), options).unwrap()
}

/// Log-probs and gradients of `Σ w·logps` through the layer-wise executor.
fn policy_pass(model: &ShardedModel, seqs: &DeviceSeqs) -> (Tensor, HashMap<String, Tensor>) {
    let pass = model.forward(&seqs.sequences()).unwrap();
    let logps = pass.logps.detach().copy();
    let n = logps.size()[0];
    let weights = Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.37 - 1.1;
    let objective = (&pass.logps * weights).sum(Kind::Float);
    model.backward(&objective, pass).unwrap();
    (logps, model.local_gradients().into_iter().collect())
}

#[test]
fn shared_and_packed_layouts_give_the_padded_log_probs_and_gradients() {
    let _serial = serial();
    let b = batch();
    let padded = DeviceSeqs::paired(&b, Device::Cpu, Packing::PADDED, PAD).unwrap();
    for (stage, tied, checkpoint, window) in [
        (ZeroStage::Zero0, true, false, None),
        (ZeroStage::Zero1, false, true, None),
        (ZeroStage::Zero2, true, false, Some(5)),
        (ZeroStage::Zero3, false, true, None),
    ] {
        let (want_logps, want_grads) =
            policy_pass(&sharded(tied, window, stage, checkpoint), &padded);
        for (name, packing) in layouts() {
            let what = format!(
                "{name}, stage {stage}, tied {tied}, window {window:?}, checkpointing {checkpoint}"
            );
            let seqs = DeviceSeqs::paired(&b, Device::Cpu, packing, PAD).unwrap();
            assert!(
                seqs.tokens_computed() < padded.tokens_computed(),
                "{what}: {} positions computed, padded {}",
                seqs.tokens_computed(),
                padded.tokens_computed()
            );
            let model = sharded(tied, window, stage, checkpoint);
            close(
                &format!("{what}: no-grad log-probs"),
                &model.logps(&seqs.sequences()).unwrap(),
                &want_logps,
                1e-5,
            );
            let (logps, grads) = policy_pass(&model, &seqs);
            close(&format!("{what}: log-probs"), &logps, &want_logps, 1e-5);
            assert_eq!(grads.len(), want_grads.len());
            for (param, g) in &grads {
                close(
                    &format!("{what}: gradient of {param}"),
                    g,
                    &want_grads[param],
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn every_reference_placement_gives_the_padded_log_probs_with_shared_prompts() {
    let _serial = serial();
    let b = batch();
    let padded = DeviceSeqs::paired(&b, Device::Cpu, Packing::PADDED, PAD).unwrap();
    let policy = sharded(true, None, ZeroStage::Zero0, false);
    let want = policy.logps(&padded.sequences()).unwrap();
    for mode in [
        ReferenceMode::Live,
        ReferenceMode::Sharded,
        ReferenceMode::Offload,
    ] {
        let reference = Reference::copy_of(&policy, mode).unwrap();
        for (name, packing) in layouts() {
            let seqs = DeviceSeqs::paired(&b, Device::Cpu, packing, PAD).unwrap();
            close(
                &format!("{mode} reference, {name}"),
                &reference.logps(&seqs, 7).unwrap(),
                &want,
                1e-5,
            );
        }
    }
    // The live reference's own function on a plain model, padded, is the same too.
    if let Reference::Live(model, _) = Reference::copy_of(&policy, ReferenceMode::Live).unwrap() {
        close(
            "frozen_logps, padded",
            &frozen_logps(&model, &padded, 3).unwrap(),
            &want,
            1e-6,
        );
    }
}

#[test]
fn response_only_logits_equal_full_logits() {
    let _serial = serial();
    // The padded path now scores only response positions; the full `[B, T, V]` logits
    // of Llama::forward with sequence_logps are the previous computation.
    let b = batch();
    let padded = DeviceSeqs::paired(&b, Device::Cpu, Packing::PADDED, PAD).unwrap();
    let (model, _vs) = Llama::init(&config(false, None), Device::Cpu, Kind::Float, 5).unwrap();
    let ids = Tensor::cat(&[&b.chosen.input_ids, &b.rejected.input_ids], 0);
    let labels = Tensor::cat(&[&b.chosen.labels, &b.rejected.labels], 0);
    let mask = Tensor::cat(&[&b.chosen.loss_mask, &b.rejected.loss_mask], 0);
    let full =
        tch::no_grad(|| rpo_losses::sequence_logps(&model.forward(&ids), &labels, &mask).unwrap());
    for chunk in [1, 5, 1 << 20] {
        close(
            &format!("chunk {chunk}"),
            &frozen_logps(&model, &padded, chunk).unwrap(),
            &full,
            1e-6,
        );
    }
}

//! One process: the layer-wise forward and (recomputed) backward of every stage give the
//! log-probs and gradients of plain autograd through `Llama::forward`, and a step gives
//! the unsharded optimizer's parameters. The multi-rank equivalence runs under mpirun in
//! crates/cli/tests/distributed.rs.

use rpo_comm::SingleProcess;
use rpo_model::{preset, Llama, LlamaConfig};
use rpo_optim::{clip_grad_norm, Optimizer, RmsProp, RmsPropConfig};
use rpo_zero::{Sequences, ShardedModel, ZeroOptions, ZeroStage};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

fn config(tied: bool) -> LlamaConfig {
    let mut c = preset("tiny").unwrap();
    c.vocab_size = 97;
    c.tie_word_embeddings = tied;
    c
}

struct Batch {
    ids: Tensor,
    labels: Tensor,
    mask: Tensor,
    weights: Tensor,
}

fn batch() -> Batch {
    // Not from torch's global RNG: the other test initialises models concurrently.
    let ids = (Tensor::arange(33, (Kind::Int64, Device::Cpu)) * 37 + 11)
        .remainder(97)
        .view([3, 11]);
    let labels = ids.roll([-1], [1]);
    let mask = Tensor::ones([3, 11], (Kind::Int64, Device::Cpu));
    let _ = mask.narrow(1, 0, 4).fill_(0);
    let _ = mask.narrow(1, 10, 1).fill_(0);
    let weights = Tensor::from_slice(&[0.5f32, -1.25, 2.0]);
    Batch {
        ids,
        labels,
        mask,
        weights,
    }
}

/// Plain autograd: (log-probs, gradients by name, final parameters after one RMSprop step).
fn plain(tied: bool, b: &Batch) -> (Tensor, HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let (model, vs) = Llama::init(&config(tied), Device::Cpu, Kind::Float, 3).unwrap();
    let logits = model.forward(&b.ids);
    let logps = rpo_losses::sequence_logps(&logits, &b.labels, &b.mask).unwrap();
    (&logps * &b.weights).sum(Kind::Float).backward();
    let named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let grads: HashMap<String, Tensor> = named
        .iter()
        .map(|(n, t)| (n.clone(), t.grad().copy()))
        .collect();
    let mut params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut g: Vec<Tensor> = named.iter().map(|(_, t)| t.grad().copy()).collect();
    clip_grad_norm(&mut g, 0.5);
    rmsprop().step(&mut params, &g, 1e-3).unwrap();
    let after = named
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().copy()))
        .collect();
    (logps.detach(), grads, after)
}

fn rmsprop() -> RmsProp {
    RmsProp::new(RmsPropConfig {
        eps: 1e-3,
        ..RmsPropConfig::default()
    })
}

fn close(what: &str, a: &Tensor, b: &Tensor, tol: f64) {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1e-6);
    assert!(
        diff <= tol * scale,
        "{what}: max difference {diff:e} (scale {scale:e})"
    );
}

/// Both ways: with `overlap` (collectives started ahead and awaited later) and without.
fn check(stage: ZeroStage, tied: bool, checkpoint: bool, chunk: i64) {
    for overlap in [false, true] {
        check_one(stage, tied, checkpoint, chunk, overlap);
    }
}

fn check_one(stage: ZeroStage, tied: bool, checkpoint: bool, chunk: i64, overlap: bool) {
    let b = batch();
    let (logps, grads, after) = plain(tied, &b);
    let (model, vs) = Llama::init(&config(tied), Device::Cpu, Kind::Float, 3).unwrap();
    let options = ZeroOptions {
        checkpoint_activations: checkpoint,
        logits_chunk_tokens: chunk,
        overlap,
        ..ZeroOptions::new(stage, Kind::Float)
    };
    let sm = ShardedModel::new(model, vs, &SingleProcess::new(Device::Cpu), options).unwrap();
    let seqs = Sequences {
        ids: &b.ids,
        labels: &b.labels,
        mask: &b.mask,
        packed: None,
        targets: None,
    };
    let what = format!(
        "stage {stage}, tied {tied}, checkpointing {checkpoint}, chunk {chunk}, overlap {overlap}"
    );
    close(
        &format!("{what}: no-grad log-probs"),
        &sm.logps(&seqs).unwrap(),
        &logps,
        1e-6,
    );
    let pass = sm.forward(&seqs).unwrap();
    close(
        &format!("{what}: log-probs"),
        &pass.logps.detach(),
        &logps,
        1e-6,
    );
    let objective = (&pass.logps * &b.weights).sum(Kind::Float);
    sm.backward(&objective, pass).unwrap();
    let got = sm.local_gradients();
    assert_eq!(got.len(), grads.len());
    for (name, g) in &got {
        close(
            &format!("{what}: gradient of {name}"),
            g,
            &grads[name],
            1e-5,
        );
    }
    let mut optimizer = rmsprop();
    sm.step(&mut optimizer, 1e-3, 0.5).unwrap();
    for (name, p) in sm.full_master().unwrap() {
        close(
            &format!("{what}: {name} after a step"),
            &p,
            &after[&name],
            1e-5,
        );
    }
    assert!(
        sm.measured_state(&optimizer) == sm.expected_state(&optimizer),
        "{what}: memory"
    );
}

#[test]
fn every_stage_matches_plain_autograd() {
    for stage in [
        ZeroStage::Zero0,
        ZeroStage::Zero1,
        ZeroStage::Zero2,
        ZeroStage::Zero3,
    ] {
        for tied in [true, false] {
            check(stage, tied, true, 8);
        }
    }
}

#[test]
fn kept_graphs_and_whole_logits_give_the_same() {
    for stage in [ZeroStage::Zero0, ZeroStage::Zero2] {
        check(stage, true, false, 1 << 20);
        check(stage, false, false, 1);
    }
}

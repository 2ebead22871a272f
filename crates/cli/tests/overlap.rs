//! `[zero] overlap` on 2 ranks under mpirun: training with the stage 2–3 reduce-scatters
//! and stage 3's next-unit all-gathers running as MPI immediate collectives in flight
//! equals, bit for bit, the plain path where each blocks where it is issued: the loss and
//! gradient norm of every step, the bytes moved, and the saved parameters. Gradient
//! accumulation 2 (two backwards per step, each reduce-scatter per micro-batch), the tied
//! `tiny` preset and the untied `small` one, a sharded reference (its forward gathers one
//! unit ahead too), and bf16 compute with fp32 gradient sums. Which collectives are
//! started ahead is checked in one process by crates/zero/tests/overlap.rs.

mod common;

use common::*;
use std::path::Path;

/// 2 ranks × 2 examples × 2 micro-batches per step, RPO from the first step.
fn run(
    out: &Path,
    extra: &[&str],
    overlap: bool,
) -> (Vec<serde_json::Value>, Vec<(String, tch::Tensor)>) {
    let sets = [
        format!("out_dir={}", out.display()),
        "train.micro_batch_size=2".into(),
        "train.global_batch_size=8".into(),
        "train.sft_warmup_steps=0".into(),
        "train.steps=3".into(),
        "data.synthetic_train=64".into(),
        "eval.max_examples=0".into(),
        "embedding.model=bag-of-words".into(),
        "optim.lr=1e-3".into(),
        "optim.warmup_steps=0".into(),
        "checkpoint.at_end=false".into(),
        format!("zero.overlap={overlap}"),
    ];
    let a = train_args(sets, extra);
    let o = mpirun(2, &strs(&a));
    assert!(
        o.status.success(),
        "{extra:?}, overlap {overlap}: {}",
        stderr(&o)
    );
    (metrics(out), weights(out))
}

fn same_with_and_without_overlap(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (m_plain, w_plain) = run(&dir.path().join("plain"), extra, false);
    let (m_over, w_over) = run(&dir.path().join("overlap"), extra, true);
    assert_eq!(m_plain.len(), 3, "{extra:?}: steps");
    assert_eq!(m_plain.len(), m_over.len(), "{extra:?}: steps");
    for (p, o) in m_plain.iter().zip(&m_over) {
        for key in ["loss", "grad_norm", "zero_bytes"] {
            assert_eq!(p[key], o[key], "{extra:?}: step {}: {key}", p["step"]);
        }
        assert!(o["zero_wait_s"].as_f64().is_some(), "zero_wait_s reported");
    }
    assert_eq!(w_plain.len(), w_over.len());
    for ((n, x), (m, y)) in w_plain.iter().zip(&w_over) {
        assert_eq!(n, m);
        assert!(
            x.equal(y),
            "{extra:?}: {n} differs by {}",
            (x - y).abs().max().double_value(&[])
        );
    }
    // The runs trained: the parameters moved from the initial ones in both.
    assert!(m_plain
        .iter()
        .any(|m| m["grad_norm"].as_f64().unwrap() > 0.0));
}

#[test]
fn stage2_overlap_equals_blocking_tied_embedding() {
    same_with_and_without_overlap(&["zero.stage=2"]);
}

#[test]
fn stage3_overlap_equals_blocking_tied_embedding_sharded_reference() {
    same_with_and_without_overlap(&["zero.stage=3", "reference.mode=sharded"]);
}

#[test]
fn stage2_and_3_overlap_equal_blocking_untied() {
    same_with_and_without_overlap(&["zero.stage=2", "model.preset=small"]);
    same_with_and_without_overlap(&["zero.stage=3", "model.preset=small"]);
}

#[test]
fn stage3_overlap_equals_blocking_bf16_compute() {
    same_with_and_without_overlap(&["zero.stage=3", "model.dtype=bf16", "zero.reduce_dtype=fp32"]);
}

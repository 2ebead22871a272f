//! What callers act on: `ZeroError`'s variant (what failed, on which rank, for what cause),
//! and the message the binary prints (anyhow's `{:#}`), which is the one it printed
//! before the error was typed.

use rpo_comm::SingleProcess;
use rpo_model::{preset, Llama, LlamaConfig};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_zero::checkpoint::CheckpointError;
use rpo_zero::{ShardedModel, ZeroError, ZeroOptions, ZeroStage};
use tch::{Device, Kind};

fn config(layers: i64) -> LlamaConfig {
    let mut c = preset("tiny").unwrap();
    c.vocab_size = 97;
    c.num_hidden_layers = layers;
    c
}

fn sharded(layers: i64) -> ShardedModel {
    let (model, vs) = Llama::init(&config(layers), Device::Cpu, Kind::Float, 3).unwrap();
    let options = ZeroOptions::new(ZeroStage::Zero1, Kind::Float);
    ShardedModel::new(model, vs, &SingleProcess::new(Device::Cpu), options).unwrap()
}

/// As the binary prints errors.
fn printed(err: ZeroError) -> String {
    format!("{:#}", anyhow::Error::from(err))
}

#[test]
fn a_failed_checkpoint_names_the_step_the_rank_and_the_cause() {
    let sm = sharded(1);
    let optimizer = RmsProp::new(RmsPropConfig::default());
    let dir = tempfile::tempdir().unwrap();

    // The trainer's files fail: its own error, whole, under the step that failed.
    let root = dir.path().join("ckpt");
    let err = sm
        .save_checkpoint(
            &root,
            1,
            &optimizer,
            serde_json::json!({}),
            &|_| Err(anyhow::anyhow!("disk full").context("cannot write the tokenizer")),
            1,
        )
        .unwrap_err();
    let ZeroError::OnRank { what, rank, source } = &err else {
        panic!("not OnRank: {err:#}");
    };
    assert_eq!(
        (what.as_str(), *rank),
        ("writing checkpoint step-00000001", 0)
    );
    assert!(matches!(**source, ZeroError::Caller(_)), "{source:#}");
    assert_eq!(
        printed(err),
        "writing checkpoint step-00000001 on rank 0: cannot write the tokenizer: disk full"
    );

    // A root that is a file: the folder cannot be created, and the path is named.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = sm
        .save_checkpoint(
            &file,
            2,
            &optimizer,
            serde_json::json!({}),
            &|_| Ok::<_, ZeroError>(()),
            1,
        )
        .unwrap_err();
    let ZeroError::OnRank { what, source, .. } = &err else {
        panic!("not OnRank: {err:#}");
    };
    assert_eq!(what, "preparing checkpoint step-00000002");
    assert!(
        matches!(&**source, ZeroError::Io { action: "cannot create", path, .. } if path == &file),
        "{source:#}"
    );
    let message = printed(err);
    assert!(
        message.starts_with(&format!(
            "preparing checkpoint step-00000002 on rank 0: cannot create {}: ",
            file.display()
        )),
        "{message}"
    );
}

#[test]
fn a_checkpoint_of_another_model_is_a_checkpoint_error() {
    let dir = tempfile::tempdir().unwrap();
    let optimizer = RmsProp::new(RmsPropConfig::default());
    let saved = sharded(1)
        .save_checkpoint(
            dir.path(),
            1,
            &optimizer,
            serde_json::json!({}),
            &|_| Ok::<_, ZeroError>(()),
            1,
        )
        .unwrap();
    let checkpoint = rpo_zero::Checkpoint::open(&saved).unwrap();
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    let err = sharded(2)
        .load_checkpoint(&checkpoint, &mut optimizer)
        .unwrap_err();
    assert!(
        matches!(&err, ZeroError::Checkpoint(CheckpointError::ModelMismatch { dir, .. }) if dir == &saved),
        "{err:#}"
    );
    assert!(printed(err).contains("was written for another model"));
}

#[test]
fn a_non_finite_norm_refuses_the_step() {
    let sm = sharded(1);
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    let reduced = sm.reduce_grads().unwrap();
    let err = sm
        .apply_update(reduced, f64::NAN, &mut optimizer, 1e-3, 1.0)
        .unwrap_err();
    assert!(
        matches!(err, ZeroError::NonFiniteNorm { norm } if norm.is_nan()),
        "{err}"
    );
    assert_eq!(printed(err), "gradient norm is NaN");
}

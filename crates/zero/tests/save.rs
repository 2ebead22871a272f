//! Saving without a full copy: the unit-by-unit Hugging Face writer of the policy
//! (`ShardedModel::save_hf`) and of a checkpoint (`Checkpoint::save_hf`, what `convert`
//! runs) write byte for byte what the whole-model path wrote before
//! (`save_hf_tensors(full_master())`, `save_hf_sharded(consolidated())`), in every
//! stage. The multi-rank saves are checked against one process in
//! crates/cli/tests/distributed.rs.

use rpo_comm::SingleProcess;
use rpo_model::{preset, save_hf_sharded, save_hf_tensors, Llama, LlamaConfig};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_zero::{Checkpoint, Sequences, ShardedModel, ZeroError, ZeroOptions, ZeroStage};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn config() -> LlamaConfig {
    let mut c = preset("tiny").unwrap();
    c.vocab_size = 97;
    c.tie_word_embeddings = false;
    c
}

fn folder_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn assert_identical(what: &str, a: &Path, b: &Path) {
    let (a, b) = (folder_bytes(a), folder_bytes(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: files"
    );
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{what}: {name} differs");
    }
}

/// A policy after one RMSprop step (so masters and optimizer state are not the init).
fn trained(stage: ZeroStage, kind: Kind) -> (ShardedModel, RmsProp) {
    let (model, vs) = Llama::init(&config(), Device::Cpu, Kind::Float, 3).unwrap();
    let options = ZeroOptions {
        logits_chunk_tokens: 64,
        ..ZeroOptions::new(stage, kind)
    };
    let sm = ShardedModel::new(model, vs, &SingleProcess::new(Device::Cpu), options).unwrap();
    let ids = (Tensor::arange(22, (Kind::Int64, Device::Cpu)) * 37 + 11)
        .remainder(97)
        .view([2, 11]);
    let labels = ids.roll([-1], [1]);
    let mask = Tensor::ones([2, 11], (Kind::Int64, Device::Cpu));
    let seqs = Sequences {
        ids: &ids,
        labels: &labels,
        mask: &mask,
        packed: None,
        targets: None,
    };
    let pass = sm.forward(&seqs).unwrap();
    let objective = pass.logps.sum(Kind::Float);
    sm.backward(&objective, pass).unwrap();
    let mut optimizer = RmsProp::new(RmsPropConfig::default());
    sm.step(&mut optimizer, 1e-3, 1.0).unwrap();
    (sm, optimizer)
}

#[test]
fn unit_by_unit_saves_are_byte_identical_to_the_whole_model_path() {
    for (stage, kind) in [
        (ZeroStage::Zero0, Kind::Float),
        (ZeroStage::Zero2, Kind::Float),
        (ZeroStage::Zero3, Kind::Float),
        (ZeroStage::Zero3, Kind::BFloat16),
    ] {
        {
            let what = format!("stage {stage}, compute {kind:?}");
            let (sm, optimizer) = trained(stage, kind);
            let root = tempfile::tempdir().unwrap();

            // The final model save: fp32 masters, one file.
            let before = root.path().join("before");
            save_hf_tensors(&before, sm.full_master().unwrap(), &config()).unwrap();
            let after = root.path().join("after");
            sm.save_hf(Some(&after), &config(), Kind::Float, u64::MAX)
                .unwrap();
            assert_identical(&format!("{what}: model"), &before, &after);

            // convert: from a checkpoint, fp32 and bf16, one file and shards.
            let dir = sm
                .save_checkpoint(
                    &root.path().join("ckpt"),
                    1,
                    &optimizer,
                    serde_json::json!({}),
                    &|_| Ok::<_, ZeroError>(()),
                    1,
                )
                .unwrap();
            let ckpt = Checkpoint::open(&dir).unwrap();
            for (dtype, max) in [(Kind::Float, u64::MAX), (Kind::BFloat16, 20_000)] {
                let before = root.path().join(format!("conv-before-{dtype:?}"));
                save_hf_sharded(&before, ckpt.consolidated().unwrap(), &config(), dtype, max)
                    .unwrap();
                let after = root.path().join(format!("conv-after-{dtype:?}"));
                ckpt.save_hf(&after, dtype, max).unwrap();
                assert_identical(&format!("{what}: convert to {dtype:?}"), &before, &after);
                if max != u64::MAX {
                    assert!(folder_bytes(&after).len() > 3, "{what}: expected shards");
                }
            }
        }
    }
}

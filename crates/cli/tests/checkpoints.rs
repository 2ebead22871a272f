//! Training checkpoints: resume continues exactly (same process count and stage) or
//! re-partitioned (another world size or ZeRO stage); a crash while writing leaves the
//! previous checkpoint as the newest; damaged checkpoints are refused by file name; and
//! `convert` gives a folder transformers loads with the same logits.

mod common;

use common::*;
use std::path::Path;

/// SFT warm-up (2 steps) then RPO (4 steps), a checkpoint after every step, all kept.
fn args(out: &Path, micro: usize, extra: &[&str]) -> Vec<String> {
    let sets = [
        format!("out_dir={}", out.display()),
        format!("train.micro_batch_size={micro}"),
        "train.global_batch_size=8".into(),
        "train.sft_warmup_steps=2".into(),
        "train.steps=4".into(),
        "data.synthetic_train=64".into(),
        "eval.max_examples=0".into(),
        "embedding.model=bag-of-words".into(),
        "optim.lr=1e-3".into(),
        "optim.eps=1e-3".into(),
        "optim.warmup_steps=0".into(),
        "checkpoint.every=1".into(),
        "checkpoint.keep=0".into(),
    ];
    train_args(sets, extra)
}

fn train(ranks: usize, out: &Path, micro: usize, extra: &[&str], resume: Option<&Path>) {
    let o = rpo_on(ranks, &strs(&with_resume(args(out, micro, extra), resume)));
    assert!(
        o.status.success(),
        "{ranks} rank(s) {extra:?}: {}",
        stderr(&o)
    );
}

#[test]
fn resume_at_the_same_world_size_continues_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    train(1, &full, 8, &[], None);
    let all = losses(&full);
    assert_eq!(all.len(), 6);
    // From inside the SFT warm-up, and from the preference phase (whose reference, a copy
    // of the policy after the warm-up, travels in the checkpoint).
    for k in [1, 3] {
        let resumed = dir.path().join(format!("from-{k}"));
        train(1, &resumed, 8, &[], Some(&step_dir(&full, k)));
        assert_eq!(
            losses(&resumed),
            all[k..].to_vec(),
            "resumed after step {k}"
        );
        assert_same_weights(&weights(&full), &weights(&resumed), 0.0);
    }
}

/// `loss.name = "sft"` names its one phase like the warm-up: its checkpoints resume, also
/// into a longer run (how launcher/online_sweep.py extends its start model step by step).
#[test]
fn an_sft_run_resumes_and_extends_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let sft = ["loss.name=sft", "train.sft_warmup_steps=0"];
    let full = dir.path().join("full");
    train(1, &full, 8, &sft, None);
    let all = losses(&full);
    assert_eq!(all.len(), 4);
    let short = dir.path().join("short");
    train(1, &short, 8, &[&sft[..], &["train.steps=2"]].concat(), None);
    assert_eq!(losses(&short), all[..2].to_vec());
    let extended = dir.path().join("extended");
    train(1, &extended, 8, &sft, Some(&step_dir(&short, 2)));
    assert_eq!(losses(&extended), all[2..].to_vec());
    assert_same_weights(&weights(&full), &weights(&extended), 0.0);
}

#[test]
fn resume_on_other_world_sizes_and_stages_repartitions() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("w2-stage1");
    train(2, &full, 4, &["zero.stage=1"], None);
    // The same examples per global micro-batch (8) on 1 and 4 ranks, other stages, and
    // the saved reference placed otherwise.
    for (ranks, micro, stage, mode) in [(1, 8, 3, "sharded"), (4, 2, 2, "offload")] {
        let resumed = dir.path().join(format!("w{ranks}-stage{stage}"));
        let stage = format!("zero.stage={stage}");
        let mode = format!("reference.mode={mode}");
        train(
            ranks,
            &resumed,
            micro,
            &[&stage, &mode],
            Some(&step_dir(&full, 3)),
        );
        let (a, b) = (metrics(&full), metrics(&resumed));
        assert_same_metric("loss", &a[3..], &b, 1e-5);
        assert_same_weights(&weights(&full), &weights(&resumed), 1e-5);
    }
    // A micro-batch that would change the data order is refused before any work.
    let o = rpo(&args(&dir.path().join("bad"), 4, &[])
        .iter()
        .map(String::as_str)
        .chain(["--resume", step_dir(&full, 3).to_str().unwrap()])
        .collect::<Vec<_>>());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("examples per global micro-batch"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_crash_while_writing_leaves_the_previous_checkpoint_latest_and_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let a = args(&out, 8, &[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = std::process::Command::new(BIN)
        .args(&a)
        .env("RPO_SHARD_FAILPOINT", "checkpoint-before-rename@4")
        .output()
        .unwrap();
    assert!(!o.status.success(), "the failpoint did not fire");
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert_eq!(latest.trim(), "step-00000003");
    assert!(
        !step_dir(&out, 4).exists(),
        "a half-written checkpoint is in place"
    );
    // `latest` resumes and finishes the run as if nothing had happened.
    train(1, &out, 8, &[], Some(Path::new("latest")));
    let reference = dir.path().join("uninterrupted");
    train(1, &reference, 8, &[], None);
    assert_eq!(losses(&out), losses(&reference));
}

#[test]
fn damaged_checkpoints_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(1, &out, 8, &["train.steps=1"], None);
    let ckpt = step_dir(&out, 3);
    let resume_error = |what: &str| {
        let a = args(&dir.path().join(what), 8, &["train.steps=1"]);
        let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
        a.extend(["--resume", ckpt.to_str().unwrap()]);
        let o = rpo(&a);
        assert!(!o.status.success(), "{what}: accepted");
        stderr(&o)
    };
    let shard = ckpt.join("rank-00000.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();
    let e = resume_error("corrupt");
    assert!(e.contains("rank-00000.safetensors is corrupt"), "{e}");
    std::fs::remove_file(&shard).unwrap();
    let e = resume_error("missing");
    assert!(e.contains("is missing rank-00000.safetensors"), "{e}");
}

#[test]
fn converted_checkpoint_loads_in_transformers_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Stage 3 on 2 ranks, so conversion consolidates slices from both ranks' files.
    train(2, &out, 4, &["zero.stage=3", "train.steps=1"], None);
    let hf = dir.path().join("hf");
    let o = rpo(&[
        "convert",
        "--checkpoint",
        out.join("checkpoints").to_str().unwrap(),
        "--out",
        hf.to_str().unwrap(),
        "--max-shard-bytes",
        "200000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(hf.join("model.safetensors.index.json").exists());
    assert!(hf.join("tokenizer.json").exists());

    // rpo-shard's forward on the policy as training saved it, against transformers' on
    // the converted folder.
    let (model, _, _) = rpo_model::load_hf(&out.join("model"), tch::Device::Cpu).unwrap();
    let ids = tch::Tensor::randint(500, [2, 9], (tch::Kind::Int64, tch::Device::Cpu));
    let ids_path = dir.path().join("ids.safetensors");
    tch::Tensor::write_safetensors(&[("input_ids", &ids)], &ids_path).unwrap();
    let logits_path = dir.path().join("hf-logits.safetensors");
    let jobs =
        serde_json::json!([{"op": "logits", "model_dir": hf, "ids": ids_path, "out": logits_path}]);
    let jobs_path = dir.path().join("jobs.json");
    std::fs::write(&jobs_path, jobs.to_string()).unwrap();
    let peer = rpo_peer::run_json("llama_peer.py", &[jobs_path.to_str().unwrap()]);
    assert_eq!(peer["results"][0]["dtype"], "float32");
    let theirs = tch::Tensor::read_safetensors(&logits_path)
        .unwrap()
        .remove(0)
        .1;
    let ours = tch::no_grad(|| model.forward(&ids));
    let error = ((&ours - &theirs).abs().max() / theirs.abs().max()).double_value(&[]);
    assert!(error < 1e-4, "relative logits error {error:e}");
}

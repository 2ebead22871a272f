//! Evaluation under ZeRO-3 on several ranks: the policy (and a sharded reference) are never
//! gathered whole; every rank decodes its share of the judged questions and computes its
//! share of the held-out pairs' rewards, one unit gathered at a time. The results must be
//! those of the whole model: the same answers as one process with the same weights, the
//! same reward accuracy as `rpo-shard eval` (one process) on the saved folders.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

fn sets(out: &Path, base: &Path, micro: usize, extra: &[&str]) -> Vec<String> {
    [
        format!("out_dir={}", out.display()),
        format!("model.path={}", base.display()),
        "model.preset=".into(),
        format!("reference.path={}", base.display()),
        "loss.name=dpo".into(),
        "train.steps=3".into(),
        "train.sft_warmup_steps=1".into(), // an evaluation before any training, too
        format!("train.micro_batch_size={micro}"),
        "train.global_batch_size=8".into(),
        "optim.lr=1e-3".into(),
        "optim.warmup_steps=0".into(),
        "data.synthetic_train=64".into(),
        // 20 held-out pairs in batches of 4: 5 batches, so on 2 ranks one rank runs a
        // batch again whose figures it must drop.
        "data.synthetic_eval=20".into(),
        "eval.max_examples=20".into(),
        "eval.max_new_tokens=8".into(),
    ]
    .into_iter()
    .chain(extra.iter().map(|s| s.to_string()))
    .collect()
}

fn with_set(command: &str, sets: &[String]) -> Vec<String> {
    let mut args = vec![command.to_string()];
    for s in sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    args
}

fn at<'a>(evals: &'a [Value], at: &str) -> &'a Value {
    evals.iter().find(|e| e["at"] == at).unwrap()
}

fn answers(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["prompt"].as_str().unwrap().to_string(),
                v["response"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn evaluation_under_stage_3_on_2_ranks_sees_the_whole_model() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    init_model(&base, &["--preset", "tiny"]);

    let sharded = dir.path().join("sharded");
    let sharded_sets = sets(
        &sharded,
        &base,
        4,
        &["zero.stage=3", "reference.mode=sharded"],
    );
    let args = with_set("train", &sharded_sets);
    let o = mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "2 ranks, stage 3: {}", stderr(&o));

    // Before training the model is the base model in any run: one process with the whole
    // model answers exactly alike.
    let whole = dir.path().join("whole");
    let args = with_set("train", &sets(&whole, &base, 8, &["zero.stage=0"]));
    let o = rpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "1 process, stage 0: {}", stderr(&o));
    let init = answers(&sharded.join("eval_init.jsonl"));
    assert_eq!(init.len(), 20);
    assert_eq!(init, answers(&whole.join("eval_init.jsonl")));
    assert_eq!(
        at(&summary_evals(&sharded), "init")["judge_accuracy"],
        at(&summary_evals(&whole), "init")["judge_accuracy"]
    );

    // After training: the answers of the saved policy (one process, whole model) and its
    // reward accuracy against the reference.
    let generated = dir.path().join("generated.jsonl");
    let o = rpo(&[
        "generate",
        "--config",
        sharded.join("config.toml").to_str().unwrap(),
        "--model",
        sharded.join("model").to_str().unwrap(),
        "--out",
        generated.to_str().unwrap(),
        "--max-prompts",
        "20",
    ]);
    assert!(o.status.success(), "generate: {}", stderr(&o));
    assert_eq!(
        answers(&sharded.join("eval_final.jsonl")),
        answers(&generated),
        "rank 0's final evaluation vs the saved model's answers"
    );

    let mut args = vec![
        "eval".to_string(),
        "--policy".into(),
        sharded.join("model").display().to_string(),
        "--reference".into(),
        base.display().to_string(),
    ];
    args.extend(with_set("x", &sharded_sets).into_iter().skip(1));
    let o = rpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "eval: {}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let evals = summary_evals(&sharded);
    let last = at(&evals, "final");
    for key in ["reward_accuracy", "reward_margin"] {
        let (trained, measured) = (last[key].as_f64().unwrap(), report[key].as_f64().unwrap());
        assert!(
            (trained - measured).abs() <= 1e-12 * trained.abs().max(1.0),
            "{key}: rank 0's final evaluation {trained} vs the saved folders {measured}"
        );
    }
}

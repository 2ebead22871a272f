//! `rpo-shard sample` and `rpo-shard prefs` (issue 18): sampling is the same at any rank
//! count, samples are scored by a judge, and scored samples become training data.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sample_args<'a>(model: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "sample",
        "--model",
        model,
        "--split",
        "eval",
        "--max-prompts",
        "6",
        "-k",
        "3",
        "--max-new-tokens",
        "6",
        "--temperature",
        "1.0",
        "--top-p",
        "0.95",
        "--seed",
        "5",
        "--out",
        out,
    ]
}

#[test]
fn two_ranks_sample_what_one_process_samples_and_the_judge_scores_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let (model, one, two) = (
        model.to_str().unwrap().to_string(),
        dir.path().join("one.jsonl"),
        dir.path().join("two.jsonl"),
    );
    let mut a = sample_args(&model, one.to_str().unwrap());
    a.extend(["--judge", "synthetic"]);
    let o = rpo(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut a = sample_args(&model, two.to_str().unwrap());
    a.extend(["--judge", "synthetic"]);
    let o = mpirun(2, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    // --sharded: each rank holds half the weights and both decode every token together.
    let sharded = dir.path().join("sharded.jsonl");
    let mut a = sample_args(&model, sharded.to_str().unwrap());
    a.extend(["--judge", "synthetic", "--sharded"]);
    let o = mpirun(2, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    let (one, two, sharded) = (lines(&one), lines(&two), lines(&sharded));
    assert_eq!(one, two, "2 ranks wrote other samples than 1 process");
    assert_eq!(
        one, sharded,
        "2 sharded ranks wrote other samples than 1 process"
    );
    assert_eq!(one.len(), 18);
    // Prompt-major order, k samples each, with the record's fields carried along.
    for (n, l) in one.iter().enumerate() {
        assert_eq!(l["prompt_index"], n / 3);
        assert_eq!(l["sample"], n % 3);
        assert!(l["reference"].is_string() && l["family"].is_string());
        // The suite's checker, applied here independently: trimmed exact match.
        let right =
            l["response"].as_str().unwrap().trim() == l["reference"].as_str().unwrap().trim();
        assert_eq!(l["label"], right);
        assert_eq!(l["score"], if right { 1.0 } else { 0.0 });
    }
    // Random init, temperature 1: the k samples of a prompt are not all alike.
    let distinct: std::collections::HashSet<&str> = one
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert!(distinct.len() > 6, "{distinct:?}");
}

#[test]
fn a_failing_judge_keeps_the_samples_and_says_how_to_score_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let out = dir.path().join("s.jsonl");
    let mut a = sample_args(model.to_str().unwrap(), out.to_str().unwrap());
    a.extend([
        "--judge",
        "command",
        "--judge-command",
        "cat >/dev/null; echo garbage",
    ]);
    let o = rpo(&a);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("unscored samples are kept") && e.contains("rpo-shard prefs"),
        "{e}"
    );
    let kept = lines(&out);
    assert_eq!(kept.len(), 18);
    assert!(kept.iter().all(|l| l.get("score").is_none()));
}

#[test]
fn prefs_turns_scored_samples_into_data_that_trains() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("samples.jsonl");
    // Hand-made scored samples on two synthetic-suite prompts: one mixed, one all wrong.
    let ex = rpo_data::synthetic::generate(rpo_data::synthetic::Split::Train, 2, 0);
    let (p, q) = (&ex[0], &ex[1]);
    let rows = [
        serde_json::json!({"prompt": p.prompt, "response": p.chosen, "score": 1.0, "label": true}),
        serde_json::json!({"prompt": p.prompt, "response": p.rejected, "score": 0.0, "label": false}),
        serde_json::json!({"prompt": q.prompt, "response": q.rejected, "score": 0.0, "label": false}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&samples, text).unwrap();
    let paired = dir.path().join("paired.jsonl");
    let o = rpo(&[
        "prefs",
        "--samples",
        samples.to_str().unwrap(),
        "--rule",
        "best-worst",
        "--out",
        paired.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["prompts_all_undesirable"], 1);
    assert_eq!(stats["rows"], 1);
    assert_eq!(
        lines(&paired),
        [serde_json::json!({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})]
    );
    // The written file is training data as it stands.
    let run = dir.path().join("run");
    let o = rpo(&[
        "train",
        "--set",
        "data.format=paired",
        "--set",
        &format!("data.train={}", paired.display()),
        "--set",
        "train.sft_warmup_steps=0",
        "--set",
        "loss.name=dpo",
        "--set",
        "train.steps=1",
        "--set",
        "train.global_batch_size=1",
        "--set",
        "train.micro_batch_size=1",
        "--set",
        "eval.judge=false",
        "--set",
        "embedding.model=bag-of-words",
        "--set",
        &format!("out_dir={}", run.display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(metrics(&run).len(), 1);
}

/// `generate --sharded` on 2 ranks (each holding half the weights, decoding together)
/// answers as one process with the whole model, greedy and sampled; 7 prompts give the
/// ranks 4 and 3, so one rank idles through the other's last forwards.
#[test]
fn sharded_generate_on_two_ranks_answers_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let model = model.to_str().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/default.toml");
    for temperature in ["0", "1.0"] {
        let (one, two) = (dir.path().join("one.jsonl"), dir.path().join("two.jsonl"));
        let args = |out: &Path| -> Vec<String> {
            [
                "generate",
                "--config",
                config,
                "--model",
                model,
                "--max-prompts",
                "7",
                "--max-new-tokens",
                "6",
                "--temperature",
                temperature,
                "--out",
                out.to_str().unwrap(),
            ]
            .map(String::from)
            .to_vec()
        };
        let a = args(&one);
        let o = rpo(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        let mut a = args(&two);
        a.push("--sharded".into());
        let o = mpirun(2, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        let (one, two) = (lines(&one), lines(&two));
        assert_eq!(one.len(), 7);
        assert_eq!(
            one, two,
            "temperature {temperature}: sharded on 2 ranks vs 1 process"
        );
    }
}

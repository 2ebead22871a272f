//! The `rpo-shard` binary as a user meets it: runs, files written, errors that name things.

mod common;

use common::*;
use std::path::Path;
use std::process::Output;

const FAST: &[&str] = &[
    "--set",
    "train.steps=3",
    "--set",
    "train.sft_warmup_steps=2",
    "--set",
    "train.global_batch_size=8",
    "--set",
    "train.micro_batch_size=4",
    "--set",
    "data.synthetic_train=64",
    "--set",
    "data.synthetic_eval=8",
];

fn train(out: &Path, extra: &[&str]) -> Output {
    let out_dir = format!("out_dir={}", out.display());
    let mut args = vec!["train", "--set", &out_dir];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    rpo(&args)
}

#[test]
fn default_run_writes_metrics_evals_and_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let o = train(dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(dir.path());
    assert_eq!(m.len(), 5, "2 SFT + 3 RPO steps, one line each");
    for key in [
        "step",
        "loss",
        "lr",
        "grad_norm",
        "rewards_chosen",
        "rewards_rejected",
        "reward_margin",
        "reward_accuracy",
        "tokens",
        "step_time_s",
    ] {
        assert!(
            m[4].get(key).is_some_and(|v| !v.is_null()),
            "RPO step lacks {key}: {}",
            m[4]
        );
    }
    assert_eq!(m[0]["phase"], "sft");
    assert!(
        m[0]["reward_accuracy"].is_null(),
        "SFT warm-up has no reference, so no rewards"
    );
    assert_eq!(m[4]["phase"], "rpo-paired");
    assert_eq!(m[4]["step"], 5);
    assert!(m.iter().all(|x| x["loss"].as_f64().unwrap().is_finite()));
    for f in [
        "summary.json",
        "config.toml",
        "eval_final.jsonl",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["evals"].as_array().unwrap().len(),
        3,
        "init, sft, final"
    );
}

#[test]
fn every_objective_trains() {
    for extra in [
        &["--set", "loss.name=dpo"][..],
        &["--set", "loss.name=ipo"],
        &["--set", "loss.name=kto"],
        &[
            "--set",
            "loss.name=sft",
            "--set",
            "train.sft_warmup_steps=0",
        ],
        &["--set", "loss.pairing=unpaired", "--set", "loss.tau=0.75"],
        &["--set", "loss.weighting=diagonal-code"],
        &[
            "--set",
            "loss.weighting=uniform-paper",
            "--set",
            "optim.name=adamw",
        ],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = train(dir.path(), extra);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let m = metrics(dir.path());
        assert!(
            m.iter().all(|x| x["loss"].as_f64().unwrap().is_finite()),
            "{extra:?}"
        );
    }
}

#[test]
fn unknown_config_key_fails_naming_the_key() {
    let o = rpo(&["train", "--set", "optim.learning_rate=1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("learning_rate"), "{}", stderr(&o));
}

#[test]
fn malformed_jsonl_names_file_and_line_or_is_counted_when_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    let good =
        r#"{"prompt": "Human: What is 1 + 2?\n\nAssistant:", "chosen": " 3", "rejected": " 4"}"#;
    let mut lines = vec![good; 10];
    lines.insert(6, r#"{"prompt": "x", "chosen": "y"}"#);
    std::fs::write(&data, lines.join("\n")).unwrap();
    let data_arg = format!("data.train={}", data.display());
    let common = ["--set", "data.format=paired", "--set", &data_arg];
    let o = train(&dir.path().join("run"), &common);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("train.jsonl") && e.contains('7') && e.contains("rejected"),
        "{e}"
    );

    let mut skip = common.to_vec();
    skip.extend([
        "--set",
        "data.on_malformed=skip",
        "--set",
        "eval.judge=false",
    ]);
    let o = train(&dir.path().join("run2"), &skip);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn config_prints_the_resolved_default() {
    let o = rpo(&["config", "--set", "loss.tau=0.25"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("tau = 0.25"), "{text}");
}

#[test]
fn synth_writes_the_suite_and_its_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let o = rpo(&[
        "synth",
        "--out",
        &out,
        "--train",
        "20",
        "--eval",
        "5",
        "--tokenizer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let train = std::fs::read_to_string(dir.path().join("train.jsonl")).unwrap();
    assert_eq!(train.lines().count(), 20);
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/synthetic/tokenizer.json"),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tokenizer.json")).unwrap(),
        shipped
    );
}

/// A successful short run with `extra` overrides: its metrics, saved weights and folder.
fn trained(
    extra: &[&str],
) -> (
    Vec<serde_json::Value>,
    Vec<(String, tch::Tensor)>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let o = train(dir.path(), extra);
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    (metrics(dir.path()), weights(dir.path()), dir)
}

#[test]
fn gradient_accumulation_equals_the_large_batch() {
    // DPO's loss is a mean over pairs, so 2 micro-batches of 4 must give the update of one
    // batch of 8. The examples are the same: both chunk one seeded permutation of the 64
    // examples, and 5 steps × 8 stay inside the first epoch.
    let run = |micro: &str| {
        let m = format!("train.micro_batch_size={micro}");
        trained(&[
            "--set",
            "loss.name=dpo",
            "--set",
            &m,
            "--set",
            "optim.max_grad_norm=1.0",
            "--set",
            "eval.judge=false",
        ])
    };
    let (m8, w8, _d8) = run("8");
    let (m4, w4, _d4) = run("4");
    assert_same_metric("loss", &m8, &m4, 1e-5);
    assert_same_metric("grad_norm", &m8, &m4, 1e-4);
    assert_same_weights(&w8, &w4, 1e-5);
}

#[test]
fn bf16_training_keeps_fp32_masters_so_small_steps_are_not_rounded_away() {
    // RMSprop moves each weight by ~10·lr on its first steps: 1e-5 here, ten times below a
    // bf16 ulp near 0.02 (≈1.2e-4). Updating bf16 weights directly would leave them unchanged.
    let run = |steps: &str| {
        let s = format!("train.steps={steps}");
        let (_, w, dir) = trained(&[
            "--set",
            "model.dtype=bf16",
            "--set",
            "loss.name=dpo",
            "--set",
            "train.sft_warmup_steps=0",
            "--set",
            &s,
            "--set",
            "optim.lr=1e-6",
            "--set",
            "optim.warmup_steps=0",
            "--set",
            "eval.judge=false",
        ]);
        (w, dir)
    };
    let (before, _d0) = run("0");
    let (after, _d1) = run("3");
    let (mut moved, mut total) = (0i64, 0i64);
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(
            b.kind(),
            tch::Kind::Float,
            "{name}: master weights are saved in fp32"
        );
        let delta = (a.to_kind(tch::Kind::Float) - b).abs();
        assert!(
            delta.max().double_value(&[]) < 1e-4,
            "{name}: moved more than 3 small steps"
        );
        moved += delta.gt(0.0).sum(tch::Kind::Int64).int64_value(&[]);
        total += a.numel() as i64;
    }
    assert!(
        moved * 2 > total,
        "only {moved} of {total} weights moved: updates were rounded away"
    );
}

#[test]
fn rpo_weights_come_from_the_minilm_encoder_by_default() {
    // Same seed and data; only the prompt embeddings differ, so the losses after the first
    // update must differ too if the encoder's embeddings reach the contrast weights.
    let run = |model: &str| {
        let m = format!("embedding.model={model}");
        let (metrics, _, _dir) = trained(&["--set", &m, "--set", "eval.judge=false"]);
        metrics
    };
    let (minilm, bow) = (run("minilm"), run("bag-of-words"));
    let last = |m: &[serde_json::Value]| m.last().unwrap()["loss"].as_f64().unwrap();
    assert!(
        (last(&minilm) - last(&bow)).abs() > 1e-9,
        "minilm and bag-of-words weights trained alike: {} vs {}",
        last(&minilm),
        last(&bow)
    );
    // A folder that is not a sentence-transformers model is refused, naming it.
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("embedding.path={}", dir.path().display());
    let o = train(&dir.path().join("run"), &["--set", &bad]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("embedding.path") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `rpo-shard embed` with FAST and `extra`; its JSON report.
fn embed(extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["embed"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    let o = rpo(&args);
    assert!(o.status.success(), "embed {extra:?}: {}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn embed_cache_trains_like_embedding_on_the_fly_and_a_stale_one_is_refused() {
    // MiniLM on paired prompts: the cache encodes texts in other batches than training
    // does, which moves embeddings by float rounding (cosine 1 − 1e-7), so metrics agree
    // to ~1e-6 (margins, near 0, to 1e-7 absolute). Bag-of-words on unpaired
    // prompt+response texts: the rows are bit-identical, so must be the metrics.
    let unpaired_responses = [
        "--set",
        "loss.pairing=unpaired",
        "--set",
        "loss.tau=0.75",
        "--set",
        "embedding.text=prompt+response",
        "--set",
        "embedding.model=bag-of-words",
    ];
    for (extra, rtol, margin_rtol) in [(&[][..], 1e-6, 1e-4), (&unpaired_responses, 0.0, 0.0)] {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache/e.bin");
        let cache_arg = format!("embedding.cache={}", cache.display());
        // `extra`, then `more`, reading the cache.
        let with = |more: &[&'static str]| -> Vec<String> {
            extra
                .iter()
                .chain(more)
                .chain(&["--set", cache_arg.as_str()])
                .map(|s| s.to_string())
                .collect()
        };
        let report = embed(&as_strs(&with(&[])));
        assert_eq!(report["out"], cache.display().to_string());
        assert_eq!(report["dtype"], "f32");
        assert!(report["texts"].as_u64().unwrap() > 8, "{report}");
        assert!(
            report["sentences_per_s"].as_f64().unwrap() > 0.0,
            "{report}"
        );

        let no_judge = ["--set", "eval.judge=false"];
        let on_the_fly: Vec<&str> = extra.iter().chain(&no_judge).copied().collect();
        let (fly, _, _d1) = trained(&on_the_fly);
        let (cached, _, _d2) = trained(&as_strs(&with(&no_judge)));
        // The preference steps, where the embeddings weigh the contrast matrix.
        let preference = |m: &[serde_json::Value]| {
            m.iter()
                .filter(|x| x["phase"] != "sft")
                .cloned()
                .collect::<Vec<_>>()
        };
        let (fly, cached) = (preference(&fly), preference(&cached));
        assert_eq!(fly.len(), 3);
        assert_same_metric("loss", &fly, &cached, rtol);
        assert_same_metric("grad_norm", &fly, &cached, rtol);
        assert_same_metric("reward_margin", &fly, &cached, margin_rtol);

        // Other data: the cache no longer fits, and training says so before it starts.
        let stale = with(&["--set", "data.synthetic_train=48"]);
        let o = train(&dir.path().join("stale"), &as_strs(&stale));
        assert!(!o.status.success(), "{extra:?}: a stale cache was accepted");
        let e = stderr(&o);
        for needle in [
            "e.bin",
            "stale",
            "texts fingerprint",
            "rpo-shard embed --config",
        ] {
            assert!(e.contains(needle), "{extra:?}: {needle:?} not in {e}");
        }
        assert!(
            !dir.path().join("stale/metrics.jsonl").exists()
                || metrics(&dir.path().join("stale")).is_empty(),
            "refused before any step"
        );
    }
}

#[test]
fn prompt_response_texts_train_paired_and_unpaired_and_differ_from_prompts() {
    let unpaired = ["--set", "loss.pairing=unpaired", "--set", "loss.tau=0.75"];
    for pairing in [&[][..], &unpaired] {
        let run = |text: &str| {
            let t = format!("embedding.text={text}");
            let args: Vec<&str> = pairing
                .iter()
                .copied()
                .chain(["--set", &t, "--set", "eval.judge=false"])
                .collect();
            trained(&args).0
        };
        let (prompt, joined) = (run("prompt"), run("prompt+response"));
        assert!(joined
            .iter()
            .all(|x| x["loss"].as_f64().unwrap().is_finite()));
        let last = |m: &[serde_json::Value]| m.last().unwrap()["loss"].as_f64().unwrap();
        assert!(
            (last(&prompt) - last(&joined)).abs() > 1e-9,
            "{pairing:?}: prompt and prompt+response weights trained alike: {}",
            last(&prompt)
        );
    }
}

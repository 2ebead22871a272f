//! `rpo-shard eval` end to end: the synthetic judge on suite answers, and the HTTP judge
//! against a local stand-in endpoint (never the internet), resumed from its cache.

mod common;

use common::{init_model, rpo, stderr, BIN};
use rpo_data::synthetic::{generate, Split};
use rpo_peer::judge_server::FakeJudgeServer;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

/// `rpo-shard eval <args>` with only the judge variables given here in its environment.
fn eval(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("eval").args(args).env("RPO_LOG", "warn");
    for k in [
        "RPO_JUDGE_BASE_URL",
        "RPO_JUDGE_MODEL",
        "RPO_JUDGE_API_KEY",
        "OPENAI_API_KEY",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied()).output().expect("run rpo-shard")
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn write_lines(path: &Path, lines: &[Value]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

#[test]
fn eval_with_the_synthetic_judge_writes_comparisons_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    // Suite questions answered right (even ones: ties with the reference) and wrong (odd: losses).
    let lines: Vec<Value> = generate(Split::Eval, 12, 3)
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let response = if i % 2 == 0 { &q.chosen } else { &q.rejected };
            json!({"prompt": q.prompt, "response": response, "reference": q.chosen, "family": q.family.name()})
        })
        .collect();
    let gens = dir.path().join("generations.jsonl");
    write_lines(&gens, &lines);
    let o = eval(
        &[
            "--generations",
            gens.to_str().unwrap(),
            "--judge",
            "synthetic",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("eval_synthetic");
    let s = summary(&out);
    assert_eq!(s, serde_json::from_slice::<Value>(&o.stdout).unwrap());
    assert_eq!(
        (
            s["comparisons"].as_u64(),
            s["wins"].as_u64(),
            s["losses"].as_u64()
        ),
        (Some(12), Some(0), Some(6))
    );
    assert_eq!(
        (s["ties"].as_u64(), s["unparsable"].as_u64()),
        (Some(6), Some(0))
    );
    assert_eq!(s["win_rate"], 0.0);
    assert_eq!(s["win_rate_ties_half"], 0.25);
    assert_eq!(s["candidate_accuracy"], 0.5);
    assert_eq!(s["by_family"].as_object().unwrap().len(), 6);
    let n = std::fs::read_to_string(out.join("comparisons.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(n, 12);

    // HTTP-only settings are refused for the synthetic judge, by flag.
    let o = eval(
        &[
            "--generations",
            gens.to_str().unwrap(),
            "--judge",
            "synthetic",
            "--task",
            "dialogue",
        ],
        &[],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--task is for --judge http"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_with_the_http_judge_resumes_from_its_cache_without_requests() {
    let server = FakeJudgeServer::start("judge-cli", Some("sk-cli"));
    let dir = tempfile::tempdir().unwrap();
    let gens = dir.path().join("gens.jsonl");
    write_lines(
        &gens,
        &[
            json!({"prompt": "A post about cats.", "response": "GOOD cats", "reference": "dogs"}),
            json!({"prompt": "A post about dogs.", "response": "cats", "reference": "GOOD dogs"}),
            json!({"prompt": "A post about birds. [429]", "response": "GOOD birds", "reference": "fish"}),
            json!({"prompt": "A post about fish.", "response": "GARBLE", "reference": "fish"}),
        ],
    );
    let config = dir.path().join("judge.toml");
    std::fs::write(
        &config,
        "task = \"summarization\"\nbackoff_initial_s = 0.001\nbackoff_max_s = 0.01\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let args = [
        "--generations",
        gens.to_str().unwrap(),
        "--judge",
        "http",
        "--judge-config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "5",
    ];
    let env = [
        ("RPO_JUDGE_BASE_URL", server.url.as_str()),
        ("RPO_JUDGE_MODEL", "judge-cli"),
        ("RPO_JUDGE_API_KEY", "sk-cli"),
    ];
    let o = eval(&args, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(
        (
            s["wins"].as_u64(),
            s["losses"].as_u64(),
            s["unparsable"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(s["win_rate"], 0.5);
    assert_eq!(s["settings"]["task"], "summarization");
    assert_eq!(
        server.requests(),
        5,
        "four comparisons and one retry after the 429"
    );
    assert!(server
        .messages()
        .iter()
        .all(|m| m.contains("END OF SUMMARY 2")));
    assert!(out.join("judge_cache.jsonl").exists());

    let o = eval(&args, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.requests(), 5, "the second run paid again");
    let again = summary(&out);
    assert_eq!(
        (again["requests"].as_u64(), again["cache_hits"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(again["win_rate"], s["win_rate"]);

    // Without an endpoint the error says which variable to set.
    let o = eval(&args, &[("RPO_JUDGE_MODEL", "judge-cli")]);
    assert!(
        !o.status.success() && stderr(&o).contains("RPO_JUDGE_BASE_URL"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_reports_the_reward_accuracy_training_measured_for_the_same_models() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    init_model(&base, &["--preset", "tiny"]);
    let run = dir.path().join("run");
    let sets = [
        format!("out_dir={}", run.display()),
        format!("model.path={}", base.display()),
        "model.preset=".into(),
        "loss.name=dpo".into(),
        "train.steps=15".into(),
        "train.sft_warmup_steps=0".into(),
        "train.global_batch_size=8".into(),
        "train.micro_batch_size=8".into(),
        "optim.lr=1e-3".into(),
        "data.synthetic_train=64".into(),
        "data.synthetic_eval=48".into(),
        "eval.judge=false".into(),
    ];
    let mut args = vec!["train".to_string()];
    for s in &sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    let o = rpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let trained = summary["evals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["at"] == "final")
        .unwrap()["reward_accuracy"]
        .as_f64()
        .unwrap();

    let mut args = vec![
        "eval".to_string(),
        "--policy".into(),
        run.join("model").display().to_string(),
        "--reference".into(),
        base.display().to_string(),
    ];
    for s in &sets {
        args.extend(["--set".to_string(), s.clone()]);
    }
    let o = rpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["pairs"], 48);
    let measured = report["reward_accuracy"].as_f64().unwrap();
    assert!(
        (measured - trained).abs() < 1e-9,
        "eval {measured} vs training {trained}"
    );
    assert!(
        measured > 0.5,
        "15 DPO steps at lr 1e-3 should rank most pairs right: {measured}"
    );
    assert!(report["reward_margin"].as_f64().unwrap() > 0.0);
}

//! Your model, your data: the example configs, `generate --prompts`, and `tokenizer
//! train` checked against transformers.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/examples")
}

fn write_lines(path: &Path, records: &[serde_json::Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Paired records in the synthetic suite's vocabulary (the init-model tokenizer's).
fn paired_records(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "prompt": format!("Human: What is {i} + 1?\n\nAssistant:"),
                "chosen": format!(" {}", i + 1),
                "rejected": format!(" {}", i + 2),
            })
        })
        .collect()
}

#[test]
fn every_example_config_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        let o = rpo(&["config", "--config", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "hf-model-chat.toml",
            "hf-model-paired.toml",
            "hf-model-unpaired.toml"
        ]
    );
}

#[test]
fn paired_example_trains_2_steps_on_an_init_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let data = dir.path().join("train.jsonl");
    write_lines(&data, &paired_records(40));
    let config = examples_dir().join("hf-model-paired.toml");
    let out = dir.path().join("run");
    let sets = [
        format!("model.path={}", model.display()),
        format!("data.train={}", data.display()),
        format!("out_dir={}", out.display()),
        "model.device=cpu".into(),
        "train.steps=2".into(),
        "train.global_batch_size=4".into(),
        "train.micro_batch_size=2".into(),
        "optim.warmup_steps=1".into(),
    ];
    let mut args = vec!["train", "--config", config.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let o = rpo(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(&out);
    assert_eq!(m.len(), 2, "2 RPO steps, no warm-up");
    assert!(m.iter().all(|x| x["loss"].as_f64().unwrap().is_finite()));
    assert!(out.join("model/model.safetensors").exists());
}

fn generate(args: &[&str]) -> std::process::Output {
    let mut a = vec!["generate"];
    a.extend_from_slice(args);
    rpo(&a)
}

#[test]
fn generate_answers_a_prompts_file_carrying_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let m = model.to_str().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    write_lines(
        &prompts,
        &[
            serde_json::json!({"prompt": "Human: What is 1 + 1?\n\nAssistant:", "id": 7, "meta": {"src": "a"}}),
            serde_json::json!({"prompt": "Human: What is 2 + 2?\n\nAssistant:", "id": 8, "reference": " 4"}),
            serde_json::json!({"prompt": "Human: What is 3 + 3?\n\nAssistant:", "id": 9}),
        ],
    );
    let p = prompts.to_str().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // Without prompts, and without a run config to take held-out prompts from: refused by name.
    let o = generate(&["--model", m, "--out", &out("none.jsonl")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--prompts"), "{}", stderr(&o));

    let o = generate(&["--model", m, "--prompts", p, "--out", &out("all.jsonl")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("answering 3 of 3 prompts, at most 16 new tokens"),
        "{}",
        stderr(&o)
    );
    let lines = read("all.jsonl");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], 7);
    assert_eq!(lines[0]["meta"]["src"], "a");
    assert_eq!(lines[1]["reference"], " 4");
    assert_eq!(lines[2]["prompt"], "Human: What is 3 + 3?\n\nAssistant:");
    assert!(lines.iter().all(|l| l["response"].is_string()));

    // --max-prompts is said; eval.max_new_tokens is honoured as --max-new-tokens is.
    let o = generate(&[
        "--model",
        m,
        "--prompts",
        p,
        "--out",
        &out("two.jsonl"),
        "--max-prompts",
        "2",
        "--set",
        "eval.max_new_tokens=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("answering 2 of 3 prompts (--max-prompts), at most 2 new tokens"),
        "{}",
        stderr(&o)
    );
    let o = generate(&[
        "--model",
        m,
        "--prompts",
        p,
        "--out",
        &out("flag.jsonl"),
        "--max-prompts",
        "2",
        "--max-new-tokens",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read("two.jsonl"), read("flag.jsonl"));
    assert_eq!(read("two.jsonl").len(), 2);
    assert_ne!(
        read("two.jsonl")[0]["response"],
        lines[0]["response"],
        "2 vs 16 new tokens"
    );

    // A malformed prompt record is named by file and line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"text\": \"no prompt\"}\n").unwrap();
    let o = generate(&[
        "--model",
        m,
        "--prompts",
        bad.to_str().unwrap(),
        "--out",
        &out("bad.out"),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.jsonl:2: field `prompt`: missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn generate_takes_held_out_prompts_from_the_eval_file_without_reading_train() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    let eval = dir.path().join("eval.jsonl");
    write_lines(&eval, &paired_records(3));
    let config = examples_dir().join("hf-model-paired.toml");
    let eval_set = format!("data.eval={}", eval.display());
    let out = dir.path().join("g.jsonl");
    let o = generate(&[
        "--config",
        config.to_str().unwrap(),
        "--set",
        "data.train=/nonexistent/train.jsonl",
        "--set",
        "data.eval_fraction=0",
        "--set",
        &eval_set,
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-new-tokens",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["reference"], " 2");
}

#[test]
fn tokenizer_train_writes_a_folder_transformers_tokenizes_as_training_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    let mut records = paired_records(30);
    records.push(serde_json::json!({
        "prompt": [{"role": "user", "content": "Grüße aus Köln — ünïcödé ☕ 12345"}],
        "chosen": [{"role": "assistant", "content": "Danke!"}],
        "rejected": [{"role": "assistant", "content": "Nein."}]
    }));
    write_lines(&data, &records);
    let out = dir.path().join("tok");
    let o = rpo(&[
        "tokenizer",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--vocab",
        "320",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        assert!(out.join(name).exists(), "{name}");
    }

    // Texts seen and unseen in training, with what training makes of them.
    let texts = [
        "Human: What is 12 + 1?\n\nAssistant:",
        " 13",
        "Grüße aus Köln ☕",
        "never seen: xyz QWERTY 987",
        "  leading spaces and\ttabs\n",
    ];
    let tokenizer = rpo_data::PreferenceTokenizer::from_file(
        out.join("tokenizer.json"),
        rpo_data::Truncation {
            max_length: 512,
            max_prompt_length: 256,
            prompt_keep: rpo_data::PromptKeep::KeepEnd,
        },
    )
    .unwrap();
    let texts_path = dir.path().join("texts.json");
    std::fs::write(&texts_path, serde_json::to_string(&texts).unwrap()).unwrap();
    let peer = rpo_peer::run_json(
        "tokenizer_peer.py",
        &[out.to_str().unwrap(), texts_path.to_str().unwrap()],
    );
    let special = tokenizer.special();
    assert_eq!(peer["bos_token_id"], special.bos.unwrap());
    assert_eq!(peer["eos_token_id"], special.eos);
    assert_eq!(peer["pad_token_id"], special.pad);
    for (i, text) in texts.iter().enumerate() {
        // Prompts: training's BOS + ids are what transformers' tokenizer gives by default.
        let prompt = tokenizer.encode_prompt_for_generation(text).unwrap();
        assert_eq!(
            peer["with_special"][i],
            serde_json::json!(prompt),
            "{text:?}"
        );
        // Responses: the plain ids, without special tokens, and they decode back.
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(
            peer["without_special"][i],
            serde_json::json!(ids),
            "{text:?}"
        );
        assert_eq!(peer["decoded"][i], *text, "{text:?}");
        assert_eq!(tokenizer.decode(&ids).unwrap(), *text);
    }
}

/// The chat example end to end: TRL's conversational records, rendered through the
/// model folder's chat template, train exactly as the same conversations given as the
/// text the template renders (prompt with the generation prompt, response = assistant
/// turn + its end token, as TRL splits them).
#[test]
fn chat_example_trains_on_conversational_data_as_on_the_rendered_text() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    init_model(&model, &["--preset", "tiny"]);
    // A chat template in the synthetic suite's dialogue shape.
    let config_path = model.join("tokenizer_config.json");
    let mut tc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    tc["chat_template"] = serde_json::Value::String(
        "{% for m in messages %}{% if m['role'] == 'user' %}Human: {{ m['content'] }}\n\n\
         {% elif m['role'] == 'assistant' %}Assistant: {{ m['content'] }}{{ eos_token }}{% endif %}\
         {% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
            .into(),
    );
    std::fs::write(&config_path, tc.to_string()).unwrap();
    let n = 24;
    let conv: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "prompt": [{"role": "user", "content": format!("What is {i} + 1?")}],
                "chosen": [{"role": "assistant", "content": format!("{}", i + 1)}],
                "rejected": [{"role": "assistant", "content": format!("{}", i + 2)}],
            })
        })
        .collect();
    // What the template renders, TRL's split: the prompt with the generation prompt; the
    // response is the rest of the whole conversation, its end token included (the
    // tokenizer then adds no second one).
    let text: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let prompt = format!("Human: What is {i} + 1?\n\nAssistant:");
            let full = |a: usize| format!("Human: What is {i} + 1?\n\nAssistant: {a}</s>");
            serde_json::json!({
                "prompt": prompt,
                "chosen": full(i + 1)[prompt.len()..],
                "rejected": full(i + 2)[prompt.len()..],
            })
        })
        .collect();
    let (conv_path, text_path) = (dir.path().join("conv.jsonl"), dir.path().join("text.jsonl"));
    write_lines(&conv_path, &conv);
    write_lines(&text_path, &text);
    let config = examples_dir().join("hf-model-chat.toml");
    let run = |data: &Path, out: &Path| {
        let sets = [
            format!("model.path={}", model.display()),
            format!("data.train={}", data.display()),
            "data.eval=".to_string(),
            format!("out_dir={}", out.display()),
            "model.device=cpu".into(),
            "embedding.model=bag-of-words".into(),
            "train.steps=2".into(),
            "train.global_batch_size=4".into(),
            "train.micro_batch_size=2".into(),
            "optim.warmup_steps=1".into(),
            "optim.lr=1e-3".into(),
        ];
        let mut args = vec!["train", "--config", config.to_str().unwrap()];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let o = rpo(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        metrics(out)
    };
    let a = run(&conv_path, &dir.path().join("conv"));
    let b = run(&text_path, &dir.path().join("text"));
    assert_eq!(a.len(), 2);
    for key in ["loss", "grad_norm", "tokens", "reward_margin"] {
        assert_same_metric(key, &a, &b, 0.0);
    }
}

//! rpo-model against Hugging Face transformers (tests/peers/llama_peer.py): the same
//! folders give the same logits and the same greedy generations.
//!
//! All cases share one peer process (importing transformers takes seconds); each case
//! is checked separately and every failing case is reported.

mod common;

use std::path::{Path, PathBuf};

use common::{
    mid_sequence_eos, mistral_config, relative_error, tiny_config, token_ids, token_list,
};
use rpo_model::hf_io::{dtype_name, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use rpo_model::{generate_greedy, load_hf, save_hf, save_hf_sharded, Llama, LlamaConfig};
use serde_json::{json, Value};
use tch::{nn::VarStore, Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;
const SEQ_LEN: i64 = 12;
/// Bytes per shard that split the tiny models into at least three files.
const SMALL_SHARD: u64 = 30_000;

/// A model folder whose logits both sides compute for the same ids.
struct LogitsCase {
    name: &'static str,
    dir: PathBuf,
    ids: PathBuf,
    hf_logits: PathBuf,
    expected_class: &'static str,
    /// Logits of the model before it was saved, which transformers must reproduce too.
    before_save: Option<Tensor>,
    /// Index of its job in the peer's job list.
    job: usize,
}

/// Greedy generations both sides compute for the same folder and prompts.
struct GenerateCase {
    name: String,
    dir: PathBuf,
    prompts: Vec<Vec<i64>>,
    max_new_tokens: usize,
    eos: Option<i64>,
    job: usize,
}

/// Adds a logits job for the folder `root/name` and returns its case.
fn logits_case(
    jobs: &mut Vec<Value>,
    root: &Path,
    name: &'static str,
    expected_class: &'static str,
) -> LogitsCase {
    let (dir, ids) = (
        root.join(name),
        root.join(format!("{name}-ids.safetensors")),
    );
    let hf_logits = root.join(format!("{name}-hf-logits.safetensors"));
    Tensor::write_safetensors(
        &[("input_ids", token_ids(2, SEQ_LEN, 97, name.len() as u64))],
        &ids,
    )
    .unwrap();
    jobs.push(json!({"op": "logits", "model_dir": dir, "ids": ids, "out": hf_logits}));
    LogitsCase {
        name,
        dir,
        ids,
        hf_logits,
        expected_class,
        before_save: None,
        job: jobs.len() - 1,
    }
}

/// Adds a greedy generation job and returns its case.
fn generate_case(
    jobs: &mut Vec<Value>,
    name: String,
    dir: PathBuf,
    prompts: Vec<Vec<i64>>,
    eos: Option<i64>,
) -> GenerateCase {
    let max_new_tokens = 10;
    jobs.push(
        json!({"op": "generate", "model_dir": dir, "prompts": prompts,
                     "max_new_tokens": max_new_tokens, "eos_token_id": eos}),
    );
    GenerateCase {
        name,
        dir,
        prompts,
        max_new_tokens,
        eos,
        job: jobs.len() - 1,
    }
}

/// Checks one logits case; `Err` describes the disagreement.
fn check_logits(case: &LogitsCase, peer: &Value) -> Result<String, String> {
    let (model, mut vs, config) = load_hf(&case.dir, Device::Cpu).map_err(|e| format!("{e:#}"))?;
    let stored = dtype_name(vs.kind()).unwrap();
    if peer["dtype"] != stored {
        return Err(format!(
            "transformers loaded {} weights as {}",
            stored, peer["dtype"]
        ));
    }
    // The peer upcasts to fp32 too: both compute on the same (exactly widened) weights.
    vs.float();
    let ids = Tensor::read_safetensors(&case.ids).unwrap().remove(0).1;
    let hf = Tensor::read_safetensors(&case.hf_logits)
        .unwrap()
        .remove(0)
        .1;
    let ours = tch::no_grad(|| model.forward(&ids));
    let error = relative_error(&ours, &hf);
    if error > TOLERANCE {
        return Err(format!("relative logits error {error:.3e} > {TOLERANCE:e}"));
    }
    if let Some(before) = &case.before_save {
        let error = relative_error(before, &hf);
        if error > TOLERANCE {
            return Err(format!(
                "relative error {error:.3e} against the model before saving"
            ));
        }
    }
    if peer["class"] != case.expected_class {
        return Err(format!(
            "transformers built {} instead of {}",
            peer["class"], case.expected_class
        ));
    }
    if peer["lm_head_is_embedding"] != json!(config.tie_word_embeddings) {
        return Err(format!("tying differs: transformers {peer}"));
    }
    if peer["sliding_window"] != json!(config.sliding_window) {
        return Err(format!(
            "sliding_window: ours {:?}, transformers {}",
            config.sliding_window, peer["sliding_window"]
        ));
    }
    if config.sliding_window.is_some() {
        // The case must exercise the window: without it our logits must be far off.
        let unwindowed = LlamaConfig {
            sliding_window: None,
            model_type: "llama".into(),
            ..config.clone()
        };
        let mut plain_vs = VarStore::new(Device::Cpu);
        let plain = Llama::new(&plain_vs.root(), &unwindowed).unwrap();
        plain_vs.copy(&vs).unwrap();
        let plain_error = relative_error(&tch::no_grad(|| plain.forward(&ids)), &hf);
        if plain_error < 1e-3 {
            return Err(format!(
                "window not exercised: without it the error is only {plain_error:.3e}"
            ));
        }
    }
    Ok(format!("{stored}, relative error {error:.2e}"))
}

fn check_generation(case: &GenerateCase, peer: &Value) -> Result<String, String> {
    let (model, _, _) = load_hf(&case.dir, Device::Cpu).map_err(|e| format!("{e:#}"))?;
    let ours = generate_greedy(
        &model,
        &case.prompts,
        case.max_new_tokens,
        case.eos.as_slice(),
    )
    .map_err(|e| format!("{e:#}"))?;
    let theirs: Vec<Vec<i64>> = serde_json::from_value(peer["tokens"].clone()).unwrap();
    if ours != theirs {
        return Err(format!("ours {ours:?}\ntransformers {theirs:?}"));
    }
    Ok(format!("{ours:?}"))
}

#[test]
fn transformers_agrees_on_logits_and_greedy_generation() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let mut jobs = Vec::new();
    let mut logits_cases = Vec::new();

    // Folders written by save_hf (vocabulary 97, as in tiny_config).
    let untied_mqa = LlamaConfig {
        tie_word_embeddings: false,
        num_key_value_heads: 1,
        ..tiny_config()
    };
    let qwen2 = LlamaConfig {
        architectures: vec!["Qwen2ForCausalLM".into()],
        model_type: "qwen2".into(),
        ..tiny_config()
    };
    let biased = LlamaConfig {
        attention_bias: true,
        mlp_bias: true,
        tie_word_embeddings: false,
        ..tiny_config()
    };
    for (name, config) in [
        ("tied_gqa", tiny_config()),
        ("untied_mqa", untied_mqa),
        ("mistral_window_5", mistral_config(5)),
        ("llama_attention_and_mlp_bias", biased),
        ("qwen2_qkv_bias", qwen2.clone()),
    ] {
        let (_, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 11).unwrap();
        save_hf(&root.join(name), &vs, &config).unwrap();
        let class = LlamaConfig::architecture_for(&config.model_type).unwrap();
        logits_cases.push(logits_case(&mut jobs, root, name, class));
    }

    // Sharded folders written by save_hf_sharded, which transformers must read through
    // the index. The bf16 model is rounded to bf16 first, so its fp32 logits before
    // saving are what the saved weights give.
    let untied = LlamaConfig {
        tie_word_embeddings: false,
        ..tiny_config()
    };
    for (name, config, kind) in [
        ("sharded_fp32_untied", untied, Kind::Float),
        ("sharded_bf16_qwen2", qwen2, Kind::BFloat16),
    ] {
        let dir = root.join(name);
        let (model, mut vs) = Llama::init(&config, Device::Cpu, Kind::Float, 13).unwrap();
        vs.set_kind(kind);
        vs.float();
        let tensors = vs.variables().into_iter().collect();
        save_hf_sharded(&dir, tensors, &config, kind, SMALL_SHARD).unwrap();
        let shards = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("model-")
            })
            .count();
        assert!(
            shards >= 3
                && dir.join(WEIGHTS_INDEX_FILE).exists()
                && !dir.join(WEIGHTS_FILE).exists(),
            "{name}: {shards} shards"
        );
        let class = LlamaConfig::architecture_for(&config.model_type).unwrap();
        let mut case = logits_case(&mut jobs, root, name, class);
        let ids = Tensor::read_safetensors(&case.ids).unwrap().remove(0).1;
        case.before_save = Some(tch::no_grad(|| model.forward(&ids)));
        logits_cases.push(case);
    }

    // Folders written by transformers' save_pretrained (its naming, its init).
    let hf_common = json!({"vocab_size": 97, "hidden_size": 64, "intermediate_size": 172,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "initializer_range": 0.1});
    let hf_made = [
        (
            "hf_llama_untied",
            "LlamaForCausalLM",
            json!({"model_type": "llama", "tie_word_embeddings": false,
            "rope_theta": 500000.0, "rms_norm_eps": 1e-5}),
        ),
        (
            "hf_mistral_tied_window_4",
            "MistralForCausalLM",
            json!({"model_type": "mistral",
            "tie_word_embeddings": true, "sliding_window": 4}),
        ),
        (
            // A window that use_sliding_window=false switches off, as in the real Qwen2 configs.
            "hf_qwen2_window_off",
            "Qwen2ForCausalLM",
            json!({"model_type": "qwen2", "tie_word_embeddings": true,
            "sliding_window": 4, "use_sliding_window": false, "max_window_layers": 0}),
        ),
    ];
    for (name, class, extra) in hf_made {
        let mut config = hf_common.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jobs.push(json!({"op": "make", "config": config, "seed": 3, "model_dir": root.join(name)}));
        logits_cases.push(logits_case(&mut jobs, root, name, class));
    }

    // Greedy generation, without EOS and with an EOS our own run is known to emit.
    let prompts: Vec<Vec<i64>> = [4usize, 7, 4, 1]
        .iter()
        .enumerate()
        .map(|(i, &n)| token_list(n, 97, i as u64 + 40))
        .collect();
    let tied_dir = root.join("tied_gqa");
    let (tied, _, _) = load_hf(&tied_dir, Device::Cpu).unwrap();
    let eos = mid_sequence_eos(&generate_greedy(&tied, &prompts, 10, &[]).unwrap());
    let windowed_prompts = vec![token_list(3, 97, 50), token_list(6, 97, 51)];
    let generate_cases = [
        generate_case(
            &mut jobs,
            "tied_gqa, no eos".into(),
            tied_dir.clone(),
            prompts.clone(),
            None,
        ),
        generate_case(
            &mut jobs,
            format!("tied_gqa, eos {eos}"),
            tied_dir,
            prompts,
            Some(eos),
        ),
        generate_case(
            &mut jobs,
            "mistral_window_5, past the window".into(),
            root.join("mistral_window_5"),
            windowed_prompts,
            None,
        ),
    ];

    let jobs_path = root.join("jobs.json");
    std::fs::write(&jobs_path, Value::Array(jobs).to_string()).unwrap();
    let peer = rpo_peer::run_json("llama_peer.py", &[jobs_path.to_str().unwrap()]);
    let results = peer["results"]
        .as_array()
        .expect("the peer prints a results list");

    let mut failures = Vec::new();
    let mut report = |name: &str, outcome: Result<String, String>| match outcome {
        Ok(summary) => println!("ok   {name}: {summary}"),
        Err(problem) => {
            println!("FAIL {name}: {problem}");
            failures.push(format!("{name}: {problem}"));
        }
    };
    for case in &logits_cases {
        report(case.name, check_logits(case, &results[case.job]));
    }
    for case in &generate_cases {
        report(&case.name, check_generation(case, &results[case.job]));
    }
    assert!(
        failures.is_empty(),
        "rpo-model disagrees with transformers:\n{}",
        failures.join("\n")
    );
}

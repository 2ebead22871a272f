//! LlamaConfig against real Hugging Face config.json files and the presets.

use rpo_model::{preset, LlamaConfig, PRESET_NAMES};

// meta-llama/Llama-2-7b-hf/config.json (transformers 4 naming, no rope_theta).
const LLAMA_2_7B: &str = r#"{
  "_name_or_path": "meta-llama/Llama-2-7b-hf",
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 4096,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.31.0.dev0",
  "use_cache": true, "vocab_size": 32000
}"#;

// meta-llama/Llama-2-13b-hf/config.json
const LLAMA_2_13B: &str = r#"{
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
  "intermediate_size": 13824, "max_position_embeddings": 4096, "model_type": "llama",
  "num_attention_heads": 40, "num_hidden_layers": 40, "num_key_value_heads": 40,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "tie_word_embeddings": false,
  "torch_dtype": "float16", "transformers_version": "4.32.0.dev0", "use_cache": true, "vocab_size": 32000
}"#;

// mistralai/Mistral-7B-v0.1/config.json
const MISTRAL_7B: &str = r#"{
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000
}"#;

// Qwen/Qwen2.5-0.5B/config.json: a window that use_sliding_window switches off.
const QWEN2_5_0_5B: &str = r#"{
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true, "use_mrope": false,
  "use_sliding_window": false, "vocab_size": 151936
}"#;

fn parse(text: &str) -> serde_json::Result<LlamaConfig> {
    serde_json::from_str(text)
}

fn error_of(text: &str) -> String {
    format!("{:#}", parse(text).expect_err("config should be rejected"))
}

#[test]
fn real_configs_parse_to_the_shape_presets() {
    assert_eq!(parse(LLAMA_2_7B).unwrap(), preset("llama-2-7b").unwrap());
    assert_eq!(parse(LLAMA_2_13B).unwrap(), preset("llama-2-13b").unwrap());
    assert_eq!(parse(MISTRAL_7B).unwrap(), preset("mistral-7b").unwrap());
    let qwen = parse(QWEN2_5_0_5B).unwrap();
    assert_eq!(qwen, preset("qwen2.5-0.5b").unwrap());
    assert_eq!(qwen.sliding_window, None);
    assert_eq!(qwen.projection_biases(), (true, false));
}

#[test]
fn parameter_counts_match_the_published_models() {
    assert_eq!(
        preset("llama-2-7b").unwrap().num_parameters(),
        6_738_415_616
    );
    assert_eq!(
        preset("llama-2-13b").unwrap().num_parameters(),
        13_015_864_320
    );
    assert_eq!(
        preset("mistral-7b").unwrap().num_parameters(),
        7_241_732_096
    );
}

#[test]
fn transformers_5_naming_is_understood() {
    // What transformers 5 save_pretrained writes: rope_parameters and dtype.
    let text = r#"{"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 172,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "dtype": "bfloat16", "pad_token_id": null, "eos_token_id": [128001, 128009],
        "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}"#;
    let config = parse(text).unwrap();
    assert_eq!(config.rope_theta, 500000.0);
    assert_eq!(config.torch_dtype.as_deref(), Some("bfloat16"));
    assert_eq!(config.architectures, ["LlamaForCausalLM"]);
    assert_eq!(
        config.eos_token_id.as_ref().unwrap().ids(),
        [128001, 128009]
    );
    assert_eq!(config.head_dim(), 16);
}

#[test]
fn defaults_follow_transformers() {
    let text = r#"{"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
        "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4}"#;
    let config = parse(text).unwrap();
    assert_eq!(config.num_key_value_heads, 4);
    assert_eq!(config.rope_theta, 10_000.0);
    assert_eq!(config.rms_norm_eps, 1e-6);
    assert!(!config.tie_word_embeddings && !config.attention_bias);
    assert_eq!(config.head_dim(), 16);
}

#[test]
fn unsupported_computation_is_an_error_not_ignored() {
    let llama3 = LLAMA_2_7B.replace(
        r#""rope_scaling": null"#,
        r#""rope_scaling": {"factor": 8.0, "rope_type": "llama3"}"#,
    );
    assert!(
        error_of(&llama3).contains("llama3"),
        "{}",
        error_of(&llama3)
    );
    let gpt2 = LLAMA_2_7B.replace(r#""model_type": "llama""#, r#""model_type": "gpt2""#);
    assert!(
        error_of(&gpt2).contains("llama, mistral"),
        "{}",
        error_of(&gpt2)
    );
    let gelu = LLAMA_2_7B.replace(r#""silu""#, r#""gelu""#);
    assert!(error_of(&gelu).contains("gelu"));
    let windowed_llama =
        LLAMA_2_7B.replace(r#""vocab_size""#, r#""sliding_window": 16, "vocab_size""#);
    assert!(error_of(&windowed_llama).contains("sliding_window"));
    let bad_gqa = LLAMA_2_7B.replace(
        r#""num_key_value_heads": 32"#,
        r#""num_key_value_heads": 5"#,
    );
    assert!(error_of(&bad_gqa).contains("num_key_value_heads"));
    let windowed_qwen = QWEN2_5_0_5B.replace(
        r#""use_sliding_window": false"#,
        r#""use_sliding_window": true"#,
    );
    assert!(error_of(&windowed_qwen).contains("use_sliding_window"));
}

#[test]
fn written_config_reads_back_identically() {
    for name in PRESET_NAMES {
        let config = preset(name).unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(parse(&text).unwrap(), config, "{name}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(json.get("rope_theta").is_some() && json.get("architectures").is_some());
    }
}

#[test]
fn unknown_preset_lists_valid_names() {
    let error = preset("llama-9000").unwrap_err().to_string();
    for name in PRESET_NAMES {
        assert!(error.contains(name), "{error}");
    }
}

#[test]
fn small_presets_have_the_intended_shapes() {
    let tiny = preset("tiny").unwrap();
    assert_eq!(
        (
            tiny.hidden_size,
            tiny.num_hidden_layers,
            tiny.num_attention_heads
        ),
        (64, 2, 4)
    );
    assert_eq!((tiny.num_key_value_heads, tiny.intermediate_size), (2, 172));
    assert!(tiny.tie_word_embeddings);
    let small = preset("small").unwrap();
    assert_eq!(
        (
            small.hidden_size,
            small.num_hidden_layers,
            small.num_attention_heads
        ),
        (256, 4, 8)
    );
    assert_eq!(small.num_key_value_heads, 4);
}

//! Named model shapes: small ones to run here, and the shapes of real checkpoints
//! (for memory and throughput accounting; their weights come from `load_hf`).

use crate::config::{LlamaConfig, TokenIds};
use crate::error::{ModelError, Result};

pub use crate::names::PRESET_NAMES;

/// The configuration called `name`. "tiny" and "small" have a placeholder
/// `vocab_size` of 256: callers set it from their tokenizer.
pub fn preset(name: &str) -> Result<LlamaConfig> {
    let config = match name {
        // Tests and the default run: GQA (2 query heads per kv head), tied embeddings.
        "tiny" => LlamaConfig {
            tie_word_embeddings: true,
            ..llama(256, 64, 172, 2, 4, 2)
        },
        // Benchmarks: still small, untied like the real Llama 2.
        "small" => llama(256, 256, 688, 4, 8, 4),
        // meta-llama/Llama-2-7b-hf
        "llama-2-7b" => LlamaConfig {
            rms_norm_eps: 1e-5,
            max_position_embeddings: 4096,
            torch_dtype: Some("float16".into()),
            ..llama(32000, 4096, 11008, 32, 32, 32)
        },
        // meta-llama/Llama-2-13b-hf
        "llama-2-13b" => LlamaConfig {
            rms_norm_eps: 1e-5,
            max_position_embeddings: 4096,
            torch_dtype: Some("float16".into()),
            ..llama(32000, 5120, 13824, 40, 40, 40)
        },
        // mistralai/Mistral-7B-v0.1
        "mistral-7b" => LlamaConfig {
            architectures: vec!["MistralForCausalLM".into()],
            model_type: "mistral".into(),
            rms_norm_eps: 1e-5,
            max_position_embeddings: 32768,
            sliding_window: Some(4096),
            torch_dtype: Some("bfloat16".into()),
            ..llama(32000, 4096, 14336, 32, 32, 8)
        },
        // Qwen/Qwen2.5-0.5B (q/k/v biases are implied by model_type "qwen2").
        "qwen2.5-0.5b" => LlamaConfig {
            architectures: vec!["Qwen2ForCausalLM".into()],
            model_type: "qwen2".into(),
            rope_theta: 1e6,
            max_position_embeddings: 32768,
            bos_token_id: Some(151643),
            eos_token_id: Some(TokenIds::One(151643)),
            tie_word_embeddings: true,
            torch_dtype: Some("bfloat16".into()),
            ..llama(151936, 896, 4864, 24, 14, 2)
        },
        other => {
            return Err(ModelError::UnknownPreset {
                name: other.to_string(),
            })
        }
    };
    config.validate()?;
    Ok(config)
}

/// A Llama config with transformers' defaults for everything but the shape.
fn llama(
    vocab_size: i64,
    hidden_size: i64,
    intermediate_size: i64,
    num_hidden_layers: i64,
    num_attention_heads: i64,
    num_key_value_heads: i64,
) -> LlamaConfig {
    LlamaConfig {
        architectures: vec!["LlamaForCausalLM".into()],
        model_type: "llama".into(),
        vocab_size,
        hidden_size,
        intermediate_size,
        num_hidden_layers,
        num_attention_heads,
        num_key_value_heads,
        head_dim: None,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        max_position_embeddings: 2048,
        bos_token_id: Some(1),
        eos_token_id: Some(TokenIds::One(2)),
        pad_token_id: None,
        tie_word_embeddings: false,
        torch_dtype: None,
        initializer_range: 0.02,
        hidden_act: "silu".into(),
        attention_bias: false,
        mlp_bias: false,
        sliding_window: None,
    }
}

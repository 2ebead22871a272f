//! The model configuration, read from and written to a Hugging Face `config.json`
//! (`model_type` llama, mistral or qwen2).
//!
//! Field names are Hugging Face's. Reading tolerates the fields we do not use
//! (`use_cache`, `transformers_version`, ...) and both generations of naming:
//! transformers 4 writes `rope_theta` and `torch_dtype`, transformers 5 writes
//! `rope_parameters` and `dtype`. Anything that would change the computation and
//! that we do not implement (RoPE scaling, another activation) is an error, never
//! silently ignored. Writing emits only fields transformers reads back with the
//! same meaning.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ModelError, Result};

/// A token id that Hugging Face allows to be one id or a list (Llama 3's `eos_token_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(i64),
    Many(Vec<i64>),
}

impl TokenIds {
    pub fn ids(&self) -> Vec<i64> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// Configuration of a Llama-family decoder (`model_type` "llama", "mistral" or "qwen2").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct LlamaConfig {
    pub architectures: Vec<String>,
    pub model_type: String,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    /// Per-head width; `None` means `hidden_size / num_attention_heads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<i64>,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: i64,
    pub bos_token_id: Option<i64>,
    pub eos_token_id: Option<TokenIds>,
    pub pad_token_id: Option<i64>,
    pub tie_word_embeddings: bool,
    /// Storage dtype name ("float32", "bfloat16", "float16"); `save_hf` sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
    pub initializer_range: f64,
    pub hidden_act: String,
    /// Bias on q/k/v/o projections (Llama only; Qwen2 always has q/k/v biases, see
    /// [`LlamaConfig::projection_biases`]).
    pub attention_bias: bool,
    /// Bias on gate/up/down projections (Llama only).
    pub mlp_bias: bool,
    /// Mistral's sliding attention window: each token sees itself and the
    /// `sliding_window - 1` tokens before it. (Qwen2's window is used only with
    /// `use_sliding_window`, which is not supported; its `sliding_window` reads as `None`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<i64>,
}

impl LlamaConfig {
    /// Reads and validates a `config.json`: [`ModelError::MissingFile`] if there is
    /// none, [`ModelError::Json`] if it does not parse, [`ModelError::Config`] if it
    /// describes a model this crate does not compute.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::io("cannot read model config", path, e))?;
        let raw: RawConfig = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            what: "model config ",
            path: path.to_path_buf(),
            source,
        })?;
        LlamaConfig::try_from(raw).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Writes the config as pretty JSON.
    pub fn to_file(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| ModelError::io("cannot write model config", path, e))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> i64 {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Whether the (q/k/v, o) attention projections carry biases: Llama per
    /// `attention_bias`, Qwen2 always on q/k/v and never on o, Mistral never.
    pub fn projection_biases(&self) -> (bool, bool) {
        match self.model_type.as_str() {
            "qwen2" => (true, false),
            _ => (self.attention_bias, self.attention_bias),
        }
    }

    /// Number of parameters of the model this config describes (tied embeddings counted once).
    pub fn num_parameters(&self) -> i64 {
        let (hidden, inner, head_dim) = (self.hidden_size, self.intermediate_size, self.head_dim());
        let (q_width, kv_width) = (
            self.num_attention_heads * head_dim,
            self.num_key_value_heads * head_dim,
        );
        let attention = hidden * (q_width + 2 * kv_width) + q_width * hidden;
        let (qkv_bias, o_bias) = self.projection_biases();
        let attention_bias =
            if qkv_bias { q_width + 2 * kv_width } else { 0 } + if o_bias { hidden } else { 0 };
        let mlp = 3 * hidden * inner + if self.mlp_bias { 2 * inner + hidden } else { 0 };
        let layer = attention + attention_bias + mlp + 2 * hidden;
        let embeddings = self.vocab_size * hidden * if self.tie_word_embeddings { 1 } else { 2 };
        embeddings + self.num_hidden_layers * layer + hidden
    }

    /// The `*ForCausalLM` class transformers instantiates for this `model_type`.
    pub fn architecture_for(model_type: &str) -> Result<&'static str> {
        match model_type {
            "llama" => Ok("LlamaForCausalLM"),
            "mistral" => Ok("MistralForCausalLM"),
            "qwen2" => Ok("Qwen2ForCausalLM"),
            other => Err(ModelError::UnsupportedArchitecture {
                model_type: other.to_string(),
            }),
        }
    }

    /// Checks that the configuration describes a model this crate computes exactly
    /// as transformers does.
    pub fn validate(&self) -> Result<()> {
        Self::architecture_for(&self.model_type)?;
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
        ] {
            check(name, value > 0, || {
                format!("{name} must be positive, got {value}")
            })?;
        }
        check(
            "num_key_value_heads",
            self.num_attention_heads % self.num_key_value_heads == 0,
            || {
                format!(
                    "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                    self.num_attention_heads, self.num_key_value_heads
                )
            },
        )?;
        check(
            "head_dim",
            self.head_dim.is_some() || self.hidden_size % self.num_attention_heads == 0,
            || {
                format!("hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is unset",
            self.hidden_size,
            self.num_attention_heads)
            },
        )?;
        let head_dim = self.head_dim();
        check("head_dim", head_dim > 0 && head_dim % 2 == 0, || {
            format!("head_dim must be positive and even for rotary embeddings, got {head_dim}")
        })?;
        check("hidden_act", self.hidden_act == "silu", || {
            format!(
                "hidden_act {:?} is not supported (only \"silu\")",
                self.hidden_act
            )
        })?;
        check(
            "rms_norm_eps",
            self.rms_norm_eps > 0.0 && self.rope_theta > 0.0,
            || "rms_norm_eps and rope_theta must be positive".to_string(),
        )?;
        if let Some(window) = self.sliding_window {
            check("sliding_window", self.model_type == "mistral", || {
                format!(
                    "sliding_window is only honoured by model_type \"mistral\" in transformers, \
                 not by {:?}",
                    self.model_type
                )
            })?;
            check("sliding_window", window > 0, || {
                format!("sliding_window must be positive, got {window}")
            })?;
        }
        if self.attention_bias || self.mlp_bias {
            check("attention_bias", self.model_type == "llama", || {
                "attention_bias / mlp_bias are only honoured by model_type \"llama\" in transformers"
                    .to_string()
            })?;
        }
        Ok(())
    }
}

/// What a `config.json` may contain; unknown fields are ignored.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Vec<String>,
    model_type: String,
    vocab_size: i64,
    hidden_size: i64,
    intermediate_size: i64,
    num_hidden_layers: i64,
    num_attention_heads: i64,
    num_key_value_heads: Option<i64>,
    head_dim: Option<i64>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    rope_scaling: Option<Value>,
    #[serde(default = "default_max_position_embeddings")]
    max_position_embeddings: i64,
    #[serde(default = "default_bos")]
    bos_token_id: Option<i64>,
    #[serde(default = "default_eos")]
    eos_token_id: Option<TokenIds>,
    pad_token_id: Option<i64>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(alias = "dtype")]
    torch_dtype: Option<String>,
    #[serde(default = "default_initializer_range")]
    initializer_range: f64,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    sliding_window: Option<i64>,
    /// Qwen2: the window applies only when this is set.
    #[serde(default)]
    use_sliding_window: bool,
}

// transformers' LlamaConfig defaults, for fields a config.json may omit.
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_max_position_embeddings() -> i64 {
    2048
}
fn default_bos() -> Option<i64> {
    Some(1)
}
fn default_eos() -> Option<TokenIds> {
    Some(TokenIds::One(2))
}
fn default_initializer_range() -> f64 {
    0.02
}
fn default_hidden_act() -> String {
    "silu".into()
}
const DEFAULT_ROPE_THETA: f64 = 10_000.0;

/// The RoPE base, from transformers 4's `rope_theta`/`rope_scaling` or 5's
/// `rope_parameters`. Only the plain (unscaled) rotary embedding is implemented.
fn rope_theta(raw: &RawConfig) -> Result<f64> {
    for (field, params) in [
        ("rope_scaling", &raw.rope_scaling),
        ("rope_parameters", &raw.rope_parameters),
    ] {
        let Some(params) = params.as_ref().filter(|p| !p.is_null()) else {
            continue;
        };
        let kind = params
            .get("rope_type")
            .or_else(|| params.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        check(field, kind == "default", || {
            format!("{field} with rope_type {kind:?} is not supported (only default RoPE)")
        })?;
    }
    let nested = raw
        .rope_parameters
        .as_ref()
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64);
    Ok(raw.rope_theta.or(nested).unwrap_or(DEFAULT_ROPE_THETA))
}

impl TryFrom<RawConfig> for LlamaConfig {
    type Error = ModelError;

    fn try_from(raw: RawConfig) -> Result<Self> {
        let rope_theta = rope_theta(&raw)?;
        let sliding_window = match raw.model_type.as_str() {
            "qwen2" if raw.use_sliding_window => {
                return Err(ModelError::field(
                    "use_sliding_window",
                    "Qwen2 with use_sliding_window is not supported".into(),
                ))
            }
            // transformers drops Qwen2's window unless use_sliding_window is set.
            "qwen2" => None,
            _ => raw.sliding_window,
        };
        let architectures = if raw.architectures.is_empty() {
            vec![Self::architecture_for(&raw.model_type)?.to_string()]
        } else {
            raw.architectures
        };
        let config = LlamaConfig {
            architectures,
            model_type: raw.model_type,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim: raw.head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            max_position_embeddings: raw.max_position_embeddings,
            bos_token_id: raw.bos_token_id,
            eos_token_id: raw.eos_token_id,
            pad_token_id: raw.pad_token_id,
            tie_word_embeddings: raw.tie_word_embeddings,
            torch_dtype: raw.torch_dtype,
            initializer_range: raw.initializer_range,
            hidden_act: raw.hidden_act,
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            sliding_window,
        };
        config.validate()?;
        Ok(config)
    }
}

/// `Ok` if `ok`, else [`ModelError::ConfigField`] for `field` with `reason()`.
fn check(field: &'static str, ok: bool, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ModelError::field(field, reason()))
    }
}

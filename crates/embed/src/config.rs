//! The BERT configuration, read from a Hugging Face `config.json` (`model_type` "bert").
//!
//! Only what changes the computation is kept. Anything that would change it and that
//! this crate does not implement (another activation, relative position embeddings, a
//! decoder) is an error, never silently ignored; fields without effect on inference
//! (dropout rates, `initializer_range`, `use_cache`, ...) are tolerated.

use std::path::Path;

use serde::Deserialize;

use crate::error::{EmbedError, Result};

/// Configuration of a BERT encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: i64,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: i64,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    #[serde(default)]
    pub is_decoder: bool,
    #[serde(default)]
    pub add_cross_attention: bool,
}

// transformers' BertConfig defaults, for fields a config.json may omit.
fn default_model_type() -> String {
    "bert".into()
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_max_position_embeddings() -> i64 {
    512
}
fn default_type_vocab_size() -> i64 {
    2
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EmbedError::io("cannot read model config", path, e))?;
        let config: BertConfig =
            serde_json::from_str(&text).map_err(|e| EmbedError::json("BERT config ", path, e))?;
        config.validate().map_err(|e| {
            EmbedError::Config(format!("unsupported model config {}: {e}", path.display()))
        })?;
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> i64 {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks that the configuration describes a model this crate computes exactly as
    /// transformers' `BertModel` does.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.model_type == "bert",
            Config,
            "model_type {:?} is not supported (only \"bert\")",
            self.model_type
        );
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            ensure!(value > 0, Config, "{name} must be positive, got {value}");
        }
        ensure!(
            self.hidden_size % self.num_attention_heads == 0,
            Config,
            "hidden_size ({}) is not a multiple of num_attention_heads ({})",
            self.hidden_size,
            self.num_attention_heads
        );
        // transformers' "gelu" is the exact (erf) form; the tanh approximations differ.
        ensure!(
            self.hidden_act == "gelu",
            Config,
            "hidden_act {:?} is not supported (only \"gelu\", the erf form)",
            self.hidden_act
        );
        ensure!(
            self.position_embedding_type == "absolute",
            Config,
            "position_embedding_type {:?} is not supported (only \"absolute\")",
            self.position_embedding_type
        );
        ensure!(
            !self.is_decoder && !self.add_cross_attention,
            Config,
            "decoder / cross-attention BERT configurations are not supported"
        );
        ensure!(
            self.layer_norm_eps > 0.0,
            Config,
            "layer_norm_eps must be positive"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> anyhow::Result<BertConfig> {
        let config: BertConfig = serde_json::from_str(json)?;
        config.validate()?;
        Ok(config)
    }

    const MINILM: &str = r#"{"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_size": 384, "intermediate_size": 1536,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
        "position_embedding_type": "absolute", "type_vocab_size": 2, "use_cache": true,
        "vocab_size": 30522}"#;

    #[test]
    fn reads_minilm_config() {
        let c = parse(MINILM).unwrap();
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.head_dim()),
            (384, 6, 32)
        );
        assert_eq!(c.layer_norm_eps, 1e-12);
    }

    #[test]
    fn rejects_what_it_does_not_compute() {
        for (from, to) in [
            (r#""hidden_act": "gelu""#, r#""hidden_act": "gelu_new""#),
            (r#""model_type": "bert""#, r#""model_type": "roberta""#),
            (r#""absolute""#, r#""relative_key""#),
            (
                r#""num_attention_heads": 12"#,
                r#""num_attention_heads": 7"#,
            ),
        ] {
            let json = MINILM.replace(from, to);
            assert!(parse(&json).is_err(), "{to} was accepted");
        }
    }
}

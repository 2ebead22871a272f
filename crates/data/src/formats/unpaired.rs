//! Unpaired feedback: `{"prompt": ..., "completion": ..., "label": true|false}`, where
//! `label: true` marks a desirable completion; as text or, in TRL's conversational
//! format, as message lists.

use super::record::{FieldResult, Parsed, Record};
use crate::conversational::ConversationalExample;
use crate::example::UnpairedExample;

pub(crate) fn parse(record: &Record) -> FieldResult<Parsed<UnpairedExample>> {
    if record.is_list("completion") || record.is_list("prompt") {
        return Ok(Parsed::Conversational(ConversationalExample::Unpaired {
            prompt: record.optional_messages("prompt")?,
            completion: record.messages("completion")?.clone(),
            desirable: record.bool("label")?,
        }));
    }
    Ok(Parsed::Plain(UnpairedExample {
        prompt: record.non_empty_str("prompt")?.to_string(),
        completion: record.str("completion")?.to_string(),
        desirable: record.bool("label")?,
    }))
}

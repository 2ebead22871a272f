//! JSONL unpaired feedback: `{"prompt": ..., "completion": ..., "label": true|false}`,
//! where `label: true` marks a desirable completion; prompt and completion are strings
//! or (conversational) lists of messages, see [`crate::conversation`].

use super::record::{FieldResult, Record};
use crate::chat_template::ChatTemplate;
use crate::conversation::{unpaired_example, Turns};
use crate::example::UnpairedExample;

pub(crate) fn parse(record: &Record, chat: Option<&ChatTemplate>) -> FieldResult<UnpairedExample> {
    // Only a list of messages is conversational; anything else reads (or fails) as text.
    if !record.value("prompt")?.is_array() {
        return Ok(UnpairedExample {
            prompt: record.non_empty_str("prompt")?.to_string(),
            completion: record.str("completion")?.to_string(),
            desirable: record.bool("label")?,
        });
    }
    let turns = |key: &str| Turns::parse(record.value(key)?, &record.field_name(key));
    unpaired_example(
        turns("prompt")?,
        turns("completion")?,
        record.bool("label")?,
        chat,
    )
}

//! JSONL paired preferences: `{"prompt": ..., "chosen": ..., "rejected": ...}`, each
//! a string, or (TRL's conversational format) a list of `{role, content}` messages
//! rendered with the tokenizer's chat template (see [`crate::conversation`]).
//! Other fields (such as the synthetic suite's `family`) are ignored.

use super::record::{FieldResult, Record};
use crate::chat_template::ChatTemplate;
use crate::conversation::{paired_example, Turns};
use crate::example::PairedExample;

pub(crate) fn parse(record: &Record, chat: Option<&ChatTemplate>) -> FieldResult<PairedExample> {
    // Only a list of messages is conversational; anything else reads (or fails) as text.
    if !record.value("prompt")?.is_array() {
        return Ok(PairedExample {
            prompt: record.non_empty_str("prompt")?.to_string(),
            chosen: record.str("chosen")?.to_string(),
            rejected: record.str("rejected")?.to_string(),
        });
    }
    let turns = |key: &str| Turns::parse(record.value(key)?, &record.field_name(key));
    paired_example(turns("prompt")?, turns("chosen")?, turns("rejected")?, chat)
}

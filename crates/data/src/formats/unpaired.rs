//! Unpaired feedback: `{"prompt": ..., "completion": ..., "label": true|false}`, where
//! `label: true` marks a desirable completion; as text or, in TRL's conversational
//! format, as message lists, rendered with the tokenizer's chat template when there is
//! one (see [`crate::conversation`]) and otherwise kept as messages.

use super::record::{FieldResult, Parsed, Record};
use crate::chat_template::ChatTemplate;
use crate::conversation::{unpaired_example, Turns};
use crate::conversational::ConversationalExample;
use crate::example::UnpairedExample;

pub(crate) fn parse(
    record: &Record,
    chat: Option<&ChatTemplate>,
) -> FieldResult<Parsed<UnpairedExample>> {
    if record.is_list("completion") || record.is_list("prompt") {
        if let (Some(chat), true) = (chat, record.is_list("prompt")) {
            let turns = |key: &str| Turns::parse(record.required(key)?, &record.field_name(key));
            let example = unpaired_example(
                turns("prompt")?,
                turns("completion")?,
                record.bool("label")?,
                Some(chat),
            )?;
            return Ok(Parsed::Plain(example));
        }
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

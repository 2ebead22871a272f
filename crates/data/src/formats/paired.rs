//! Paired preferences: `{"prompt": ..., "chosen": ..., "rejected": ...}`, as text or, in
//! TRL's conversational format, as lists of `{role, content}` messages, rendered with the
//! tokenizer's chat template when there is one (see [`crate::conversation`]) and otherwise
//! kept as messages (refused later, by name). Other fields (such as the synthetic suite's
//! `family`) are ignored.

use super::record::{FieldResult, Parsed, Record};
use crate::chat_template::ChatTemplate;
use crate::conversation::{paired_example, Turns};
use crate::conversational::ConversationalExample;
use crate::example::PairedExample;

pub(crate) fn parse(
    record: &Record,
    chat: Option<&ChatTemplate>,
) -> FieldResult<Parsed<PairedExample>> {
    if record.is_list("chosen") || record.is_list("prompt") {
        if let (Some(chat), true) = (chat, record.is_list("prompt")) {
            let turns = |key: &str| Turns::parse(record.required(key)?, &record.field_name(key));
            let example = paired_example(
                turns("prompt")?,
                turns("chosen")?,
                turns("rejected")?,
                Some(chat),
            )?;
            return Ok(Parsed::Plain(example));
        }
        return Ok(Parsed::Conversational(ConversationalExample::Paired {
            prompt: record.optional_messages("prompt")?,
            chosen: record.messages("chosen")?.clone(),
            rejected: record.messages("rejected")?.clone(),
        }));
    }
    Ok(Parsed::Plain(PairedExample {
        prompt: record.non_empty_str("prompt")?.to_string(),
        chosen: record.str("chosen")?.to_string(),
        rejected: record.str("rejected")?.to_string(),
    }))
}

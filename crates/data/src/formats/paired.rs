//! Paired preferences: `{"prompt": ..., "chosen": ..., "rejected": ...}`, as text or, in
//! TRL's conversational format, as message lists. Other fields (such as the synthetic
//! suite's `family`) are ignored.

use super::record::{FieldResult, Parsed, Record};
use crate::conversational::ConversationalExample;
use crate::example::PairedExample;

pub(crate) fn parse(record: &Record) -> FieldResult<Parsed<PairedExample>> {
    if record.is_list("chosen") || record.is_list("prompt") {
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

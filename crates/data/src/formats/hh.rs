//! Raw Anthropic HH records: `{"chosen": dialogue, "rejected": dialogue}`.
//!
//! Both dialogues repeat the whole conversation. The prompt is everything up to and
//! including the last `"\n\nAssistant:"` of `chosen` (as in the DPO and HALOs loaders);
//! the responses are what follows it in each dialogue, so they usually start with a space.
//! The turns are kept in HH's own `Human:` / `Assistant:` form, which is also the chat
//! format of the synthetic suite (HALOs rewrites them to its configured chat tags).

use super::record::{FieldResult, Record};
use crate::example::PairedExample;

pub const ASSISTANT_TURN: &str = "\n\nAssistant:";

/// Splits one HH record into prompt and the two responses.
pub fn split_dialogues(chosen: &str, rejected: &str) -> FieldResult<PairedExample> {
    let end = chosen
        .rfind(ASSISTANT_TURN)
        .ok_or_else(|| format!("field `chosen`: no {ASSISTANT_TURN:?} turn"))?
        + ASSISTANT_TURN.len();
    let prompt = &chosen[..end];
    let rejected_response = rejected.strip_prefix(prompt).ok_or_else(|| {
        format!("field `rejected`: does not start with the prompt of `chosen` (everything up to its last {ASSISTANT_TURN:?})")
    })?;
    Ok(PairedExample {
        prompt: prompt.to_string(),
        chosen: chosen[end..].to_string(),
        rejected: rejected_response.to_string(),
    })
}

pub(crate) fn parse(record: &Record) -> FieldResult<PairedExample> {
    split_dialogues(record.str("chosen")?, record.str("rejected")?)
}

//! JSONL paired preferences: `{"prompt": ..., "chosen": ..., "rejected": ...}`.
//! Other fields (such as the synthetic suite's `family`) are ignored.

use super::record::{FieldResult, Record};
use crate::example::PairedExample;

pub(crate) fn parse(record: &Record) -> FieldResult<PairedExample> {
    Ok(PairedExample {
        prompt: record.non_empty_str("prompt")?.to_string(),
        chosen: record.str("chosen")?.to_string(),
        rejected: record.str("rejected")?.to_string(),
    })
}

//! Records in TRL's conversational format: prompt and responses as lists of chat
//! messages (`[{"role": "user", "content": "..."}, ...]`) instead of text.
//!
//! The readers only recognise and check them; the messages are kept as JSON values,
//! untouched, for a chat template to render into prompt and response text.

use serde_json::Value;

/// One conversational record, its message lists as read (each a JSON array of objects
/// with a string `role`).
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationalExample {
    /// `{prompt?, chosen, rejected}`; without `prompt`, `chosen` and `rejected` are whole
    /// conversations sharing their first turns (TRL's implicit prompt).
    Paired {
        prompt: Option<Value>,
        chosen: Value,
        rejected: Value,
    },
    /// `{prompt?, completion, label}`.
    Unpaired {
        prompt: Option<Value>,
        completion: Value,
        desirable: bool,
    },
}

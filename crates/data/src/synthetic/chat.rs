//! The chat format of the suite, the same turn markers as Anthropic HH.

const HUMAN: &str = "Human: ";
const ASSISTANT: &str = "\n\nAssistant:";

/// `"Human: {question}\n\nAssistant:"`
pub fn chat_prompt(question: &str) -> String {
    format!("{HUMAN}{question}{ASSISTANT}")
}

/// Responses follow the assistant marker after a space, as in HH.
pub(crate) fn chat_response(answer: &str) -> String {
    format!(" {answer}")
}

pub(crate) fn question_of(prompt: &str) -> Option<&str> {
    prompt.strip_prefix(HUMAN)?.strip_suffix(ASSISTANT)
}

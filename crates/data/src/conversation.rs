//! Conversational records: `prompt`, `chosen`, `rejected` or `completion` as lists of
//! `{role, content}` messages (TRL's conversational preference format), turned into the
//! text examples training uses exactly as TRL's `maybe_apply_chat_template` does:
//!
//! - prompt = template(prompt messages, add_generation_prompt = true) when the last
//!   prompt message is the user's;
//! - response = template(prompt + response messages)[len(prompt):], which must start
//!   with the rendered prompt.
//!
//! A reader hands each field's JSON value to [`Turns::parse`] and the three (or the
//! prompt and completion) to [`paired_example`] / [`unpaired_example`]; plain strings
//! pass through unchanged, so one reader serves plain and conversational files.

use serde_json::Value;

use crate::chat_template::ChatTemplate;
use crate::example::{PairedExample, UnpairedExample};

/// A `{role, content}` message (the chat template's input, where it is defined).
pub use crate::chat_template::Message;

/// One field of a record: plain text, or a list of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turns {
    Text(String),
    Messages(Vec<Message>),
}

/// Why a record could not be used; becomes part of the reader's "file:line: ..." error.
pub type TurnsResult<T> = Result<T, String>;

impl Turns {
    /// A string, or an array of `{role, content}` objects (`field` names it in errors).
    pub fn parse(value: &Value, field: &str) -> TurnsResult<Self> {
        match value {
            Value::String(s) => Ok(Self::Text(s.clone())),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(format!("field `{field}`: an empty list of messages"));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        serde_json::from_value::<Message>(item.clone()).map_err(|e| {
                            format!(
                                "field `{field}[{i}]`: expected a message {{\"role\": ..., \
                                 \"content\": \"...\"}} ({e})"
                            )
                        })
                    })
                    .collect::<TurnsResult<Vec<_>>>()
                    .map(Self::Messages)
            }
            _ => Err(format!(
                "field `{field}`: expected a string or a list of messages"
            )),
        }
    }
}

fn template<'a>(chat: Option<&'a ChatTemplate>) -> TurnsResult<&'a ChatTemplate> {
    chat.ok_or_else(|| {
        "conversational data (lists of messages) needs a chat template, and the tokenizer \
         has none (tokenizer_config.json `chat_template` or chat_template.jinja)"
            .to_string()
    })
}

/// The rendered prompt: with the generation prompt after a user turn, continuing the
/// final message after an assistant turn (TRL's rule).
fn render_prompt(chat: &ChatTemplate, prompt: &[Message]) -> TurnsResult<String> {
    let last = prompt.last().map(|m| m.role.as_str());
    match last {
        Some("assistant") => Err(
            "a prompt ending in an assistant message is not supported (TRL continues it; \
             rpo-shard does not)"
                .to_string(),
        ),
        _ => chat.render(prompt, true).map_err(|e| format!("{e:#}")),
    }
}

/// The response text: what the template adds to the rendered prompt.
fn render_response(
    chat: &ChatTemplate,
    prompt: &[Message],
    rendered_prompt: &str,
    response: &[Message],
    field: &str,
) -> TurnsResult<String> {
    let whole: Vec<Message> = prompt.iter().chain(response).cloned().collect();
    let text = chat.render(&whole, false).map_err(|e| format!("{e:#}"))?;
    text.strip_prefix(rendered_prompt)
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "the chat template applied to prompt + {field} does not start with the \
                 template applied to the prompt alone, so the response cannot be split off"
            )
        })
}

/// Prompt and responses as text; all plain or all conversational.
pub fn render_responses(
    prompt: Turns,
    responses: Vec<(&str, Turns)>,
    chat: Option<&ChatTemplate>,
) -> TurnsResult<(String, Vec<String>)> {
    match prompt {
        Turns::Text(prompt) => {
            let texts = responses
                .into_iter()
                .map(|(field, r)| match r {
                    Turns::Text(t) => Ok(t),
                    Turns::Messages(_) => Err(format!(
                        "field `{field}` is a list of messages but `prompt` is a string"
                    )),
                })
                .collect::<TurnsResult<_>>()?;
            Ok((prompt, texts))
        }
        Turns::Messages(prompt) => {
            let chat = template(chat)?;
            let rendered = render_prompt(chat, &prompt)?;
            let texts = responses
                .into_iter()
                .map(|(field, r)| match r {
                    Turns::Messages(m) => render_response(chat, &prompt, &rendered, &m, field),
                    Turns::Text(_) => Err(format!(
                        "field `{field}` is a string but `prompt` is a list of messages"
                    )),
                })
                .collect::<TurnsResult<_>>()?;
            Ok((rendered, texts))
        }
    }
}

/// `{prompt, chosen, rejected}`, plain or conversational.
pub fn paired_example(
    prompt: Turns,
    chosen: Turns,
    rejected: Turns,
    chat: Option<&ChatTemplate>,
) -> TurnsResult<PairedExample> {
    let (prompt, mut texts) = render_responses(
        prompt,
        vec![("chosen", chosen), ("rejected", rejected)],
        chat,
    )?;
    let rejected = texts.pop().expect("two responses");
    let chosen = texts.pop().expect("two responses");
    Ok(PairedExample {
        prompt,
        chosen,
        rejected,
    })
}

/// `{prompt, completion, label}`, plain or conversational.
pub fn unpaired_example(
    prompt: Turns,
    completion: Turns,
    desirable: bool,
    chat: Option<&ChatTemplate>,
) -> TurnsResult<UnpairedExample> {
    let (prompt, mut texts) = render_responses(prompt, vec![("completion", completion)], chat)?;
    Ok(UnpairedExample {
        prompt,
        completion: texts.pop().expect("one response"),
        desirable,
    })
}

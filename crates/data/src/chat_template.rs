//! A tokenizer's `chat_template`, rendered with minijinja the way transformers renders
//! it with Jinja2 (`transformers/utils/chat_template_utils.py`): `trim_blocks`,
//! `lstrip_blocks`, loop controls, `raise_exception(msg)`, `strftime_now(fmt)`, a
//! `tojson` that does not escape HTML (Python's `json.dumps`), Python string and dict
//! methods (`.strip()`, `.startswith()`, `.items()`, ... through minijinja-contrib's
//! pycompat), and the special tokens as variables (`bos_token`, `eos_token`, ...).

use crate::error::{DataError, Result};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::special_tokens::SpecialTokens;
use crate::tokenizer_files::TokenizerFiles;

const TEMPLATE_NAME: &str = "chat_template";

/// One `{role, content}` message of a conversation, as templates render them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

pub struct ChatTemplate {
    env: Environment<'static>,
    /// `bos_token`, `eos_token`, `pad_token`, `unk_token` as the template sees them.
    special_tokens: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(format: String) -> String {
    chrono::Local::now().format(&format).to_string()
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=indent)`: `", "` and `": "`
/// between items without an indent, newlines and `indent` spaces with one; maps keep
/// their order (as Python dicts do) unless `sort_keys`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_python_json(&value, indent, sort_keys.unwrap_or(false), 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write_python_json(
    v: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    depth: usize,
    out: &mut String,
) -> Result<(), Error> {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    let quoted = |s: &str| serde_json::to_string(s).expect("a string serialises");
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&v.to_string()),
        ValueKind::String | ValueKind::Bytes => {
            out.push_str(&quoted(v.as_str().unwrap_or_default()))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write_python_json(item, indent, sort_keys, depth + 1, out)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                out.push_str(&quoted(&key.to_string()));
                out.push_str(": ");
                write_python_json(&v.get_item(key)?, indent, sort_keys, depth + 1, out)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot serialise a {}", v.kind()),
            ))
        }
    }
    Ok(())
}

impl ChatTemplate {
    /// Compiles `source`; the special tokens are the ones the folder names (those that
    /// transformers passes to the template), with the resolved BOS/EOS when none is named.
    pub fn new(
        source: &str,
        tokenizer: &Tokenizer,
        files: &TokenizerFiles,
        special: &SpecialTokens,
    ) -> Result<Self> {
        let name = |id: Option<i64>| {
            id.and_then(|id| u32::try_from(id).ok())
                .and_then(|id| tokenizer.id_to_token(id))
        };
        let mut special_tokens = Vec::new();
        for (key, named, resolved) in [
            ("bos_token", &files.bos, name(special.bos)),
            ("eos_token", &files.eos, name(Some(special.eos))),
            ("pad_token", &files.pad, None),
            ("unk_token", &files.unk, None),
        ] {
            if let Some(text) = named.clone().or(resolved) {
                special_tokens.push((key, text));
            }
        }
        Self::compile(source, special_tokens)
    }

    pub fn compile(source: &str, special_tokens: Vec<(&'static str, String)>) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| DataError::TemplateSyntax(format!("{e:#}")))?;
        Ok(Self {
            env,
            special_tokens,
        })
    }

    /// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .expect("added in compile");
        let mut ctx: Vec<(&str, Value)> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (*k, Value::from(v.as_str())))
            .collect();
        ctx.push(("messages", Value::from_serialize(messages)));
        ctx.push(("add_generation_prompt", Value::from(add_generation_prompt)));
        let ctx: std::collections::BTreeMap<&str, Value> = ctx.into_iter().collect();
        template
            .render(ctx)
            .map_err(|e| DataError::TemplateRender(format!("{e:#}")))
    }
}

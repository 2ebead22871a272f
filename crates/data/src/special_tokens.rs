//! The special token ids the data pipeline needs, resolved as transformers resolves them.
//!
//! Rules (README, "Special tokens"):
//! - BOS, EOS and PAD are the tokens `tokenizer_config.json` / `special_tokens_map.json`
//!   name ([`TokenizerFiles`]); PAD falls back to EOS.
//! - BOS is put before a prompt when the tokenizer.json post-processor adds it
//!   (what `tokenizer(text)` does in transformers 5, which ignores `add_bos_token` once
//!   a tokenizer.json exists), never a second time when the prompt already starts
//!   with it (a rendered chat template that writes `{{ bos_token }}`).
//! - A bare tokenizer.json (no tokenizer_config.json or special_tokens_map.json) keeps
//!   the old guess by name: EOS from [`EOS_NAMES`], BOS from [`BOS_NAMES`], prepended
//!   when the post-processor adds it or, without a post-processor, whenever it exists.
//! - `[tokenizer] bos`, `eos`, `add_bos` override all of this.
//! - Generation stops at EOS and at every `eos_token_id` of `generation_config.json`.

use tokenizers::Tokenizer;

use crate::error::{DataError, Result};
use crate::tokenizer_files::TokenizerFiles;

/// Ids used when building sequences and batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Ends every response.
    pub eos: i64,
    /// Fills batches on the right (never inside the loss mask, so any id works).
    pub pad: i64,
    /// The tokenizer's BOS token, if it has one.
    pub bos: Option<i64>,
    /// Whether prompts start with BOS (added once when the text lacks it).
    pub add_bos: bool,
    /// Generation stops at any of these (EOS first).
    pub stop: Vec<i64>,
}

/// `[tokenizer]` keys that replace what the folder says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOverrides {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub add_bos: Option<bool>,
}

/// Names tried for a bare tokenizer.json.
pub const EOS_NAMES: &[&str] = &[
    "</s>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<eos>",
    "<|eot_id|>",
];
const PAD_NAMES: &[&str] = &["<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"];
pub const BOS_NAMES: &[&str] = &["<s>", "<|begin_of_text|>", "<bos>"];

fn first_known(tokenizer: &Tokenizer, names: &[&str]) -> Option<i64> {
    names
        .iter()
        .find_map(|name| tokenizer.token_to_id(name))
        .map(i64::from)
}

/// The id of a token named by `source` (a file or config key), or an error naming it.
fn id_of(tokenizer: &Tokenizer, token: &str, source: &str) -> Result<i64> {
    tokenizer.token_to_id(token).map(i64::from).ok_or_else(|| {
        DataError::SpecialTokens(format!(
            "{source} names {token:?}, which is not a token of this tokenizer"
        ))
    })
}

pub(crate) fn probe_failed(e: tokenizers::Error) -> DataError {
    DataError::Tokenizer(format!("cannot tokenize a probe text: {e}"))
}

/// The ids the post-processor puts before a text (`tokenizer(text)` minus the text).
fn post_processor_prefix(tokenizer: &Tokenizer) -> Result<Vec<i64>> {
    const PROBE: &str = "a";
    let plain = tokenizer.encode(PROBE, false).map_err(probe_failed)?;
    let with = tokenizer.encode(PROBE, true).map_err(probe_failed)?;
    let (plain, with) = (plain.get_ids(), with.get_ids());
    let start = (0..=with.len().saturating_sub(plain.len()))
        .find(|&i| with[i..].starts_with(plain))
        .unwrap_or(0);
    Ok(with[..start].iter().map(|&id| i64::from(id)).collect())
}

impl SpecialTokens {
    /// A bare tokenizer.json: EOS, PAD and BOS by their usual names (PAD falls back to
    /// EOS, as HALOs does); BOS added when found.
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<Self> {
        Self::resolve(
            tokenizer,
            &TokenizerFiles::default(),
            &TokenOverrides::default(),
        )
    }

    /// The folder's files with the config's overrides (see the module's rules).
    pub fn resolve(
        tokenizer: &Tokenizer,
        files: &TokenizerFiles,
        overrides: &TokenOverrides,
    ) -> Result<Self> {
        // Nothing names the special tokens: guess them by name.
        let bare = !files.has_token_config;
        let has_post_processor = tokenizer.get_post_processor().is_some();
        let eos = match (&overrides.eos, &files.eos) {
            (Some(t), _) => id_of(tokenizer, t, "[tokenizer] eos")?,
            (None, Some(t)) => id_of(tokenizer, t, "tokenizer_config.json's eos_token")?,
            (None, None) if bare => first_known(tokenizer, EOS_NAMES).ok_or_else(|| {
                DataError::SpecialTokens(format!(
                    "the tokenizer names no EOS (no tokenizer_config.json) and has none of \
                     {EOS_NAMES:?}; set [tokenizer] eos = \"<token>\""
                ))
            })?,
            (None, None) => {
                return Err(DataError::SpecialTokens(
                    "tokenizer_config.json / special_tokens_map.json name no eos_token; \
                     set [tokenizer] eos = \"<token>\""
                        .into(),
                ))
            }
        };
        let bos = match (&overrides.bos, &files.bos) {
            (Some(t), _) => Some(id_of(tokenizer, t, "[tokenizer] bos")?),
            (None, Some(t)) => Some(id_of(tokenizer, t, "tokenizer_config.json's bos_token")?),
            (None, None) if bare => first_known(tokenizer, BOS_NAMES),
            (None, None) => None,
        };
        let pad = match &files.pad {
            Some(t) => id_of(tokenizer, t, "tokenizer_config.json's pad_token")?,
            None if bare => first_known(tokenizer, PAD_NAMES).unwrap_or(eos),
            None => eos,
        };
        let add_bos = match overrides.add_bos {
            Some(add) => add,
            None if has_post_processor => {
                let prefix = post_processor_prefix(tokenizer)?;
                bos.is_some() && prefix.first().copied() == bos
            }
            None => bare && bos.is_some(),
        };
        if add_bos && bos.is_none() {
            return Err(DataError::SpecialTokens(
                "[tokenizer] add_bos = true, but the tokenizer has no BOS; set [tokenizer] bos"
                    .into(),
            ));
        }
        if let (Some(file_says), false) = (files.add_bos_token, overrides.add_bos.is_some()) {
            if file_says != add_bos {
                tracing::warn!(
                    add_bos_token = file_says,
                    add_bos,
                    "tokenizer_config.json's add_bos_token disagrees with tokenizer.json's \
                     post-processor; like transformers, the post-processor decides \
                     (set [tokenizer] add_bos to choose)"
                );
            }
        }
        let mut stop = vec![eos];
        for id in &files.generation_eos {
            if !stop.contains(id) {
                stop.push(*id);
            }
        }
        Ok(Self {
            eos,
            pad,
            bos,
            add_bos,
            stop,
        })
    }

    /// What goes before a prompt's ids, and those ids without a BOS they start with:
    /// the BOS is then part of the kept prefix (truncation never cuts it), and there is
    /// only ever one.
    pub(crate) fn split_prefix<'a>(&self, prompt: &'a [i64]) -> (&[i64], &'a [i64]) {
        match self.bos {
            Some(bos) if prompt.first() == Some(&bos) => (
                std::slice::from_ref(self.bos.as_ref().unwrap()),
                &prompt[1..],
            ),
            Some(_) if self.add_bos => (self.bos.as_slice(), prompt),
            _ => (&[], prompt),
        }
    }

    /// Response ids without a final EOS: the sequence adds exactly one.
    pub(crate) fn without_final_eos<'a>(&self, response: &'a [i64]) -> &'a [i64] {
        match response.split_last() {
            Some((&last, rest)) if last == self.eos => rest,
            _ => response,
        }
    }

    /// The longest prefix any prompt can get (for validating truncation limits).
    pub(crate) fn max_prefix_len(&self) -> usize {
        usize::from(self.bos.is_some())
    }
}

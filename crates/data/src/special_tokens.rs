//! The special token ids the data pipeline needs, found by name in a tokenizer.

use anyhow::{anyhow, Result};
use tokenizers::Tokenizer;

/// Ids used when building sequences and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Ends every response.
    pub eos: i64,
    /// Fills batches on the right (never inside the loss mask, so any id works).
    pub pad: i64,
    /// Prepended to every prompt when set (Llama models expect it; the reference
    /// loaders get it from the tokenizer's post-processor).
    pub bos: Option<i64>,
}

const EOS_NAMES: &[&str] = &[
    "</s>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<eos>",
    "<|eot_id|>",
];
const PAD_NAMES: &[&str] = &["<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"];
const BOS_NAMES: &[&str] = &["<s>", "<|begin_of_text|>", "<bos>"];

fn first_known(tokenizer: &Tokenizer, names: &[&str]) -> Option<i64> {
    names
        .iter()
        .find_map(|name| tokenizer.token_to_id(name))
        .map(i64::from)
}

impl SpecialTokens {
    /// EOS, pad and BOS looked up by their usual names; pad falls back to EOS
    /// (as HALOs does for tokenizers without one).
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<Self> {
        let eos = first_known(tokenizer, EOS_NAMES).ok_or_else(|| {
            anyhow!(
                "tokenizer has none of the EOS tokens {EOS_NAMES:?}; give the EOS id explicitly"
            )
        })?;
        Ok(Self {
            eos,
            pad: first_known(tokenizer, PAD_NAMES).unwrap_or(eos),
            bos: first_known(tokenizer, BOS_NAMES),
        })
    }

    pub(crate) fn prefix(&self) -> &[i64] {
        self.bos.as_slice()
    }
}

//! Turns examples into truncated token sequences.
//!
//! Prompt and response are encoded separately, without the tokenizer's own special
//! tokens (its post-processor is not applied), so the prompt/response boundary is exact;
//! the sequence is then `[BOS] prompt response EOS` after [`Truncation`].

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tokenizers::Tokenizer;

use crate::example::{PairedExample, UnpairedExample};
use crate::sequence::TokenizedSequence;
use crate::special_tokens::SpecialTokens;
use crate::truncation::Truncation;

/// The chosen and rejected sequences of one pair; they share their prompt tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedPair {
    pub chosen: TokenizedSequence,
    pub rejected: TokenizedSequence,
}

pub struct PreferenceTokenizer {
    tokenizer: Tokenizer,
    special: SpecialTokens,
    truncation: Truncation,
}

impl PreferenceTokenizer {
    pub fn new(
        mut tokenizer: Tokenizer,
        special: SpecialTokens,
        truncation: Truncation,
    ) -> Result<Self> {
        truncation.validate(special.prefix().len())?;
        // A tokenizer.json may carry its own truncation or padding; ours replaces both.
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow!("cannot disable the tokenizer's truncation: {e}"))?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            special,
            truncation,
        })
    }

    /// Loads a tokenizer.json and finds its special tokens by name.
    pub fn from_file(path: impl AsRef<Path>, truncation: Truncation) -> Result<Self> {
        let path = path.as_ref();
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| anyhow!("cannot load tokenizer {}: {e}", path.display()))?;
        let special = SpecialTokens::from_tokenizer(&tokenizer)
            .with_context(|| format!("in tokenizer {}", path.display()))?;
        Self::new(tokenizer, special, truncation)
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn special(&self) -> SpecialTokens {
        self.special
    }

    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    /// Token ids of a text, with no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow!("cannot tokenize {:?}: {e}", preview(text)))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids = ids
            .iter()
            .map(|&id| u32::try_from(id).map_err(|_| anyhow!("token id {id} out of range")))
            .collect::<Result<Vec<u32>>>()?;
        self.tokenizer
            .decode(&ids, false)
            .map_err(|e| anyhow!("cannot decode {} token ids: {e}", ids.len()))
    }

    fn encode_prompt_tokens(&self, prompt: &str) -> Result<Vec<i64>> {
        let ids = self.encode(prompt)?;
        if ids.is_empty() {
            bail!("prompt {:?} has no tokens", preview(prompt));
        }
        Ok(ids)
    }

    /// The ids a model is given to generate a response: `[BOS] prompt`, the prompt cut to
    /// `max_prompt_length` if needed, the way training sequences are cut.
    pub fn encode_prompt_for_generation(&self, prompt: &str) -> Result<Vec<i64>> {
        let prompt_ids = self.encode_prompt_tokens(prompt)?;
        let prefix = self.special.prefix();
        let kept = self
            .truncation
            .kept_prompt(prefix, &prompt_ids, self.truncation.max_length);
        Ok([prefix, kept].concat())
    }

    pub fn tokenize(&self, prompt: &str, response: &str) -> Result<TokenizedSequence> {
        let prompt_ids = self.encode_prompt_tokens(prompt)?;
        let response_ids = self.encode(response)?;
        Ok(self.truncation.sequence(
            self.special.prefix(),
            &prompt_ids,
            &response_ids,
            self.special.eos,
        ))
    }

    /// Encodes the prompt once for both responses.
    pub fn tokenize_pair(&self, example: &PairedExample) -> Result<TokenizedPair> {
        let prompt_ids = self.encode_prompt_tokens(&example.prompt)?;
        let chosen = self.encode(&example.chosen)?;
        let rejected = self.encode(&example.rejected)?;
        let mut seqs = self.truncation.sequences(
            self.special.prefix(),
            &prompt_ids,
            &[&chosen, &rejected],
            self.special.eos,
        );
        let rejected = seqs.pop().expect("two sequences");
        let chosen = seqs.pop().expect("two sequences");
        Ok(TokenizedPair { chosen, rejected })
    }

    pub fn tokenize_unpaired(&self, example: &UnpairedExample) -> Result<TokenizedSequence> {
        self.tokenize(&example.prompt, &example.completion)
    }

    /// The prompt as the model sees it: the original text, or the decoded kept tokens
    /// when truncation removed some (what the prompt embedder should see).
    pub fn prompt_text(&self, seq: &TokenizedSequence, original: &str) -> Result<String> {
        if !seq.prompt_truncated {
            return Ok(original.to_string());
        }
        self.decode(&seq.prompt_ids()[self.special.prefix().len()..])
    }
}

/// The start of a long text, for error messages.
fn preview(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

//! How a prompt and a response are cut to fit `max_length` tokens.
//!
//! As in the DPO/HALOs loaders: when the whole sequence is too long, the prompt is cut
//! first to `max_prompt_length` (keeping its start or its end), then the response is cut
//! to fit. Unlike them, the EOS always survives: the response is cut one token shorter.
//! For a pair the prompt decision is taken once, from the longer response, so the
//! chosen and rejected sequences always share the same prompt tokens.

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};

use crate::sequence::TokenizedSequence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKeep {
    /// Keep the last tokens (the latest turns of a dialogue).
    KeepEnd,
    /// Keep the first tokens (the start of a long post).
    KeepStart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Prompt + response + EOS (+ BOS when one is prepended).
    pub max_length: usize,
    /// What the prompt is cut to when the sequence is too long (BOS included).
    pub max_prompt_length: usize,
    pub prompt_keep: PromptKeep,
}

impl Default for Truncation {
    /// The paper's settings: 512 tokens in all, 256 for the prompt.
    fn default() -> Self {
        Self {
            max_length: 512,
            max_prompt_length: 256,
            prompt_keep: PromptKeep::KeepEnd,
        }
    }
}

impl Truncation {
    pub fn for_format(format: crate::DataFormat) -> Self {
        Self {
            prompt_keep: format.default_prompt_keep(),
            ..Self::default()
        }
    }

    /// There must be room for at least one prompt token (after any BOS) and the EOS.
    pub fn validate(&self, prefix_len: usize) -> Result<()> {
        if self.max_prompt_length <= prefix_len {
            return Err(DataError::Invalid(format!(
                "max_prompt_length ({}) leaves no room for prompt tokens",
                self.max_prompt_length
            )));
        }
        if self.max_prompt_length >= self.max_length {
            return Err(DataError::Invalid(format!(
                "max_prompt_length ({}) must be < max_length ({}) to leave room for the response's EOS",
                self.max_prompt_length,
                self.max_length
            )));
        }
        Ok(())
    }

    /// The prompt tokens to keep, given the longest response it will be joined with.
    /// `prefix` (a BOS, or nothing) is always kept and counts towards the limits.
    pub fn kept_prompt<'a>(
        &self,
        prefix: &[i64],
        prompt: &'a [i64],
        longest_response: usize,
    ) -> &'a [i64] {
        let whole = prefix.len() + prompt.len() + longest_response + 1;
        let budget = self.max_prompt_length - prefix.len();
        if whole <= self.max_length || prompt.len() <= budget {
            return prompt;
        }
        match self.prompt_keep {
            PromptKeep::KeepStart => &prompt[..budget],
            PromptKeep::KeepEnd => &prompt[prompt.len() - budget..],
        }
    }

    /// Joins an already-truncated prompt with a response cut to fit, ending in EOS.
    fn join(
        &self,
        prefix: &[i64],
        kept_prompt: &[i64],
        prompt_truncated: bool,
        response: &[i64],
        eos: i64,
    ) -> TokenizedSequence {
        let prompt_len = prefix.len() + kept_prompt.len();
        let room = self.max_length.saturating_sub(prompt_len + 1);
        let response = &response[..response.len().min(room)];
        let mut input_ids = Vec::with_capacity(prompt_len + response.len() + 1);
        input_ids.extend_from_slice(prefix);
        input_ids.extend_from_slice(kept_prompt);
        input_ids.extend_from_slice(response);
        input_ids.push(eos);
        TokenizedSequence {
            input_ids,
            prompt_len,
            prompt_truncated,
        }
    }

    /// Truncates the prompt against every response, then joins it with each of them.
    pub fn sequences(
        &self,
        prefix: &[i64],
        prompt: &[i64],
        responses: &[&[i64]],
        eos: i64,
    ) -> Vec<TokenizedSequence> {
        let longest = responses.iter().map(|r| r.len()).max().unwrap_or(0);
        let kept = self.kept_prompt(prefix, prompt, longest);
        let truncated = kept.len() < prompt.len();
        responses
            .iter()
            .map(|response| self.join(prefix, kept, truncated, response, eos))
            .collect()
    }

    /// One prompt with one response.
    pub fn sequence(
        &self,
        prefix: &[i64],
        prompt: &[i64],
        response: &[i64],
        eos: i64,
    ) -> TokenizedSequence {
        let kept = self.kept_prompt(prefix, prompt, response.len());
        self.join(prefix, kept, kept.len() < prompt.len(), response, eos)
    }
}

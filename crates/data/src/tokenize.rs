//! Turns examples into truncated token sequences.
//!
//! Prompt and response are encoded separately, without the tokenizer's own special
//! tokens (its post-processor is not applied), so the prompt/response boundary is exact;
//! the sequence is then `[BOS] prompt response EOS` after [`Truncation`], with one BOS
//! and one EOS even when the (rendered) texts already hold them: TRL's DPO convention
//! (`DPOTrainer.tokenize_row`: "add BOS token to head of prompt. Avoid adding if it's
//! already there", and the same for EOS at the end of each answer).

use std::path::Path;

use tokenizers::Tokenizer;

use crate::chat_template::ChatTemplate;
use crate::error::{DataError, Result};
use crate::example::{PairedExample, UnpairedExample};
use crate::sequence::TokenizedSequence;
use crate::special_tokens::{SpecialTokens, TokenOverrides};
use crate::tokenizer_files::TokenizerFiles;
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
    chat_template: Option<ChatTemplate>,
}

impl PreferenceTokenizer {
    pub fn new(
        mut tokenizer: Tokenizer,
        special: SpecialTokens,
        truncation: Truncation,
    ) -> Result<Self> {
        truncation.validate(special.max_prefix_len())?;
        // A tokenizer.json may carry its own truncation or padding; ours replaces both.
        tokenizer.with_truncation(None).map_err(|e| {
            DataError::Tokenizer(format!("cannot disable the tokenizer's truncation: {e}"))
        })?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            special,
            truncation,
            chat_template: None,
        })
    }

    /// With the chat template that conversational data is rendered with.
    pub fn with_chat_template(mut self, template: Option<ChatTemplate>) -> Self {
        self.chat_template = template;
        self
    }

    /// A tokenizer.json with the files next to it (tokenizer_config.json,
    /// special_tokens_map.json, chat_template.jinja, generation_config.json) and the
    /// config's overrides, resolved as transformers does (see [`SpecialTokens::resolve`]).
    pub fn from_folder_files(
        tokenizer: Tokenizer,
        files: &TokenizerFiles,
        overrides: &TokenOverrides,
        truncation: Truncation,
    ) -> Result<Self> {
        let special = SpecialTokens::resolve(&tokenizer, files, overrides)?;
        let template = files
            .chat_template
            .as_deref()
            .map(|source| ChatTemplate::new(source, &tokenizer, files, &special))
            .transpose()?;
        Ok(Self::new(tokenizer, special, truncation)?.with_chat_template(template))
    }

    /// Loads a tokenizer.json and the files next to it (see [`Self::from_folder_files`]).
    pub fn from_file(path: impl AsRef<Path>, truncation: Truncation) -> Result<Self> {
        Self::from_file_with(path, &TokenOverrides::default(), truncation)
    }

    pub fn from_file_with(
        path: impl AsRef<Path>,
        overrides: &TokenOverrides,
        truncation: Truncation,
    ) -> Result<Self> {
        let path = path.as_ref();
        let tokenizer = Tokenizer::from_file(path).map_err(|e| DataError::LoadTokenizer {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let files = TokenizerFiles::read(dir)?;
        Self::from_folder_files(tokenizer, &files, overrides, truncation).map_err(|e| {
            DataError::InTokenizer {
                path: path.to_path_buf(),
                source: Box::new(e),
            }
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    /// Token ids of a text, with no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| {
            DataError::Tokenizer(format!("cannot tokenize {:?}: {e}", preview(text)))
        })?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids = ids
            .iter()
            .map(|&id| {
                u32::try_from(id)
                    .map_err(|_| DataError::Invalid(format!("token id {id} out of range")))
            })
            .collect::<Result<Vec<u32>>>()?;
        self.tokenizer.decode(&ids, false).map_err(|e| {
            DataError::Tokenizer(format!("cannot decode {} token ids: {e}", ids.len()))
        })
    }

    fn encode_prompt_tokens(&self, prompt: &str) -> Result<Vec<i64>> {
        let ids = self.encode(prompt)?;
        if ids.is_empty() {
            return Err(DataError::EmptyPrompt {
                prompt: preview(prompt),
            });
        }
        Ok(ids)
    }

    /// The ids a model is given to generate a response: `[BOS] prompt`, the prompt cut to
    /// `max_prompt_length` if needed, the way training sequences are cut.
    pub fn encode_prompt_for_generation(&self, prompt: &str) -> Result<Vec<i64>> {
        let prompt_ids = self.encode_prompt_tokens(prompt)?;
        let (prefix, prompt_ids) = self.special.split_prefix(&prompt_ids);
        let kept = self
            .truncation
            .kept_prompt(prefix, prompt_ids, self.truncation.max_length);
        Ok([prefix, kept].concat())
    }

    pub fn tokenize(&self, prompt: &str, response: &str) -> Result<TokenizedSequence> {
        let prompt_ids = self.encode_prompt_tokens(prompt)?;
        let (prefix, prompt_ids) = self.special.split_prefix(&prompt_ids);
        let response_ids = self.encode(response)?;
        Ok(self.truncation.sequence(
            prefix,
            prompt_ids,
            self.special.without_final_eos(&response_ids),
            self.special.eos,
        ))
    }

    /// Encodes the prompt once for both responses.
    pub fn tokenize_pair(&self, example: &PairedExample) -> Result<TokenizedPair> {
        let prompt_ids = self.encode_prompt_tokens(&example.prompt)?;
        let (prefix, prompt_ids) = self.special.split_prefix(&prompt_ids);
        let chosen = self.encode(&example.chosen)?;
        let rejected = self.encode(&example.rejected)?;
        let mut seqs = self.truncation.sequences(
            prefix,
            prompt_ids,
            &[
                self.special.without_final_eos(&chosen),
                self.special.without_final_eos(&rejected),
            ],
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
        let ids = seq.prompt_ids();
        let (_, kept) = self.special.split_prefix(ids);
        self.decode(kept)
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

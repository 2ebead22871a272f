//! The tokenizer shipped for the suite (configs/synthetic/tokenizer.json) and how it is made.
//!
//! Regenerate with `cargo run -p rpo-data --example train_synthetic_tokenizer`.

use crate::error::{DataError, Result};
use tokenizers::Tokenizer;

use super::chat::{chat_prompt, chat_response};
use super::family::Family;
use super::questions::{questions, Split};
use crate::tokenizer_training::{tokenizer_json, train_tokenizer};

pub const SYNTHETIC_VOCAB_SIZE: usize = 512;

/// The shipped tokenizer.json, built into the library.
pub const SYNTHETIC_TOKENIZER_JSON: &str =
    include_str!("../../../../configs/synthetic/tokenizer.json");

/// Every train question with its correct answer, as a chat turn. Eval prompts are left
/// out; their words and digits all occur in training questions.
pub fn tokenizer_corpus() -> Vec<String> {
    Family::ALL
        .iter()
        .flat_map(|&family| questions(family, Split::Train))
        .map(|q| {
            let answer = q
                .family
                .task()
                .answer(&q.subject)
                .expect("subjects have answers");
            chat_prompt(&q.text()) + &chat_response(&answer)
        })
        .collect()
}

/// Trains the suite's tokenizer from scratch and returns its tokenizer.json text.
pub fn train_synthetic_tokenizer_json() -> Result<String> {
    tokenizer_json(&train_tokenizer(tokenizer_corpus(), SYNTHETIC_VOCAB_SIZE)?)
}

/// The shipped tokenizer.
pub fn synthetic_tokenizer() -> Result<Tokenizer> {
    SYNTHETIC_TOKENIZER_JSON.parse().map_err(|e| {
        DataError::Tokenizer(format!(
            "the built-in synthetic tokenizer does not load: {e}"
        ))
    })
}

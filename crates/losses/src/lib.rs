//! Preference objectives as pure tensor functions.
//!
//! Inputs are sequence log-ratios `log π(y|x) − log π_ref(y|x)` (summed over response
//! tokens) unless a function says otherwise. Nothing here knows about models, ranks or
//! trainers: the trainer computes log-ratios, calls a loss, and backpropagates.
//!
//! Per-example (or per-row) forms are exposed next to the batch means so that a
//! distributed caller can sum contributions and divide by a global count itself.

#[macro_use]
mod error;
mod checks;
pub mod dpo;
pub mod ipo;
pub mod kto;
pub mod logprobs;
mod precision;
pub mod rewards;
pub mod rpo;
pub mod sft;
pub mod targets;
pub mod weighting;

pub use dpo::{dpo_loss, dpo_losses};
pub use error::{LossError, Result};
pub use ipo::{ipo_loss, ipo_losses};
pub use kto::{kto_kl_estimate, kto_loss, kto_losses};
pub use logprobs::{position_chunks, sequence_logps, sequence_logps_chunked};
pub use rewards::{pair_metrics, rewards, PairMetrics};
pub use rpo::{rpo_loss, rpo_row_losses};
pub use sft::{sft_loss, sft_losses};
pub use targets::{targets_logps_chunked, ScoredTargets};
pub use weighting::{contrast_weights, diagonal_mask, embedding_weights, RowBlock, Weighting};

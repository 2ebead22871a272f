//! On-policy preference data (issue 18): sample k responses per prompt from the policy,
//! score them with a judge, turn the scores into paired or unpaired preference data, and
//! train on it, round after round, in one launch.
//!
//! - [`prompts`]: where prompts come from (a JSONL file, or a run's data);
//! - [`sampling`]: data-parallel sampling, the same file at any rank count;
//! - [`rounds`]: the `[online]` loop that `rpo-shard train` runs when the config has one.

pub mod error;
pub mod prompts;
pub mod rounds;
pub mod sampling;

pub use error::{OnlineError, Result};
pub use prompts::{read_prompts, run_prompts, PromptRecord};
pub use rounds::{train_online, RoundReport};
pub use sampling::{sample, write_atomic, SamplingParams};

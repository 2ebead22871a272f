//! Why on-policy rounds (or `rpo-shard sample`) could not run. Every message is the one
//! the `anyhow` errors gave before; a context that wrapped an error is the variant's
//! message with the error as its `source`, so `{:#}` prints what it printed. A round's
//! training fails with rpo-train's [`TrainError`], carried whole.

use std::path::PathBuf;

use rpo_comm::CommError;
use rpo_data::DataError;
use rpo_judge::JudgeError;
use rpo_model::{DecodeError, ModelError};
use rpo_train::TrainError;
use tch::TchError;

/// The ways the online rounds and sampling can fail.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// Training, its config, data or models (rpo-train), including a run stopped by a
    /// signal ([`TrainError::Preempted`]).
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A config the rounds cannot run: no `[online]` section, no `model.path`.
    #[error("{0}")]
    Config(String),
    /// Round `round`'s own training config does not validate.
    #[error("round {round}'s training config")]
    RoundConfig {
        round: usize,
        source: Box<TrainError>,
    },
    /// A fresh online run where one already left its rounds.
    #[error("{dir} already holds an online run: continue it with --resume latest, or choose another out_dir")]
    RunExists { dir: PathBuf },
    /// A prompts file without a single prompt.
    #[error("{path}: no prompts in the file")]
    NoPrompts { path: PathBuf },
    /// A round whose samples, every prompt drawn once, give fewer rows than one global
    /// batch; `detail` says how many prompts agreed (on rank 0).
    #[error(
        "round {round}: {rows} rows after sampling every prompt once, fewer than one global batch of {needed} ({detail}); \
         raise online.samples_per_prompt or online.temperature, or lower train.global_batch_size"
    )]
    TooFewRows {
        round: usize,
        rows: usize,
        needed: usize,
        detail: String,
    },
    /// On ranks other than 0: rank 0 failed at `what` (its own error says why).
    #[error("rank 0 failed to {what} (its message says why)")]
    RankFailed { what: &'static str },
    /// The judge `judge` failed on the samples of a round's folder `dir`.
    #[error("the {judge} judge on the samples of {dir}")]
    Judge {
        judge: String,
        dir: PathBuf,
        source: Box<OnlineError>,
    },
    /// A `round.json` that does not parse.
    #[error("{path} is not a round report")]
    NotARoundReport {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A sample line gathered from the ranks that does not parse.
    #[error("a gathered sample line")]
    GatheredLine { source: serde_json::Error },
    /// Sampling parameters out of range, or a model or result the call cannot use.
    #[error("{0}")]
    Invalid(String),
    /// I/O on `path` that failed; `action` says what was tried ("cannot create").
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An I/O error without a path of its own: rpo-storage's atomic writes (which name
    /// it), or a plain `std::fs` call.
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    /// JSON that does not parse or cannot be written (samples, rows, statistics).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A config that cannot be written as TOML (not expected for the types written here).
    #[error(transparent)]
    TomlWrite(#[from] toml::ser::Error),
    /// Gathered sample lines that are not UTF-8.
    #[error(transparent)]
    Utf8(#[from] std::string::FromUtf8Error),
    /// A collective that failed.
    #[error(transparent)]
    Comm(#[from] CommError),
    /// Boxed, as in [`TrainError::Model`].
    #[error(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    Tch(#[from] TchError),
    #[error(transparent)]
    Data(#[from] DataError),
    /// A judge that could not score the samples.
    #[error(transparent)]
    Scoring(#[from] JudgeError),
    /// Sampling from the policy.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

pub type Result<T, E = OnlineError> = std::result::Result<T, E>;

impl From<ModelError> for OnlineError {
    fn from(e: ModelError) -> Self {
        OnlineError::Model(Box::new(e))
    }
}

impl OnlineError {
    /// The run stopped by a signal after its checkpoint, if this is one (see
    /// [`TrainError::preempted`]).
    pub fn preempted(&self) -> Option<&rpo_train::preemption::Preempted> {
        match self {
            OnlineError::Train(e) => e.preempted(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpo_train::preemption::Preempted;

    #[test]
    fn a_preempted_round_is_told_from_a_failure() {
        let stop = OnlineError::from(TrainError::from(Preempted {
            step: 3,
            checkpoint: "ckpt/step-3".into(),
        }));
        assert_eq!(stop.preempted().map(|p| p.step), Some(3));
        assert!(stop
            .to_string()
            .starts_with("stopped by a signal after step 3"));
        let failed = OnlineError::RankFailed { what: "judge" };
        assert!(failed.preempted().is_none());
    }
}

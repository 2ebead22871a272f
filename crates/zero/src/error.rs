//! Why a sharded model could not be built, run, stepped, saved or checkpointed. A
//! checkpoint that cannot be resumed from is a [`CheckpointError`], carried whole; so are
//! the other crates' errors (a collective's [`CommError`], the model's [`ModelError`], ...).
//! The messages are the ones of the `anyhow` errors they replace: a context is the variant's
//! message and the error under it its `source`, so `{:#}` prints the same chain.

use std::path::PathBuf;

use rpo_comm::CommError;
use rpo_losses::LossError;
use rpo_model::safetensors_io::SafetensorsError;
use rpo_model::ModelError;
use rpo_optim::OptimError;
use tch::TchError;

use crate::checkpoint_error::CheckpointError;

#[derive(Debug, thiserror::Error)]
pub enum ZeroError {
    /// Parameters that do not form the units of a Llama-family model of the given depth
    /// (a name no unit has, a unit without parameters, a layer beyond the model), or
    /// tensors that do not fill a unit's slots.
    #[error("{0}")]
    Layout(String),
    /// A collective that failed while doing `what` ("broadcasting unit layers.3",
    /// "creating the ZeRO communicator").
    #[error("{what}")]
    Collective { what: String, source: CommError },
    /// A file or folder operation on `path` that failed; `action` says which ("cannot
    /// read", "cannot create", "cannot remove the old checkpoint").
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A finished checkpoint folder that could not be renamed from its temporary name.
    #[error("cannot rename {} into place", from.display())]
    Rename {
        from: PathBuf,
        source: std::io::Error,
    },
    /// This rank's shard file of a checkpoint could not be written.
    #[error("cannot write {}", path.display())]
    WriteShard {
        path: PathBuf,
        source: Box<ModelError>,
    },
    /// Checkpoint `name`: this rank (`rank`) could not write its shard, for `source`.
    #[error("checkpoint {name}: rank {rank}'s shard")]
    Shard {
        name: String,
        rank: usize,
        source: Box<ZeroError>,
    },
    /// Checkpoint `name`: other ranks could not write their shards.
    #[error(
        "checkpoint {name}: rank(s) {ranks:?} could not write their shards (their logs say why)"
    )]
    ShardsFailed { name: String, ranks: Vec<usize> },
    /// A step every rank must agree on (`what`: "preparing checkpoint step-…") failed on
    /// this rank, for `source`.
    #[error("{what} on rank {rank}")]
    OnRank {
        what: String,
        rank: usize,
        source: Box<ZeroError>,
    },
    /// A step every rank must agree on failed on other ranks (not this one).
    #[error("{what} failed on rank(s) {ranks:?} (their logs say why)")]
    FailedOnRanks { what: String, ranks: Vec<usize> },
    /// A checkpoint's manifest whose model config does not parse.
    #[error("the model config in {}", dir.display())]
    CheckpointConfig {
        dir: PathBuf,
        source: serde_json::Error,
    },
    /// A checkpoint's optimizer state that the optimizer cannot take.
    #[error("optimizer state of {}", dir.display())]
    OptimizerState { dir: PathBuf, source: OptimError },
    /// A step refused because the global gradient norm is NaN or infinite (the weights
    /// are left untouched).
    #[error("gradient norm is {norm}")]
    NonFiniteNorm { norm: f64 },
    /// A size (`80GiB`) that does not parse.
    #[error("{0}")]
    Size(String),
    /// The caller's part of a checkpoint (the trainer's files) failed; its error whole.
    #[error(transparent)]
    Caller(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Comm(#[from] CommError),
    /// Boxed: a `ModelError` is large, and every `ZeroError` would be as large.
    #[error(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    #[error(transparent)]
    Optim(#[from] OptimError),
    #[error(transparent)]
    Loss(#[from] LossError),
    /// An I/O error as the OS (or rpo-storage, which names the path) gave it.
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    /// JSON that cannot be serialised (not expected for the types written here).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Tch(#[from] TchError),
}

pub type Result<T> = std::result::Result<T, ZeroError>;

impl From<ModelError> for ZeroError {
    fn from(e: ModelError) -> Self {
        ZeroError::Model(Box::new(e))
    }
}

impl ZeroError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ZeroError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

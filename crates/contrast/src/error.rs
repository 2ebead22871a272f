//! Why a contrast scope could not be set up or its loss computed. The scope's own
//! checks have kinds here; a failed collective or a loss that refuses its inputs is
//! carried whole ([`CommError`], [`LossError`]). Every message is the one the `anyhow`
//! errors gave before.

use rpo_comm::CommError;
use rpo_losses::LossError;
use tch::TchError;

/// The ways a contrast scope or its loss can fail.
#[derive(Debug, thiserror::Error)]
pub enum ContrastError {
    /// A scope that cannot be used: an unknown name, or a group size that does not
    /// divide the world.
    #[error("{0}")]
    Scope(String),
    /// Inputs that do not fit the call: prompt embeddings given to a weighting that
    /// does not read them (or missing for one that does), known counts that are not
    /// this rank's.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Comm(#[from] CommError),
    #[error(transparent)]
    Loss(#[from] LossError),
    #[error(transparent)]
    Tch(#[from] TchError),
}

pub type Result<T> = std::result::Result<T, ContrastError>;

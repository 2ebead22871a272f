//! Why a collective, or setting one up, failed. A collective that outlives
//! `[distributed] collective_timeout_s` never returns an error: the watchdog ends the
//! job (MPI after a roll call naming the silent ranks, NCCL by aborting its
//! communicator), so a caller sees only the kinds below.

use tch::TchError;

/// The ways a collective can fail; the messages are the ones of the `anyhow` errors
/// they replace.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    /// An MPI call returned error `code` (MPI's default handler aborts first; this is for
    /// handlers that return). `what`: the call and the collective.
    #[error("{what} (error {code})")]
    Mpi { what: String, code: i32 },
    /// An NCCL call failed: `error` is NCCL's code and text, `last` its last message.
    #[error("NCCL {call} failed: {error}: {last}")]
    Nccl {
        call: String,
        error: String,
        last: String,
    },
    /// Some ranks could not set up the communicator (their logs say why).
    #[error(
        "{failed} of {world} ranks could not set up NCCL (their logs say why); rank {rank} could"
    )]
    PeersFailed {
        failed: i64,
        world: usize,
        rank: usize,
    },
    /// The backend cannot run here: no CUDA device, no NCCL library, no MPI.
    #[error("{0}")]
    Unavailable(String),
    /// A CUDA driver call (binding the device, an event) failed during a collective.
    #[error("{0}")]
    Cuda(String),
    /// A tensor or argument a collective cannot take: another device, a dtype it cannot
    /// sum, rows that do not split over the ranks, a root outside the world.
    #[error("{0}")]
    Invalid(String),
    /// A collectives self-test whose result is not the expected one.
    #[error("{0}")]
    SelfTest(String),
    /// A tensor that could not be read to the host.
    #[error("reading a tensor to the host")]
    Host { source: TchError },
    /// A step of setting up or splitting a communicator (`what`), failed for `cause`.
    /// The message holds both (as `anyhow`'s context chain printed them with `{:#}`).
    #[error("{what}: {cause}")]
    Setup { what: String, cause: Box<CommError> },
    #[error(transparent)]
    Tch(#[from] TchError),
}

pub type Result<T> = std::result::Result<T, CommError>;

impl CommError {
    /// `self` as the cause of the set-up step `what`.
    pub(crate) fn during(self, what: impl Into<String>) -> Self {
        CommError::Setup {
            what: what.into(),
            cause: Box::new(self),
        }
    }
}

/// `Err(CommError::Invalid(format!(..)))` unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::CommError::Invalid(format!($($fmt)+)));
        }
    };
}

/// `return Err(CommError::Invalid(format!(..)))`.
macro_rules! invalid {
    ($($fmt:tt)+) => {
        return Err($crate::error::CommError::Invalid(format!($($fmt)+)))
    };
}

//! Why a loss could not be computed: an input tensor of the wrong shape, too few
//! responses, or an argument out of range. Every message is the one the `anyhow`
//! errors gave before, and names the offending argument.

use tch::TchError;

/// The ways a loss function can refuse its inputs.
#[derive(Debug, thiserror::Error)]
pub enum LossError {
    /// An input tensor whose shape does not fit: not 1-D where a vector is needed,
    /// lengths that do not pair up, too few wins or losses, a contrast block the
    /// weights do not cover.
    #[error("{0}")]
    Shape(String),
    /// An argument outside its range (β or τ not positive), or one a weighting
    /// needs but was not given (prompt embeddings).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tch(#[from] TchError),
}

pub type Result<T> = std::result::Result<T, LossError>;

/// `Err(LossError::$variant(format!(..)))` unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::LossError::$variant(format!($($fmt)+)));
        }
    };
}

//! Why an optimizer step or a state load failed. Every message is the one the `anyhow`
//! errors gave before.

/// The ways an optimizer can refuse its inputs.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// Parameters, gradients and the optimizer's state that do not line up: counts or
    /// shapes differ (a step with another parameter layout than the state's).
    #[error("{0}")]
    Shape(String),
    /// A state handed to [`crate::Optimizer::load_state_tensors`] that lacks an entry
    /// (`step`, a slot of one parameter) or holds entries beyond its slots.
    #[error("{0}")]
    State(String),
}

pub type Result<T> = std::result::Result<T, OptimError>;

/// `Err(OptimError::$variant(format!(..)))` unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $variant:ident, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::error::OptimError::$variant(format!($($fmt)+)));
        }
    };
}

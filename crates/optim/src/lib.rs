//! Optimizers, learning-rate schedule and gradient clipping.
//!
//! Everything works on parallel slices of parameter and gradient tensors, so the same
//! code updates whole parameters on one process or the flat shards a ZeRO rank owns.
//! Each piece matches its PyTorch counterpart (checked against torch in the tests).

#[macro_use]
mod error;
pub mod adamw;
pub mod clip;
pub mod optimizer;
pub mod rmsprop;
pub mod schedule;
mod slots;

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_coefficient, clip_grad_norm, grad_sq_norm, grad_sq_norm_tensor, scale_grads};
pub use error::{OptimError, Result};
pub use optimizer::Optimizer;
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::WarmupConstant;

//! The interface the trainer drives every optimizer through.

use crate::error::Result;
use tch::Tensor;

/// An optimizer over a fixed list of parameter tensors (whole parameters or flat shards).
pub trait Optimizer {
    /// Updates `params` in place (under `no_grad`) from `grads` at learning rate `lr`.
    /// `grads[i]` belongs to `params[i]` and has its shape; it is converted to the
    /// parameter's kind and device (e.g. bf16 gradients onto fp32 master weights).
    /// The same parameter layout must be passed on every step.
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], lr: f64) -> Result<()>;

    /// The optimizer state for checkpoints: `<slot>.<param index>` tensors (names as in
    /// torch's state dict, e.g. `square_avg.3`) and the 0-dim `step` count.
    /// Empty before the first step.
    fn state_tensors(&self) -> Vec<(String, Tensor)>;

    /// Restores state written by [`Optimizer::state_tensors`] for the same layout.
    fn load_state_tensors(&mut self, named: &[(String, Tensor)]) -> Result<()>;

    /// Optimizer steps taken so far.
    fn steps(&self) -> i64;

    /// State tensors kept per parameter, each shaped like it (RMSprop: 1 to 3, AdamW: 2);
    /// for memory accounting.
    fn slots_per_param(&self) -> usize;
}

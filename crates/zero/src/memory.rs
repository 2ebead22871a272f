//! Per-rank memory of the training state: what the formula expects for a stage and
//! world size, and what the tensors actually hold.
//!
//! With Ψ parameters (padded), `c` bytes per compute element, `m` bytes of separate fp32
//! master weights per element (4 with bf16 compute, 0 with fp32 compute, where the
//! compute weights are the masters) and `k` bytes of optimizer state per element
//! (RMSprop 4, AdamW 8), per rank:
//!
//! | stage | parameters | gradients | master | optimizer |
//! |---|---|---|---|---|
//! | 0 | cΨ | cΨ | mΨ | kΨ |
//! | 1 | cΨ | cΨ | mΨ/W | kΨ/W |
//! | 2 | cΨ | cΨ/W | mΨ/W | kΨ/W |
//! | 3 | cΨ/W | cΨ/W | mΨ/W | kΨ/W |
//!
//! (bf16 + RMSprop: 12Ψ, 4Ψ + 8Ψ/W, 2Ψ + 10Ψ/W, 12Ψ/W, DeepSpeed's figures.) Working
//! buffers come on top: activations, the gathered unit(s) in stage 3, one unit's full
//! gradient during its backward in stages 2–3.

use serde::Serialize;
use std::fmt;

use crate::stage::ZeroStage;

/// Bytes per rank by kind of state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StateBytes {
    pub parameters: i64,
    pub gradients: i64,
    pub master: i64,
    pub optimizer: i64,
}

impl StateBytes {
    pub fn total(&self) -> i64 {
        self.parameters + self.gradients + self.master + self.optimizer
    }

    /// What the formula above gives for `psi` (padded) elements.
    pub fn expected(
        stage: ZeroStage,
        world: usize,
        psi: i64,
        compute_bytes: i64,
        master_bytes: i64,
        optimizer_bytes: i64,
    ) -> Self {
        let w = world as i64;
        let split = |sharded: bool, bytes: i64| {
            if sharded {
                bytes * psi / w
            } else {
                bytes * psi
            }
        };
        StateBytes {
            parameters: split(stage.shards_parameters(), compute_bytes),
            gradients: split(stage.shards_gradients(), compute_bytes),
            master: split(stage.shards_optimizer(), master_bytes),
            optimizer: split(stage.shards_optimizer(), optimizer_bytes),
        }
    }
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for StateBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parameters {:.1} MiB, gradients {:.1} MiB, master {:.1} MiB, optimizer {:.1} MiB, total {:.1} MiB",
            mib(self.parameters),
            mib(self.gradients),
            mib(self.master),
            mib(self.optimizer),
            mib(self.total())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepspeed_figures_for_bf16_rmsprop() {
        let (psi, w) = (1_000_000, 4);
        let total = |s| StateBytes::expected(s, w, psi, 2, 4, 4).total();
        assert_eq!(total(ZeroStage::Zero0), 12 * psi);
        assert_eq!(total(ZeroStage::Zero1), 4 * psi + 8 * psi / 4);
        assert_eq!(total(ZeroStage::Zero2), 2 * psi + 10 * psi / 4);
        assert_eq!(total(ZeroStage::Zero3), 12 * psi / 4);
    }
}

//! Learning-rate schedule: linear warmup, then constant.

/// The schedule the RPO reference code (HALOs/DPO trainer) runs:
/// `LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warmup_steps + 1)))`,
/// stepped once after every optimizer step. Optimizer step `k` (from 0) therefore runs at
/// `base_lr · min(1, (k + 1) / (warmup_steps + 1))`: the first step already moves, at
/// `base_lr / (warmup_steps + 1)`, and step `warmup_steps` is the first at `base_lr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupConstant {
    pub base_lr: f64,
    pub warmup_steps: u64,
}

impl WarmupConstant {
    /// Learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        let ramp = (step + 1) as f64 / (self.warmup_steps + 1) as f64;
        self.base_lr * ramp.min(1.0)
    }
}

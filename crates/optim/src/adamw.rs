//! AdamW exactly as `torch.optim.AdamW` (decoupled weight decay, bias correction).

use crate::error::Result;
use tch::Tensor;

use crate::optimizer::Optimizer;
use crate::slots::Slots;

/// Hyper-parameters, named and defaulted as in `torch.optim.AdamW`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled: parameters shrink by `lr · weight_decay` each step.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

pub struct AdamW {
    config: AdamWConfig,
    slots: Slots,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            slots: Slots::new(vec!["exp_avg", "exp_avg_sq"]),
        }
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// One update; `step` counts from 1 (it sets the bias corrections).
    fn update(
        c: &AdamWConfig,
        param: &mut Tensor,
        grad: &Tensor,
        state: &mut [Tensor],
        lr: f64,
        step: i64,
    ) {
        let [exp_avg, exp_avg_sq] = state else {
            unreachable!("AdamW has two slots")
        };
        *param *= 1.0 - lr * c.weight_decay;
        let _ = exp_avg.lerp_(grad, 1.0 - c.beta1);
        *exp_avg_sq *= c.beta2;
        *exp_avg_sq += grad * grad * (1.0 - c.beta2);
        let bias_correction1 = 1.0 - c.beta1.powi(step as i32);
        let bias_correction2 = 1.0 - c.beta2.powi(step as i32);
        let step_size = lr / bias_correction1;
        let denom = exp_avg_sq.sqrt() / bias_correction2.sqrt() + c.eps;
        *param -= &*exp_avg / denom * step_size;
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], lr: f64) -> Result<()> {
        self.slots
            .take_step(params, grads, |param, grad, state, step| {
                Self::update(&self.config, param, grad, state, lr, step)
            })
    }

    fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.slots.named()
    }

    fn load_state_tensors(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        self.slots.load(named)
    }

    fn steps(&self) -> i64 {
        self.slots.step
    }

    fn slots_per_param(&self) -> usize {
        self.slots.len()
    }
}

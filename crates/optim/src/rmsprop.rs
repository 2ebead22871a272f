//! RMSprop exactly as `torch.optim.RMSprop` (the optimizer the RPO paper trains with).

use crate::error::Result;
use tch::Tensor;

use crate::optimizer::Optimizer;
use crate::slots::Slots;

/// Hyper-parameters, named and defaulted as in `torch.optim.RMSprop`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropConfig {
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    pub eps: f64,
    /// L2 penalty added to the gradient (not decoupled).
    pub weight_decay: f64,
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the raw second moment.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

pub struct RmsProp {
    config: RmsPropConfig,
    slots: Slots,
}

impl RmsProp {
    pub fn new(config: RmsPropConfig) -> Self {
        // Only the slots torch would create, so checkpoints hold the same state.
        let mut names = vec!["square_avg"];
        if config.momentum > 0.0 {
            names.push("momentum_buffer");
        }
        if config.centered {
            names.push("grad_avg");
        }
        Self {
            config,
            slots: Slots::new(names),
        }
    }

    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }

    fn update(c: &RmsPropConfig, param: &mut Tensor, grad: &Tensor, state: &mut [Tensor], lr: f64) {
        let grad = match c.weight_decay {
            0.0 => grad.shallow_clone(),
            wd => grad + &*param * wd,
        };
        let mut slots = state.iter_mut();
        let square_avg = slots.next().expect("square_avg slot");
        *square_avg *= c.alpha;
        *square_avg += &grad * &grad * (1.0 - c.alpha);
        let momentum_buffer = (c.momentum > 0.0).then(|| slots.next().expect("momentum slot"));
        let mut avg = if c.centered {
            let grad_avg = slots.next().expect("grad_avg slot");
            let _ = grad_avg.lerp_(&grad, 1.0 - c.alpha);
            (&*square_avg - &*grad_avg * &*grad_avg).sqrt()
        } else {
            square_avg.sqrt()
        };
        avg += c.eps;
        match momentum_buffer {
            Some(buf) => {
                *buf *= c.momentum;
                *buf += &grad / &avg;
                *param -= &*buf * lr;
            }
            None => *param -= grad / avg * lr,
        }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], lr: f64) -> Result<()> {
        self.slots
            .take_step(params, grads, |param, grad, state, _| {
                Self::update(&self.config, param, grad, state, lr)
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

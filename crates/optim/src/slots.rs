//! Per-parameter state buffers shared by the optimizers: named slots (torch's names,
//! e.g. `exp_avg`), created as zeros like the parameter on the first step.

use crate::error::{OptimError, Result};
use tch::{Kind, Tensor};

pub(crate) struct Slots {
    names: Vec<&'static str>,
    /// `buffers[param][slot]`; empty until the first step or a load.
    buffers: Vec<Vec<Tensor>>,
    pub(crate) step: i64,
}

impl Slots {
    pub(crate) fn new(names: Vec<&'static str>) -> Self {
        Self {
            names,
            buffers: Vec::new(),
            step: 0,
        }
    }

    /// State tensors per parameter.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Checks the step's inputs and makes the buffers match the parameters: zeros on
    /// first use; after a load, moved to the parameters' kind and device.
    fn prepare(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
        ensure!(
            params.len() == grads.len(),
            Shape,
            "optimizer step got {} parameters but {} gradients",
            params.len(),
            grads.len()
        );
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            ensure!(
                p.size() == g.size(),
                Shape,
                "gradient {i} has shape {:?} but its parameter {:?}",
                g.size(),
                p.size()
            );
        }
        if self.buffers.is_empty() {
            self.buffers = params
                .iter()
                .map(|p| self.names.iter().map(|_| p.zeros_like()).collect())
                .collect();
            return Ok(());
        }
        ensure!(
            self.buffers.len() == params.len(),
            Shape,
            "optimizer state holds {} parameters but the step passed {}",
            self.buffers.len(),
            params.len()
        );
        for (i, (p, bufs)) in params.iter().zip(&mut self.buffers).enumerate() {
            for (name, buf) in self.names.iter().zip(bufs.iter_mut()) {
                ensure!(
                    buf.size() == p.size(),
                    Shape,
                    "optimizer state {name}.{i} has shape {:?} but its parameter {:?}",
                    buf.size(),
                    p.size()
                );
                if buf.kind() != p.kind() || buf.device() != p.device() {
                    *buf = buf.to_device(p.device()).to_kind(p.kind());
                }
            }
        }
        Ok(())
    }

    /// One optimizer step: checks the inputs, counts the step and, without recording
    /// gradients, calls `update(param, grad, buffers, step)` for every parameter with its
    /// gradient in the parameter's kind and on its device (`step` counts from 1).
    pub(crate) fn take_step(
        &mut self,
        params: &mut [Tensor],
        grads: &[Tensor],
        mut update: impl FnMut(&mut Tensor, &Tensor, &mut [Tensor], i64),
    ) -> Result<()> {
        self.prepare(params, grads)?;
        self.step += 1;
        tch::no_grad(|| {
            for (i, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
                let grad = grad_like(grad, param);
                update(param, &grad, &mut self.of(i), self.step);
            }
        });
        Ok(())
    }

    /// Handles to parameter `i`'s buffers, in slot order (in-place ops update the state).
    fn of(&self, i: usize) -> Vec<Tensor> {
        self.buffers[i].iter().map(Tensor::shallow_clone).collect()
    }

    pub(crate) fn named(&self) -> Vec<(String, Tensor)> {
        if self.buffers.is_empty() {
            return Vec::new();
        }
        let mut out = vec![("step".to_owned(), Tensor::from(self.step))];
        for (i, bufs) in self.buffers.iter().enumerate() {
            for (name, buf) in self.names.iter().zip(bufs) {
                out.push((format!("{name}.{i}"), buf.shallow_clone()));
            }
        }
        out
    }

    pub(crate) fn load(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        let find = |key: &str| named.iter().find(|(k, _)| k == key).map(|(_, t)| t);
        let step = find("step")
            .ok_or_else(|| OptimError::State("optimizer state has no `step`".into()))?;
        let params = named
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{}.", self.names[0])))
            .count();
        let mut buffers = Vec::with_capacity(params);
        for i in 0..params {
            let mut bufs = Vec::with_capacity(self.names.len());
            for name in &self.names {
                match find(&format!("{name}.{i}")) {
                    Some(t) => bufs.push(t.copy()),
                    None => {
                        return Err(OptimError::State(format!(
                            "optimizer state has no `{name}.{i}`"
                        )))
                    }
                }
            }
            buffers.push(bufs);
        }
        ensure!(
            named.len() == 1 + params * self.names.len(),
            State,
            "optimizer state has entries beyond slots {:?} for {params} parameters",
            self.names
        );
        self.step = step.to_kind(Kind::Int64).int64_value(&[]);
        self.buffers = buffers;
        Ok(())
    }
}

/// `grad` in the kind and on the device of `param`.
fn grad_like(grad: &Tensor, param: &Tensor) -> Tensor {
    if grad.kind() == param.kind() && grad.device() == param.device() {
        grad.shallow_clone()
    } else {
        grad.to_device(param.device()).to_kind(param.kind())
    }
}

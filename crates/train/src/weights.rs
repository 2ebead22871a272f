//! The policy's weights: fp32 master weights that the optimizer updates, and the weights
//! the forward pass runs with. In fp32 they are the same tensors; in bf16 the compute
//! copy is refreshed from the masters after every update. Updating bf16 weights directly
//! would round away steps smaller than a bf16 ulp (≈1e-4 at 0.02): the paper's lr of
//! 5e-7 would not move the model at all.

use anyhow::{ensure, Result};
use rpo_model::{Llama, LlamaConfig};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

pub struct PolicyWeights {
    /// fp32, updated by the optimizer; saved at the end.
    pub master: VarStore,
    /// The compute copy and its model, when the compute dtype is not fp32.
    compute: Option<(Llama, VarStore)>,
    /// The model built on the master weights.
    master_model: Llama,
}

/// Trainable variables sorted by name, so two stores of one architecture line up.
fn by_name(vs: &VarStore) -> Vec<Tensor> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, t)| t).collect()
}

impl PolicyWeights {
    /// `master` must hold fp32 weights for `master_model`; `kind` is the compute dtype.
    pub fn new(
        master_model: Llama,
        mut master: VarStore,
        config: &LlamaConfig,
        kind: Kind,
    ) -> Result<Self> {
        master.set_kind(Kind::Float);
        let compute = if kind == Kind::Float {
            None
        } else {
            let mut vs = VarStore::new(master.device());
            vs.set_kind(kind);
            let model = Llama::new(&vs.root(), config)?;
            vs.copy(&master)?;
            Some((model, vs))
        };
        Ok(Self {
            master,
            compute,
            master_model,
        })
    }

    /// The model that runs forward and backward.
    pub fn model(&self) -> &Llama {
        self.compute.as_ref().map_or(&self.master_model, |(m, _)| m)
    }

    /// The store the forward pass reads (to copy a reference from, for example).
    pub fn compute_store(&self) -> &VarStore {
        self.compute.as_ref().map_or(&self.master, |(_, vs)| vs)
    }

    /// (tensors whose gradients the backward fills, fp32 masters the optimizer updates),
    /// aligned by parameter name.
    pub fn trainables(&self) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let master = by_name(&self.master);
        let compute = by_name(self.compute_store());
        ensure!(
            master.len() == compute.len(),
            "master and compute weights differ in count"
        );
        Ok((compute, master))
    }

    /// Refresh the compute copy from the masters after an update (no-op in fp32).
    pub fn sync(&self, compute: &[Tensor], master: &[Tensor]) {
        if self.compute.is_some() {
            tch::no_grad(|| {
                for (c, m) in compute.iter().zip(master) {
                    c.shallow_clone().copy_(m);
                }
            });
        }
    }
}

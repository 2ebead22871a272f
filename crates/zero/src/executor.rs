//! Layer-wise execution: the one loop behind ZeRO-3 gathering, activation checkpointing
//! and per-unit gradient reduction.
//!
//! Forward, unit by unit: make the unit's parameters present, run it, save its input,
//! release it. The head turns hidden states into sequence log-probs a chunk of positions
//! at a time, so the full `[B, T, V]` logits never exist.
//!
//! Backward, in reverse: make the parameters present again, recompute the unit from its
//! saved input (or reuse the graph kept in the forward), push the upstream gradient
//! through with `autograd.grad((y · g).sum(), [input, params…])`, which also hands back
//! the input's gradient — the next unit's upstream gradient — then file the parameters'
//! gradients (stages 2–3 reduce-scatter them at once) and release.

use anyhow::Result;
use rpo_losses::{position_chunks, sequence_logps, sequence_logps_chunked};
use rpo_model::UnitId;
use tch::{Kind, Tensor};

use crate::sharded_model::ShardedModel;

/// Token ids, shifted labels and the response mask of a batch of sequences, `[B, T]`.
pub struct Sequences<'a> {
    pub ids: &'a Tensor,
    pub labels: &'a Tensor,
    pub mask: &'a Tensor,
}

/// What the backward needs from the forward.
pub struct Tape {
    ids: Tensor,
    labels: Tensor,
    mask: Tensor,
    /// Each decoder layer's input, then the head's (detached; graph leaves when the
    /// layer graphs are kept).
    inputs: Vec<Tensor>,
    /// Without activation checkpointing: each layer's output, on its kept graph.
    outputs: Vec<Tensor>,
}

/// Sequence log-probs `[B]` of the policy, as a leaf the objective is computed from; its
/// gradient is what [`ShardedModel::backward`] pushes through the model.
pub struct PolicyLogps {
    pub logps: Tensor,
    tape: Tape,
}

impl ShardedModel {
    fn tied(&self) -> bool {
        self.model.config().tie_word_embeddings
    }

    /// Summed response log-probs `[B]` (fp32), without gradient.
    pub fn logps(&self, seqs: &Sequences) -> Result<Tensor> {
        tch::no_grad(|| self.run_forward(seqs, false)).map(|(logps, _)| logps)
    }

    /// Summed response log-probs `[B]` and the tape for the backward.
    pub fn forward(&self, seqs: &Sequences) -> Result<PolicyLogps> {
        let (logps, tape) = self.run_forward(seqs, true)?;
        Ok(PolicyLogps {
            logps: logps.set_requires_grad(true),
            tape: tape.expect("recorded"),
        })
    }

    fn run_forward(&self, seqs: &Sequences, record: bool) -> Result<(Tensor, Option<Tape>)> {
        let keep_graphs = record && !self.options.checkpoint_activations;
        let (embed, head) = (self.unit(UnitId::Embed), self.unit(UnitId::Head));
        let angles = self.model.rotary(0, seqs.ids.size()[1]);
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();

        self.gather(embed)?;
        let mut x = tch::no_grad(|| self.model.embed(seqs.ids));
        if !self.tied() {
            self.release(embed);
        }
        for (i, layer) in self.model.layers().iter().enumerate() {
            let unit = self.unit(UnitId::Layer(i));
            self.gather(unit)?;
            self.prefetch(unit + 1)?;
            if keep_graphs {
                let leaf = x.detach().set_requires_grad(true);
                let y = layer.forward(&leaf, &angles);
                x = y.detach();
                inputs.push(leaf);
                outputs.push(y);
            } else {
                let y = tch::no_grad(|| layer.forward(&x, &angles));
                if record {
                    inputs.push(x);
                }
                x = y;
            }
            self.release(unit);
        }
        self.gather(head)?;
        let head_fn = |h: &Tensor| self.model.head(h);
        let logps = tch::no_grad(|| {
            sequence_logps_chunked(
                &x,
                &head_fn,
                seqs.labels,
                seqs.mask,
                self.options.logits_chunk_tokens,
            )
        })?;
        self.release(head);
        if self.tied() {
            self.release(embed);
        }
        inputs.push(x);
        let tape = record.then(|| Tape {
            ids: seqs.ids.shallow_clone(),
            labels: seqs.labels.shallow_clone(),
            mask: seqs.mask.shallow_clone(),
            inputs,
            outputs,
        });
        Ok((logps, tape))
    }

    /// Pushes `objective`'s gradient through the policy: the objective's own backward
    /// down to the log-probs leaf, then unit by unit through the model. Every rank must
    /// call this for every forward (stages 2–3 reduce-scatter inside).
    pub fn backward(&self, objective: &Tensor, pass: PolicyLogps) -> Result<()> {
        objective.backward();
        let grad = pass.logps.grad();
        let grad = if grad.defined() {
            grad
        } else {
            pass.logps.zeros_like()
        };
        self.backward_from(pass.tape, &grad.detach())
    }

    fn backward_from(&self, mut tape: Tape, grad_logps: &Tensor) -> Result<()> {
        let (embed, head) = (self.unit(UnitId::Embed), self.unit(UnitId::Head));
        let comm = self.comm.as_ref();
        if self.tied() {
            self.gather(embed)?;
        }
        self.gather(head)?;
        let head_input = tape.inputs.pop().expect("the head's input");
        let mut g = self.head_backward(&head_input, &tape, grad_logps)?;
        self.release(head);
        self.grads.borrow_mut().finish(head, comm)?;

        let angles = self.model.rotary(0, tape.ids.size()[1]);
        for (i, layer) in self.model.layers().iter().enumerate().rev() {
            let unit = self.unit(UnitId::Layer(i));
            self.gather(unit)?;
            let input = tape.inputs.pop().expect("a layer's input");
            let (leaf, y) = match tape.outputs.pop() {
                Some(y) => (input, y),
                None => {
                    let leaf = input.detach().set_requires_grad(true);
                    let y = layer.forward(&leaf, &angles);
                    (leaf, y)
                }
            };
            let mut wrt = vec![leaf];
            wrt.extend(self.vars(unit));
            let mut grads = Tensor::run_backward(&[(&y * &g).sum(y.kind())], &wrt, false, false);
            g = grads.remove(0);
            self.file_grads(unit, &grads);
            self.release(unit);
            self.grads.borrow_mut().finish(unit, comm)?;
        }

        self.gather(embed)?;
        let y = self.model.embed(&tape.ids);
        let grads =
            Tensor::run_backward(&[(&y * &g).sum(y.kind())], &self.vars(embed), false, false);
        self.file_grads(embed, &grads);
        self.release(embed);
        self.grads.borrow_mut().finish(embed, comm)
    }

    /// The head's backward, recomputed a chunk of positions at a time (as its forward
    /// ran): returns the gradient of its input `[B, T, H]`.
    fn head_backward(&self, x: &Tensor, tape: &Tape, grad_logps: &Tensor) -> Result<Tensor> {
        let (embed, head) = (self.unit(UnitId::Embed), self.unit(UnitId::Head));
        let head_vars = self.vars(head);
        let n_head = head_vars.len();
        let mut wrt_params = head_vars;
        if self.tied() {
            wrt_params.extend(self.vars(embed));
        }
        let (rows, len, _) = x.size3()?;
        let dx = x.zeros_like();
        for (start, n) in position_chunks(rows, len, self.options.logits_chunk_tokens) {
            let xc = x.narrow(1, start, n).detach().set_requires_grad(true);
            let lp = sequence_logps(
                &self.model.head(&xc),
                &tape.labels.narrow(1, start, n),
                &tape.mask.narrow(1, start, n),
            )?;
            let root = (lp * grad_logps.to_kind(Kind::Float)).sum(Kind::Float);
            let mut wrt = vec![xc];
            wrt.extend(wrt_params.iter().map(Tensor::shallow_clone));
            let mut grads = Tensor::run_backward(&[root], &wrt, false, false);
            tch::no_grad(|| dx.narrow(1, start, n).copy_(&grads.remove(0)));
            self.file_grads(head, &grads[..n_head]);
            if self.tied() {
                self.file_grads(embed, &grads[n_head..]);
            }
        }
        Ok(dx)
    }

    fn file_grads(&self, unit: usize, grads: &[Tensor]) {
        let slots: Vec<usize> = (0..grads.len()).collect();
        self.grads
            .borrow_mut()
            .add(&self.layout, unit, &slots, grads);
    }
}

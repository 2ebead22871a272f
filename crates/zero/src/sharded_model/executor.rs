//! Layer-wise execution: the one loop behind ZeRO-3 gathering, activation checkpointing
//! and per-unit gradient reduction.
//!
//! Forward, unit by unit: make the unit's parameters present, run it, save its input,
//! release it. The head turns hidden states into sequence log-probs only at the scored
//! (response) positions, a chunk of them at a time, so the full `[B, T, V]` logits never
//! exist and prompt positions never meet the vocabulary.
//!
//! The rows are right-padded sequences, or packed rows ([`PackedRows`]: a shared prompt
//! followed by its responses, or several sequences per row) with their own positions and
//! attention mask; the executor runs both the same way.
//!
//! Backward, in reverse: make the parameters present again, recompute the unit from its
//! saved input (or reuse the graph kept in the forward), push the upstream gradient
//! through with `autograd.grad((y · g).sum(), [input, params…])`, which also hands back
//! the input's gradient — the next unit's upstream gradient — then file the parameters'
//! gradients (stages 2–3 reduce-scatter them) and release.
//!
//! Overlap (`[zero] overlap`, default on): in stage 3 the next unit's all-gather (in the
//! pass's order) is started before the current unit runs and awaited when that unit is
//! gathered — one unit ahead, so at most two units are gathered at once (three with a tied
//! embedding, which stays gathered across the head); in stages 2–3 a unit's reduce-
//! scatter is started when its backward ends and awaited when the next one starts or the
//! backward ends (`grads.rs`). Between units, and between chunks of the head, the
//! collectives in flight are tested, which is where Open MPI (no progress thread) moves
//! them on. Off, every collective blocks where it is issued; the results are the same.

use rpo_losses::{targets_logps_chunked, ScoredTargets};
use rpo_model::{RowLayout, UnitId};
use tch::{Kind, Tensor};

use super::ShardedModel;
use crate::error::Result;

/// Token ids, shifted labels and the response mask of a batch of sequences, `[B, T]`,
/// right-padded; `packed`, when given, is the same sequences in the layout the model
/// runs instead (the padded form still names them, e.g. for the reference cache).
pub struct Sequences<'a> {
    pub ids: &'a Tensor,
    pub labels: &'a Tensor,
    pub mask: &'a Tensor,
    pub packed: Option<&'a PackedRows>,
    /// Padded rows: their scored positions when the caller found them on the host (else
    /// they are found from `mask` on its device, which on a GPU waits for the device).
    pub targets: Option<&'a ScoredTargets>,
}

/// Sequences laid out in rows `[R, T]` with their own positions and attention mask, and
/// the scored positions whose log-probs sum into each sequence.
#[derive(Debug)]
pub struct PackedRows {
    pub ids: Tensor,
    pub layout: RowLayout,
    pub targets: ScoredTargets,
}

impl PackedRows {
    pub fn to_device(&self, device: tch::Device) -> Self {
        Self {
            ids: rpo_model::upload(&self.ids, device),
            layout: self.layout.to_device(device),
            targets: ScoredTargets {
                index: rpo_model::upload(&self.targets.index, device),
                ids: rpo_model::upload(&self.targets.ids, device),
                seq: rpo_model::upload(&self.targets.seq, device),
                count: self.targets.count,
            },
        }
    }

    pub fn shallow_clone(&self) -> Self {
        Self {
            ids: self.ids.shallow_clone(),
            layout: self.layout.shallow_clone(),
            targets: self.targets.shallow_clone(),
        }
    }
}

impl Sequences<'_> {
    /// The rows the model runs: the packed layout, or the padded rows scored where the
    /// mask is set.
    pub fn rows(&self) -> rpo_losses::Result<(Tensor, Option<RowLayout>, ScoredTargets)> {
        Ok(match self.packed {
            Some(p) => (
                p.ids.shallow_clone(),
                Some(p.layout.shallow_clone()),
                p.targets.shallow_clone(),
            ),
            None => (
                self.ids.shallow_clone(),
                None,
                match self.targets {
                    Some(t) => t.shallow_clone(),
                    None => ScoredTargets::from_mask(self.labels, self.mask)?,
                },
            ),
        })
    }
}

/// What the backward needs from the forward.
pub struct Tape {
    ids: Tensor,
    layout: Option<RowLayout>,
    targets: ScoredTargets,
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
        let (ids, layout, targets) = seqs.rows()?;
        let attention = self.model.attention_inputs(ids.size()[1], layout.as_ref());
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();

        self.gather(embed)?;
        self.prefetch(embed + 1)?;
        let mut x = tch::no_grad(|| self.model.embed(&ids));
        if !self.tied() {
            self.release(embed);
        }
        self.progress()?;
        for (i, layer) in self.model.layers().iter().enumerate() {
            let unit = self.unit(UnitId::Layer(i));
            self.gather(unit)?;
            self.prefetch(unit + 1)?;
            if keep_graphs {
                let leaf = x.detach().set_requires_grad(true);
                let y = layer.forward_in(&leaf, &attention);
                x = y.detach();
                inputs.push(leaf);
                outputs.push(y);
            } else {
                let y = tch::no_grad(|| layer.forward_in(&x, &attention));
                if record {
                    inputs.push(x);
                }
                x = y;
            }
            self.release(unit);
            self.progress()?;
        }
        self.gather(head)?;
        // The head runs chunk by chunk: a chance to move the collectives in flight on.
        let head_fn = |h: &Tensor| {
            let _ = self.progress();
            self.model.head(h)
        };
        let logps = tch::no_grad(|| {
            targets_logps_chunked(&x, &head_fn, &targets, self.options.logits_chunk_tokens)
        })?;
        self.release(head);
        if self.tied() {
            self.release(embed);
        }
        inputs.push(x);
        let tape = record.then(|| Tape {
            ids,
            layout,
            targets,
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
        if self.tied() {
            self.gather(embed)?;
        }
        self.gather(head)?;
        self.prefetch(head - 1)?;
        let head_input = tape.inputs.pop().expect("the head's input");
        let mut g = self.head_backward(&head_input, &tape, grad_logps)?;
        self.release(head);
        self.finish(head)?;

        let attention = self
            .model
            .attention_inputs(tape.ids.size()[1], tape.layout.as_ref());
        for (i, layer) in self.model.layers().iter().enumerate().rev() {
            let unit = self.unit(UnitId::Layer(i));
            self.gather(unit)?;
            self.prefetch(unit - 1)?;
            let input = tape.inputs.pop().expect("a layer's input");
            let (leaf, y) = match tape.outputs.pop() {
                Some(y) => (input, y),
                None => {
                    let leaf = input.detach().set_requires_grad(true);
                    let y = layer.forward_in(&leaf, &attention);
                    (leaf, y)
                }
            };
            let mut wrt = vec![leaf];
            wrt.extend(self.vars(unit));
            let mut grads = Tensor::run_backward(&[(&y * &g).sum(y.kind())], &wrt, false, false);
            g = grads.remove(0);
            self.file_grads(unit, &grads);
            self.release(unit);
            self.finish(unit)?;
        }

        self.gather(embed)?;
        let y = self.model.embed(&tape.ids);
        let grads =
            Tensor::run_backward(&[(&y * &g).sum(y.kind())], &self.vars(embed), false, false);
        self.file_grads(embed, &grads);
        self.release(embed);
        self.finish(embed)?;
        // The own slices are complete when the backward returns.
        Ok(self.timed(|| self.grads.borrow_mut().drain())?)
    }

    /// Unit `unit`'s backward is done: its gradient is reduce-scattered (stages 2–3;
    /// started only, with overlap), then the collectives in flight are moved on.
    fn finish(&self, unit: usize) -> rpo_comm::Result<()> {
        self.timed(|| self.grads.borrow_mut().finish(unit, self.comm.as_ref()))?;
        self.progress()
    }

    /// The head's backward, recomputed a chunk of scored positions at a time (as its
    /// forward ran): returns the gradient of its input `[R, T, H]` (zero where nothing
    /// is scored).
    fn head_backward(&self, x: &Tensor, tape: &Tape, grad_logps: &Tensor) -> Result<Tensor> {
        let (embed, head) = (self.unit(UnitId::Embed), self.unit(UnitId::Head));
        let head_vars = self.vars(head);
        let n_head = head_vars.len();
        let mut wrt_params = head_vars;
        if self.tied() {
            wrt_params.extend(self.vars(embed));
        }
        let hidden = *x.size().last().expect("[R, T, H]");
        let dx = x.zeros_like();
        let mut dx_flat = dx.view([-1, hidden]);
        let targets = &tape.targets;
        let grad_logps = grad_logps.to_kind(Kind::Float);
        for (start, n) in targets.chunks(self.options.logits_chunk_tokens) {
            let xc = targets
                .hidden_at(x, start, n)
                .detach()
                .set_requires_grad(true);
            let lp = targets.token_logps(&self.model.head(&xc), start, n);
            let weights = grad_logps.index_select(0, &targets.seq.narrow(0, start, n));
            let root = (lp.to_kind(Kind::Float) * weights).sum(Kind::Float);
            let mut wrt = vec![xc];
            wrt.extend(wrt_params.iter().map(Tensor::shallow_clone));
            let mut grads = Tensor::run_backward(&[root], &wrt, false, false);
            self.progress()?;
            let index = targets.index.narrow(0, start, n);
            tch::no_grad(|| {
                let _ = dx_flat.index_add_(0, &index, &grads.remove(0));
            });
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

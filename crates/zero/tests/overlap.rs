//! `[zero] overlap` in one process: which collectives the executor issues, and in what
//! order, with overlap on and off, and that both give the same bits. A recording
//! communicator (the identity of one process underneath) notes every call: with overlap,
//! stage 3 starts each unit's all-gather one unit ahead (only the first unit of each pass
//! is gathered blocking) and stages 2–3 start every reduce-scatter; without, nothing is
//! started ahead. The multi-rank runs (MPI immediate collectives really in flight) are in
//! crates/cli/tests/overlap.rs.

use rpo_comm::{Collective, Pending, Result as CommResult, SingleProcess, Traffic};
use rpo_model::{preset, Llama};
use rpo_optim::{RmsProp, RmsPropConfig};
use rpo_zero::{Sequences, ShardedModel, ZeroOptions, ZeroStage};
use std::cell::RefCell;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

type Log = Rc<RefCell<Vec<(&'static str, i64)>>>;

/// One process's collectives, each call noted with the number of elements it was given.
struct Recording {
    inner: SingleProcess,
    log: Log,
}

impl Recording {
    fn note(&self, op: &'static str, t: &Tensor) {
        self.log.borrow_mut().push((op, t.numel() as i64));
    }
}

impl Collective for Recording {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn local_rank(&self) -> usize {
        0
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn backend(&self) -> &'static str {
        "recording"
    }
    fn all_gather(&self, t: &Tensor) -> CommResult<Tensor> {
        self.note("all_gather", t);
        self.inner.all_gather(t)
    }
    fn reduce_scatter(&self, t: &Tensor) -> CommResult<Tensor> {
        self.note("reduce_scatter", t);
        self.inner.reduce_scatter(t)
    }
    fn all_reduce(&self, t: &mut Tensor) -> CommResult<()> {
        self.inner.all_reduce(t)
    }
    fn broadcast(&self, t: &mut Tensor, root: usize) -> CommResult<()> {
        self.inner.broadcast(t, root)
    }
    fn barrier(&self) -> CommResult<()> {
        Ok(())
    }
    fn start_all_gather(&self, t: &Tensor) -> CommResult<Pending> {
        self.note("start_all_gather", t);
        Ok(Pending::ready(self.inner.all_gather(t)?))
    }
    fn start_reduce_scatter(&self, t: &Tensor) -> CommResult<Pending> {
        self.note("start_reduce_scatter", t);
        Ok(Pending::ready(self.inner.reduce_scatter(t)?))
    }
    fn split(&self, _color: usize) -> CommResult<Box<dyn Collective>> {
        Ok(Box::new(Recording {
            inner: SingleProcess::new(Device::Cpu),
            log: self.log.clone(),
        }))
    }
    fn traffic(&self) -> Traffic {
        self.inner.traffic()
    }
}

struct Run {
    log: Vec<(&'static str, i64)>,
    /// Unit sizes in forward order (elements of each flat buffer).
    units: Vec<i64>,
    logps: Tensor,
    after: Vec<(String, Tensor)>,
}

/// Two micro-batches (gradient accumulation) and one step.
fn run(stage: ZeroStage, tied: bool, overlap: bool) -> Run {
    let mut config = preset("tiny").unwrap();
    config.vocab_size = 97;
    config.tie_word_embeddings = tied;
    let (model, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let log: Log = Rc::default();
    let world = Recording {
        inner: SingleProcess::new(Device::Cpu),
        log: log.clone(),
    };
    let options = ZeroOptions {
        logits_chunk_tokens: 7,
        overlap,
        ..ZeroOptions::new(stage, Kind::Float)
    };
    let sm = ShardedModel::new(model, vs, &world, options).unwrap();
    log.borrow_mut().clear(); // the set-up's broadcasts
    let ids = (Tensor::arange(24, (Kind::Int64, Device::Cpu)) * 31 + 5)
        .remainder(97)
        .view([2, 12]);
    let labels = ids.roll([-1], [1]);
    let mask = Tensor::ones([2, 12], (Kind::Int64, Device::Cpu));
    let _ = mask.narrow(1, 0, 3).fill_(0);
    let seqs = Sequences {
        ids: &ids,
        labels: &labels,
        mask: &mask,
        packed: None,
        targets: None,
    };
    let mut logps = Vec::new();
    for w in [1.0f64, -0.5] {
        let pass = sm.forward(&seqs).unwrap();
        logps.push(pass.logps.detach().copy());
        let objective = (&pass.logps * w).sum(Kind::Float);
        sm.backward(&objective, pass).unwrap();
    }
    let mut optimizer = RmsProp::new(RmsPropConfig {
        eps: 1e-3,
        ..RmsPropConfig::default()
    });
    sm.step(&mut optimizer, 1e-3, 1.0).unwrap();
    let passes = log.borrow().clone();
    Run {
        log: passes,
        units: sm.layout().units.iter().map(|u| u.padded).collect(),
        logps: Tensor::cat(&logps, 0),
        after: sm.full_master().unwrap(),
    }
}

fn same_bits(a: &Run, b: &Run, what: &str) {
    assert!(a.logps.equal(&b.logps), "{what}: log-probs differ");
    assert_eq!(a.after.len(), b.after.len());
    for ((n, x), (m, y)) in a.after.iter().zip(&b.after) {
        assert_eq!(n, m);
        assert!(x.equal(y), "{what}: {n} differs after a step");
    }
}

/// The calls of one kind, by size.
fn calls(run: &Run, op: &str) -> Vec<i64> {
    run.log
        .iter()
        .filter(|(o, _)| *o == op)
        .map(|(_, n)| *n)
        .collect()
}

#[test]
fn stage3_gathers_one_unit_ahead_and_starts_every_reduce_scatter() {
    for tied in [false, true] {
        let (plain, overlapped) = (
            run(ZeroStage::Zero3, tied, false),
            run(ZeroStage::Zero3, tied, true),
        );
        let what = format!("stage 3, tied {tied}");
        same_bits(&plain, &overlapped, &what);
        let n = plain.units.len();
        // Without overlap: every gather and reduce-scatter blocks.
        assert!(calls(&plain, "start_all_gather").is_empty(), "{what}");
        assert!(calls(&plain, "start_reduce_scatter").is_empty(), "{what}");
        assert_eq!(calls(&plain, "reduce_scatter").len(), 2 * n, "{what}");
        // With: the same reduce-scatters, all started; the same number of gathers, of
        // which only the first unit of each pass blocks (with a tied embedding, the
        // backward's first gather is the embedding, which stays until its end).
        assert!(calls(&overlapped, "reduce_scatter").is_empty(), "{what}");
        assert_eq!(
            calls(&overlapped, "start_reduce_scatter"),
            calls(&plain, "reduce_scatter"),
            "{what}"
        );
        let gathers = |r: &Run| calls(r, "all_gather").len() + calls(r, "start_all_gather").len();
        assert_eq!(gathers(&plain), gathers(&overlapped), "{what}");
        // Per micro-batch: the forward's embedding and the backward's head (and tied
        // embedding) block; the rest were started a unit ahead.
        let blocking_per_micro_batch = if tied { 3 } else { 2 };
        assert_eq!(
            calls(&overlapped, "all_gather").len(),
            2 * blocking_per_micro_batch,
            "{what}: {:?}",
            overlapped.log
        );
        // One unit ahead: in the forward, unit i + 1's gather starts before unit i's
        // gradient or any later gather; the log of the first forward is the units in
        // order, the first blocking, the rest started.
        let first_forward: Vec<(&str, i64)> = overlapped.log[..n].to_vec();
        let expected: Vec<(&str, i64)> = (0..n)
            .map(|i| {
                (
                    if i == 0 {
                        "all_gather"
                    } else {
                        "start_all_gather"
                    },
                    plain.units[i],
                )
            })
            .collect();
        assert_eq!(first_forward, expected, "{what}");
    }
}

#[test]
fn stage2_starts_every_reduce_scatter_and_gives_the_same_bits() {
    for tied in [false, true] {
        let (plain, overlapped) = (
            run(ZeroStage::Zero2, tied, false),
            run(ZeroStage::Zero2, tied, true),
        );
        let what = format!("stage 2, tied {tied}");
        same_bits(&plain, &overlapped, &what);
        let n = plain.units.len();
        assert_eq!(calls(&plain, "reduce_scatter").len(), 2 * n, "{what}");
        assert!(calls(&plain, "start_reduce_scatter").is_empty(), "{what}");
        assert_eq!(
            calls(&overlapped, "start_reduce_scatter"),
            calls(&plain, "reduce_scatter"),
            "{what}"
        );
        assert!(calls(&overlapped, "reduce_scatter").is_empty(), "{what}");
    }
}

//! Bytes moved per kind of collective, counted by the backends.
//!
//! The convention is DeepSpeed's: a collective over a buffer of `n` elements counts
//! `n × dtype size` (the full gathered or pre-scatter buffer), so one reduce-scatter plus
//! one all-gather of Ψ parameters reads as 2Ψ.

use std::cell::Cell;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub all_gather: u64,
    pub reduce_scatter: u64,
    pub all_reduce: u64,
    pub broadcast: u64,
    pub calls: u64,
}

impl Traffic {
    pub fn total(&self) -> u64 {
        self.all_gather + self.reduce_scatter + self.all_reduce + self.broadcast
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            all_gather: self.all_gather - earlier.all_gather,
            reduce_scatter: self.reduce_scatter - earlier.reduce_scatter,
            all_reduce: self.all_reduce - earlier.all_reduce,
            broadcast: self.broadcast - earlier.broadcast,
            calls: self.calls - earlier.calls,
        }
    }
}

/// Interior-mutable counters owned by one communicator (collectives run on one thread).
#[derive(Debug, Default)]
pub struct TrafficCounter(Cell<Traffic>);

impl TrafficCounter {
    pub fn get(&self) -> Traffic {
        self.0.get()
    }

    fn add(&self, f: impl FnOnce(&mut Traffic)) {
        let mut t = self.0.get();
        f(&mut t);
        t.calls += 1;
        self.0.set(t);
    }

    pub fn all_gather(&self, bytes: u64) {
        self.add(|t| t.all_gather += bytes)
    }
    pub fn reduce_scatter(&self, bytes: u64) {
        self.add(|t| t.reduce_scatter += bytes)
    }
    pub fn all_reduce(&self, bytes: u64) {
        self.add(|t| t.all_reduce += bytes)
    }
    pub fn broadcast(&self, bytes: u64) {
        self.add(|t| t.broadcast += bytes)
    }
}

/// `numel × element size` of a tensor.
pub(crate) fn tensor_bytes(t: &tch::Tensor) -> u64 {
    (t.numel() * t.kind().elt_size_in_bytes()) as u64
}

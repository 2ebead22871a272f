//! Device-to-host reads, counted.
//!
//! Reading a tensor's values on the host (`double_value`, `Vec::try_from`, `.to_device(Cpu)`
//! followed by a copy) waits for every kernel queued before it: on a GPU each read stalls
//! the stream and leaves the device idle while the host catches up. The training step
//! therefore reads the device exactly once per optimizer step (its metrics and gradient
//! norm, stacked into one tensor) and never per micro-batch.
//!
//! Every device-to-host read of the training step goes through this module, which counts
//! it in a process-wide counter ([`reads`]). The count is logical: a read of a CPU tensor
//! counts too, so tests on the CPU see the reads a GPU run would make. The trainer
//! records each step's reads in `metrics.jsonl` (`host_reads`), and a test holds the step
//! to one (`crates/cli/tests/host_reads.rs`).
//!
//! Host-to-device uploads (index and mask tensors built on the host, embeddings, host
//! counts) are not reads and are not counted.

use crate::error::{CommError, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use tch::{Device, Kind, Tensor};

static READS: AtomicU64 = AtomicU64::new(0);

/// Device-to-host reads made through this module since the process started.
pub fn reads() -> u64 {
    READS.load(Ordering::Relaxed)
}

/// Reads made since `before` (a value of [`reads`]): the counter snapshot of a window.
pub fn reads_since(before: u64) -> u64 {
    reads().saturating_sub(before)
}

fn counted() {
    READS.fetch_add(1, Ordering::Relaxed);
}

/// `t` on the host, contiguous, as `kind` (one counted read).
fn host(t: &Tensor, kind: Kind) -> Tensor {
    counted();
    t.detach()
        .to_device(Device::Cpu)
        .to_kind(kind)
        .contiguous()
        .view([-1])
}

/// Every element of `t` (any shape, any real kind), flattened, as f64: one read.
pub fn to_host_f64s(t: &Tensor) -> Result<Vec<f64>> {
    Vec::<f64>::try_from(host(t, Kind::Double)).map_err(|source| CommError::Host { source })
}

/// Every element of `t` (any shape, any integer or real kind), flattened, as i64: one read.
pub fn to_host_i64s(t: &Tensor) -> Result<Vec<i64>> {
    Vec::<i64>::try_from(host(t, Kind::Int64)).map_err(|source| CommError::Host { source })
}

/// Every element of `t` (any shape), flattened, as f32: one read.
pub fn to_host_f32s(t: &Tensor) -> Result<Vec<f32>> {
    Vec::<f32>::try_from(host(t, Kind::Float)).map_err(|source| CommError::Host { source })
}

/// The one value of a one-element tensor, as f64: one read.
pub fn to_host_f64(t: &Tensor) -> Result<f64> {
    ensure!(
        t.numel() == 1,
        "to_host_f64: a tensor of shape {:?} has no single value",
        t.size()
    );
    Ok(to_host_f64s(t)?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_counted_and_exact() {
        let before = reads();
        let t = Tensor::from_slice(&[0.1f32, -2.5, 3.0]);
        let v = to_host_f64s(&t).unwrap();
        assert_eq!(v, vec![0.1f32 as f64, -2.5, 3.0]);
        assert_eq!(
            to_host_i64s(&Tensor::from_slice(&[7i64, -1])).unwrap(),
            [7, -1]
        );
        let x = Tensor::from(1.0f64 / 3.0);
        assert_eq!(to_host_f64(&x).unwrap(), 1.0 / 3.0);
        assert!(to_host_f64(&t).is_err());
        // Other tests of this binary may read too: at least these three.
        assert!(reads_since(before) >= 3);
    }
}

//! Collectives over tensors, behind one interface.
//!
//! Every distributed feature of rpo-shard (data parallelism, the global contrast matrix,
//! ZeRO) talks to a [`Collective`]; which backend runs underneath is chosen once at
//! start by [`Runtime::init`]:
//!
//! - [`SingleProcess`]: world size 1, no launcher needed.
//! - [`MpiCollective`]: CPU tensors between processes started by `mpirun` / `srun`.
//! - [`NcclCollective`]: CUDA tensors, bootstrapped over MPI (or alone when W = 1).
//!
//! All reductions are sums. Gathers and scatters work along dimension 0 in rank order.

#[macro_use]
mod error;
#[cfg(feature = "mpi")]
mod bytes;
pub mod host;
mod launch;
#[cfg(feature = "mpi")]
mod mpi_backend;
mod nccl;
mod nccl_watch;
mod pending;
#[cfg(feature = "mpi")]
mod roll_call;
pub mod selftest;
mod single;
mod traffic;
mod varlen;
pub mod watchdog;

pub use error::{CommError, Result};
pub use launch::{launched_rank, launched_world_size, Backend, Runtime};
#[cfg(feature = "mpi")]
pub use mpi_backend::MpiCollective;
pub use nccl::{nccl_available, NcclCollective};
pub use pending::Pending;
pub use single::SingleProcess;
pub use traffic::{Traffic, TrafficCounter};
pub use varlen::{
    all_gather_counts, all_gather_known, all_gather_varlen, all_reduce_f64s, reduce_scatter_varlen,
};
pub use watchdog::{Watchdog, WATCHDOG_EXIT_CODE};

use tch::{Device, Tensor};

/// A communicator: a fixed, ordered group of ranks that take part in every call together.
///
/// Every rank of the group must make the same calls in the same order with tensors of the
/// same shape and dtype; a rank that skips one blocks the others.
pub trait Collective {
    /// This process's index in the group, `0..world_size()`.
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// This process's index among the group's processes on the same node (its GPU index).
    fn local_rank(&self) -> usize;
    /// Where tensors passed to this communicator must live.
    fn device(&self) -> Device;
    /// A short name for logs: "single", "mpi", "nccl".
    fn backend(&self) -> &'static str;

    /// Every rank's `t` concatenated along dim 0 in rank order: `[n, ..] -> [W·n, ..]`.
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;
    /// The sum over ranks of `t` `[W·n, ..]`, of which this rank receives block `rank`: `[n, ..]`.
    fn reduce_scatter(&self, t: &Tensor) -> Result<Tensor>;
    /// `t` becomes the sum over ranks of `t`, in place.
    fn all_reduce(&self, t: &mut Tensor) -> Result<()>;
    /// `t` becomes rank `root`'s `t`, in place.
    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()>;
    fn barrier(&self) -> Result<()>;

    /// Starts [`all_gather`](Self::all_gather); the result comes from [`Pending::wait`].
    /// Backends without background collectives complete it here. The input may be read
    /// until then: do not modify it in between. Every rank must start the same
    /// collectives in the same order; they may be waited for in any order.
    fn start_all_gather(&self, t: &Tensor) -> Result<Pending> {
        Ok(Pending::ready(self.all_gather(t)?))
    }
    /// Starts [`reduce_scatter`](Self::reduce_scatter).
    fn start_reduce_scatter(&self, t: &Tensor) -> Result<Pending> {
        Ok(Pending::ready(self.reduce_scatter(t)?))
    }
    /// Starts an all-reduce of `t` (left unchanged); `wait` gives the sum over ranks.
    fn start_all_reduce(&self, t: &Tensor) -> Result<Pending> {
        let mut sum = t.copy();
        self.all_reduce(&mut sum)?;
        Ok(Pending::ready(sum))
    }
    /// The sub-communicator of the ranks that pass the same `color`, ordered by rank.
    /// Every rank of this group must call it.
    fn split(&self, color: usize) -> Result<Box<dyn Collective>>;
    /// Bytes moved by this communicator's collectives so far.
    fn traffic(&self) -> Traffic;
}

/// Checks shared by the backends: a tensor a collective can read as one buffer.
pub(crate) fn check_tensor(c: &dyn Collective, t: &Tensor, what: &str) -> Result<()> {
    ensure!(
        t.device() == c.device(),
        "{what}: tensor on {:?}, but the {} communicator works on {:?}",
        t.device(),
        c.backend(),
        c.device()
    );
    Ok(())
}

/// `[W·n, ..]`: the leading dimension must split evenly over the ranks.
pub(crate) fn block_rows(t: &Tensor, world: usize, what: &str) -> Result<i64> {
    let rows = *t
        .size()
        .first()
        .ok_or_else(|| CommError::Invalid(format!("{what}: a scalar has no rows to scatter")))?;
    ensure!(
        rows % world as i64 == 0,
        "{what}: {rows} rows do not split evenly over {world} ranks"
    );
    Ok(rows / world as i64)
}

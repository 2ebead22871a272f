//! MPI (rsmpi) between processes, for CPU tensors.
//!
//! Tensors of another device are staged through host memory, so the backend also serves
//! small bookkeeping collectives (metrics, counts) of a GPU run.

use anyhow::Result;
use mpi::collective::SystemOperation;
use mpi::topology::{Color, Communicator, SimpleCommunicator};
use mpi::traits::*;
use tch::{Device, Kind, Tensor};

use crate::bytes::{as_bytes, as_bytes_mut, host_contiguous, reduction_kind};
use crate::traffic::{tensor_bytes, Traffic, TrafficCounter};
use crate::{block_rows, Collective};

pub struct MpiCollective {
    comm: SimpleCommunicator,
    local_rank: usize,
    traffic: TrafficCounter,
    /// Sum bf16 in bf16 as NCCL's ring does ([`BF16_SUM_ENV`] = "ring") instead of in fp32.
    bf16_ring: bool,
}

/// `RPO_MPI_BF16_SUM=ring` makes the MPI backend sum bf16 tensors as NCCL does: in bf16,
/// rounding after every hop of a ring, instead of widening to fp32 first. It exists so a
/// CPU test can see what a bf16 gradient reduction costs on GPUs.
pub const BF16_SUM_ENV: &str = "RPO_MPI_BF16_SUM";

impl MpiCollective {
    /// Wraps a communicator; the node-local rank comes from a shared-memory split.
    pub fn new(comm: SimpleCommunicator) -> Self {
        let local_rank = comm.split_shared(comm.rank()).rank() as usize;
        let bf16_ring = std::env::var(BF16_SUM_ENV).is_ok_and(|v| v == "ring");
        Self {
            comm,
            local_rank,
            traffic: TrafficCounter::default(),
            bf16_ring,
        }
    }

    /// The sum over ranks of a bf16 tensor as NCCL's ring computes it: chunk j (of W
    /// equal flat chunks) starts from rank j + 1's values and goes round the ring to rank
    /// j, each hop adding in fp32 and rounding to bf16. (Gathers every rank's tensor to
    /// get there: a test mode, not a fast path.)
    fn ring_sum_bf16(&self, t: &Tensor) -> Result<Tensor> {
        let w = self.world_size();
        let send = host_contiguous(t).reshape([-1]);
        let n = send.numel() as i64;
        let all = Tensor::empty([w as i64, n], (Kind::BFloat16, Device::Cpu));
        self.comm
            .all_gather_into(as_bytes(&send)?, as_bytes_mut(&all)?);
        let out = Tensor::empty([n], (Kind::BFloat16, Device::Cpu));
        let chunk = (n + w as i64 - 1) / w as i64;
        for j in 0..w {
            let start = (j as i64 * chunk).min(n);
            let len = chunk.min(n - start);
            if len == 0 {
                continue;
            }
            let part = |r: usize| all.get(r as i64).narrow(0, start, len);
            let mut acc = part((j + 1) % w);
            for k in 2..=w {
                acc = &acc + part((j + k) % w); // bf16 + bf16: computed wide, rounded to bf16
            }
            tch::no_grad(|| out.narrow(0, start, len).copy_(&acc));
        }
        Ok(out.view(t.size().as_slice()))
    }

    /// Tears the whole job down (every rank of `MPI_COMM_WORLD`) with `code`.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }

    /// `send` (a typed view of a CPU tensor) summed over ranks into `recv`.
    fn sum_into(&self, send: &Tensor, recv: &Tensor, scatter: bool) -> Result<()> {
        macro_rules! typed {
            ($ty:ty) => {{
                let s = typed_slice::<$ty>(send)?;
                let r = typed_slice_mut::<$ty>(recv)?;
                if scatter {
                    self.comm
                        .reduce_scatter_block_into(s, r, SystemOperation::sum());
                } else {
                    self.comm.all_reduce_into(s, r, SystemOperation::sum());
                }
            }};
        }
        match send.kind() {
            Kind::Float => typed!(f32),
            Kind::Double => typed!(f64),
            Kind::Int64 => typed!(i64),
            other => anyhow::bail!("internal: MPI sum of {other:?}"),
        }
        Ok(())
    }
}

fn typed_slice<T>(t: &Tensor) -> Result<&[T]> {
    let bytes = as_bytes(t)?;
    // SAFETY: the tensor's kind matches T (checked by the caller's match); storage is aligned.
    Ok(unsafe {
        std::slice::from_raw_parts(
            bytes.as_ptr() as *const T,
            bytes.len() / std::mem::size_of::<T>(),
        )
    })
}

#[allow(clippy::mut_from_ref)] // tensors are handles, as in bytes.rs
fn typed_slice_mut<T>(t: &Tensor) -> Result<&mut [T]> {
    let bytes = as_bytes_mut(t)?;
    // SAFETY: as above.
    Ok(unsafe {
        std::slice::from_raw_parts_mut(
            bytes.as_mut_ptr() as *mut T,
            bytes.len() / std::mem::size_of::<T>(),
        )
    })
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }
    fn world_size(&self) -> usize {
        self.comm.size() as usize
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn backend(&self) -> &'static str {
        "mpi"
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let send = host_contiguous(t);
        let mut shape = send.size();
        anyhow::ensure!(!shape.is_empty(), "all_gather: a scalar has no rows");
        shape[0] *= self.world_size() as i64;
        let recv = Tensor::empty(&shape, (send.kind(), Device::Cpu));
        self.comm
            .all_gather_into(as_bytes(&send)?, as_bytes_mut(&recv)?);
        self.traffic.all_gather(tensor_bytes(&recv));
        Ok(recv.to_device(t.device()))
    }

    fn reduce_scatter(&self, t: &Tensor) -> Result<Tensor> {
        let rows = block_rows(t, self.world_size(), "reduce_scatter")?;
        if self.bf16_ring && t.kind() == Kind::BFloat16 {
            let sum = self.ring_sum_bf16(t)?;
            self.traffic.reduce_scatter(tensor_bytes(t));
            return Ok(sum.narrow(0, self.rank() as i64 * rows, rows).to_device(t.device()));
        }
        let kind = reduction_kind(t.kind())?;
        let send = host_contiguous(&t.to_kind(kind));
        let mut shape = send.size();
        shape[0] = rows;
        let recv = Tensor::empty(&shape, (kind, Device::Cpu));
        self.sum_into(&send, &recv, true)?;
        self.traffic.reduce_scatter(tensor_bytes(t));
        Ok(recv.to_kind(t.kind()).to_device(t.device()))
    }

    fn all_reduce(&self, t: &mut Tensor) -> Result<()> {
        if self.bf16_ring && t.kind() == Kind::BFloat16 {
            let sum = self.ring_sum_bf16(t)?;
            self.traffic.all_reduce(tensor_bytes(t));
            tch::no_grad(|| t.copy_(&sum));
            return Ok(());
        }
        let kind = reduction_kind(t.kind())?;
        let send = host_contiguous(&t.to_kind(kind));
        let recv = send.empty_like();
        self.sum_into(&send, &recv, false)?;
        self.traffic.all_reduce(tensor_bytes(t));
        tch::no_grad(|| t.copy_(&recv));
        Ok(())
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        anyhow::ensure!(
            root < self.world_size(),
            "broadcast from rank {root} in a world of {}",
            self.world_size()
        );
        let buf = host_contiguous(t).copy();
        self.comm
            .process_at_rank(root as i32)
            .broadcast_into(as_bytes_mut(&buf)?);
        self.traffic.broadcast(tensor_bytes(t));
        tch::no_grad(|| t.copy_(&buf));
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.comm.barrier();
        Ok(())
    }

    fn split(&self, color: usize) -> Result<Box<dyn Collective>> {
        let sub = self
            .comm
            .split_by_color(Color::with_value(color as i32))
            .ok_or_else(|| anyhow::anyhow!("MPI split by color {color} gave no communicator"))?;
        Ok(Box::new(MpiCollective::new(sub)))
    }

    fn traffic(&self) -> Traffic {
        self.traffic.get()
    }
}

//! MPI (rsmpi) between processes, for CPU tensors.
//!
//! Every collective is an MPI-3 immediate one (`MPI_Iallreduce`, ...): started, then
//! polled with `MPI_Test` under the watchdog's deadline (`watchdog.rs`), sleeping between
//! polls, so no rank waits forever and an idle rank does not spin. Open MPI (4.1) has no
//! progress thread: an immediate collective advances only inside MPI calls, which the
//! polling provides. On expiry the rank holds a roll call and aborts the job (`roll_call.rs`).
//!
//! Tensors of another device are staged through host memory, so the backend also serves
//! small bookkeeping collectives (metrics, counts) of a GPU run.

use std::cell::Cell;
use std::ffi::c_void;
use std::rc::Rc;
use std::time::Instant;

use crate::error::{CommError, Result};
use mpi::collective::SystemOperation;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Color, Communicator, SimpleCommunicator};
use mpi::traits::*;
use tch::{Device, Kind, Tensor};

use crate::bytes::{as_bytes, host_contiguous, reduction_kind};
use crate::pending::{InFlight, Pending};
use crate::roll_call::MpiWatch;
use crate::traffic::{tensor_bytes, Traffic, TrafficCounter};
use crate::watchdog::{self, OpInfo, Waited};
use crate::{block_rows, Collective};

pub struct MpiCollective {
    comm: SimpleCommunicator,
    local_rank: usize,
    traffic: TrafficCounter,
    /// Sum bf16 in bf16 as NCCL's ring does ([`BF16_SUM_ENV`] = "ring") instead of in fp32.
    bf16_ring: bool,
    /// For the watchdog's message: "world", "world/split-1", ...
    name: String,
    /// Collectives started on this communicator so far.
    seq: Cell<u64>,
    watch: Rc<MpiWatch>,
}

/// `RPO_MPI_BF16_SUM=ring` makes the MPI backend sum bf16 tensors as NCCL does: in bf16,
/// rounding after every hop of a ring, instead of widening to fp32 first. It exists so a
/// CPU test can see what a bf16 gradient reduction costs on GPUs.
pub const BF16_SUM_ENV: &str = "RPO_MPI_BF16_SUM";

impl MpiCollective {
    /// Wraps a communicator; the node-local rank comes from a shared-memory split.
    pub fn new(comm: SimpleCommunicator, name: String, watch: Rc<MpiWatch>) -> Self {
        let local_rank = comm.split_shared(comm.rank()).rank() as usize;
        let bf16_ring = std::env::var(BF16_SUM_ENV).is_ok_and(|v| v == "ring");
        Self {
            comm,
            local_rank,
            traffic: TrafficCounter::default(),
            bf16_ring,
            name,
            seq: Cell::new(0),
            watch,
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
        // Through the watched collective, so a stalled rank is caught here too.
        let all = self
            .start_all_gather(&send.unsqueeze(0))?
            .wait()?
            .to_device(Device::Cpu);
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

    fn op_info(&self, op: &'static str, bytes: u64) -> OpInfo {
        self.seq.set(self.seq.get() + 1);
        OpInfo {
            op,
            seq: self.seq.get(),
            bytes,
            comm: self.name.clone(),
            comm_size: self.world_size(),
        }
    }

    /// Starts one immediate collective: `start` gets the raw communicator and an out
    /// request. `keep` holds the buffers MPI reads and writes until the request completes.
    fn start(
        &self,
        info: OpInfo,
        keep: Vec<Tensor>,
        result: Tensor,
        start: impl FnOnce(ffi::MPI_Comm, &mut ffi::MPI_Request) -> i32,
    ) -> Result<MpiRequest> {
        let started = Instant::now();
        // SAFETY: RSMPI_REQUEST_NULL is a constant handle.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        let rc = start(self.comm.as_raw(), &mut request);
        // MPI's default error handler aborts first; this is for handlers that return.
        if rc != 0 {
            return Err(CommError::Mpi {
                what: format!("MPI {} failed to start", info.op),
                code: rc,
            });
        }
        Ok(MpiRequest {
            request,
            info,
            started,
            keep,
            result: Some(result),
            watch: self.watch.clone(),
        })
    }

    /// Starts `send` (a CPU tensor of a reduction kind) summed over ranks into `recv`.
    fn start_sum(
        &self,
        info: OpInfo,
        send: Tensor,
        recv: Tensor,
        scatter: bool,
    ) -> Result<MpiRequest> {
        let dtype = match send.kind() {
            Kind::Float => f32::equivalent_datatype().as_raw(),
            Kind::Double => f64::equivalent_datatype().as_raw(),
            Kind::Int64 => i64::equivalent_datatype().as_raw(),
            other => invalid!("internal: MPI sum of {other:?}"),
        };
        let sum = SystemOperation::sum().as_raw();
        let count = mpi_count(recv.numel(), info.op)?;
        let (s, r) = (data_ptr(&send)?, data_ptr(&recv)?);
        self.start(info, vec![send], recv, |comm, req| unsafe {
            // SAFETY: contiguous CPU buffers of the right sizes (W·n in, n out when
            // scattering; n and n otherwise), kept alive by the request until it completes.
            if scatter {
                ffi::MPI_Ireduce_scatter_block(s, r, count, dtype, sum, comm, req)
            } else {
                ffi::MPI_Iallreduce(s, r, count, dtype, sum, comm, req)
            }
        })
    }

    /// Starts a broadcast of `buf` (contiguous CPU, written in place) from `root`.
    fn start_broadcast(&self, buf: Tensor, root: usize, bytes: u64) -> Result<MpiRequest> {
        let info = self.op_info("broadcast", bytes);
        let count = mpi_count(buf.numel() * buf.kind().elt_size_in_bytes(), info.op)?;
        let p = data_ptr(&buf)?;
        let byte = u8::equivalent_datatype().as_raw();
        self.start(info, vec![], buf, |comm, req| unsafe {
            // SAFETY: one contiguous CPU buffer of `count` bytes, alive in the request.
            ffi::MPI_Ibcast(p, count, byte, root as i32, comm, req)
        })
    }
}

/// A started MPI collective, its buffers, and what it was, for the watchdog.
struct MpiRequest {
    request: ffi::MPI_Request,
    info: OpInfo,
    started: Instant,
    /// Buffers MPI reads until completion (the result buffer is `result`).
    keep: Vec<Tensor>,
    result: Option<Tensor>,
    watch: Rc<MpiWatch>,
}

impl MpiRequest {
    fn test_now(&mut self) -> Result<bool> {
        // MPI_Test sets the request to MPI_REQUEST_NULL once complete; testing a null
        // request reports completion again.
        let mut flag = 0;
        // SAFETY: a request returned by an MPI_I* call on this rank.
        let rc = unsafe { ffi::MPI_Test(&mut self.request, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
        if rc != 0 {
            return Err(CommError::Mpi {
                what: format!("MPI_Test of {} failed", self.info),
                code: rc,
            });
        }
        Ok(flag != 0)
    }

    /// Polls to completion under the deadline; on expiry the job ends here.
    fn wait_done(&mut self) -> Result<()> {
        let deadline = self.watch.watchdog.deadline(self.started);
        let started = self.started;
        match watchdog::wait(started, deadline, || self.test_now())? {
            Waited::Done => Ok(()),
            Waited::Expired { not_running } => {
                self.watch
                    .expired(&self.info, started.elapsed(), not_running)
            }
        }
    }
}

impl InFlight for MpiRequest {
    fn test(&mut self) -> Result<bool> {
        self.test_now()
    }

    fn wait(mut self: Box<Self>) -> Result<Tensor> {
        self.wait_done()?;
        self.keep.clear();
        Ok(self.result.take().expect("result taken once"))
    }
}

impl Drop for MpiRequest {
    /// MPI may still read or write the buffers: a dropped, unfinished collective is waited
    /// for (under the same deadline) before they are freed.
    fn drop(&mut self) {
        if self.result.is_some() && !std::thread::panicking() {
            let _ = self.wait_done();
        }
    }
}

fn mpi_count(n: usize, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| {
        CommError::Invalid(format!(
            "{what}: {n} elements exceed MPI's count limit (2^31 - 1); split the buffer"
        ))
    })
}

/// The data pointer of a contiguous CPU tensor (checked as `as_bytes` does).
fn data_ptr(t: &Tensor) -> Result<*mut c_void> {
    // SAFETY: the slice is dropped at once (only the check is wanted), so no write can
    // overlap it.
    unsafe { as_bytes(t)? };
    Ok(t.data_ptr())
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

    fn start_all_gather(&self, t: &Tensor) -> Result<Pending> {
        let send = host_contiguous(t);
        let mut shape = send.size();
        ensure!(!shape.is_empty(), "all_gather: a scalar has no rows");
        shape[0] *= self.world_size() as i64;
        let recv = Tensor::empty(&shape, (send.kind(), Device::Cpu));
        self.traffic.all_gather(tensor_bytes(&recv));
        let info = self.op_info("all_gather", tensor_bytes(&recv));
        let count = mpi_count(send.numel() * send.kind().elt_size_in_bytes(), info.op)?;
        let (s, r) = (data_ptr(&send)?, data_ptr(&recv)?);
        let byte = u8::equivalent_datatype().as_raw();
        let request = self.start(info, vec![send], recv, |comm, req| unsafe {
            // SAFETY: `count` bytes in, W·count bytes out, both alive in the request.
            ffi::MPI_Iallgather(s, count, byte, r, count, byte, comm, req)
        })?;
        Ok(Pending::in_flight(Box::new(OnDevice {
            request,
            device: t.device(),
            kind: t.kind(),
        })))
    }

    fn start_reduce_scatter(&self, t: &Tensor) -> Result<Pending> {
        let rows = block_rows(t, self.world_size(), "reduce_scatter")?;
        if self.bf16_ring && t.kind() == Kind::BFloat16 {
            let sum = self.ring_sum_bf16(t)?;
            self.traffic.reduce_scatter(tensor_bytes(t));
            let own = sum
                .narrow(0, self.rank() as i64 * rows, rows)
                .to_device(t.device());
            return Ok(Pending::ready(own));
        }
        let kind = reduction_kind(t.kind())?;
        let send = host_contiguous(&t.to_kind(kind));
        let mut shape = send.size();
        shape[0] = rows;
        let recv = Tensor::empty(&shape, (kind, Device::Cpu));
        self.traffic.reduce_scatter(tensor_bytes(t));
        let info = self.op_info("reduce_scatter", tensor_bytes(t));
        let request = self.start_sum(info, send, recv, true)?;
        Ok(Pending::in_flight(Box::new(OnDevice {
            request,
            device: t.device(),
            kind: t.kind(),
        })))
    }

    fn start_all_reduce(&self, t: &Tensor) -> Result<Pending> {
        if self.bf16_ring && t.kind() == Kind::BFloat16 {
            let sum = self.ring_sum_bf16(t)?;
            self.traffic.all_reduce(tensor_bytes(t));
            return Ok(Pending::ready(sum.to_device(t.device())));
        }
        let kind = reduction_kind(t.kind())?;
        let send = host_contiguous(&t.to_kind(kind));
        let recv = send.empty_like();
        self.traffic.all_reduce(tensor_bytes(t));
        let info = self.op_info("all_reduce", tensor_bytes(t));
        let request = self.start_sum(info, send, recv, false)?;
        Ok(Pending::in_flight(Box::new(OnDevice {
            request,
            device: t.device(),
            kind: t.kind(),
        })))
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        self.start_all_gather(t)?.wait()
    }

    fn reduce_scatter(&self, t: &Tensor) -> Result<Tensor> {
        self.start_reduce_scatter(t)?.wait()
    }

    fn all_reduce(&self, t: &mut Tensor) -> Result<()> {
        let sum = self.start_all_reduce(t)?.wait()?;
        tch::no_grad(|| t.copy_(&sum));
        Ok(())
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        ensure!(
            root < self.world_size(),
            "broadcast from rank {root} in a world of {}",
            self.world_size()
        );
        let buf = host_contiguous(t).copy();
        self.traffic.broadcast(tensor_bytes(t));
        let buf = Box::new(self.start_broadcast(buf, root, tensor_bytes(t))?).wait()?;
        tch::no_grad(|| t.copy_(&buf));
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let info = self.op_info("barrier", 0);
        let request = self.start(info, vec![], Tensor::new(), |comm, req| unsafe {
            // SAFETY: no buffers.
            ffi::MPI_Ibarrier(comm, req)
        })?;
        let _ = Box::new(request).wait()?;
        Ok(())
    }

    fn split(&self, color: usize) -> Result<Box<dyn Collective>> {
        let sub = self
            .comm
            .split_by_color(Color::with_value(color as i32))
            .ok_or_else(|| {
                CommError::Invalid(format!("MPI split by color {color} gave no communicator"))
            })?;
        Ok(Box::new(MpiCollective::new(
            sub,
            format!("{}/split-{color}", self.name),
            self.watch.clone(),
        )))
    }

    fn traffic(&self) -> Traffic {
        self.traffic.get()
    }
}

/// A request whose host result goes back to the caller's kind and device when done.
struct OnDevice {
    request: MpiRequest,
    device: Device,
    kind: Kind,
}

impl InFlight for OnDevice {
    fn test(&mut self) -> Result<bool> {
        self.request.test_now()
    }

    fn wait(self: Box<Self>) -> Result<Tensor> {
        let Self {
            request,
            device,
            kind,
        } = *self;
        let host = Box::new(request).wait()?;
        Ok(host.to_kind(kind).to_device(device))
    }
}

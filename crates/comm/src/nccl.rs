//! NCCL between GPUs, one process per GPU.
//!
//! - **Ordering by the null stream.** tch exposes no CUDA streams, and libtorch runs its
//!   kernels on the legacy default (null) stream. Every NCCL call here is enqueued on that
//!   same stream, so it starts after the kernels that produced its input and finishes
//!   before any later kernel reads its output, without events or host synchronisation.
//!   Collectives are asynchronous for the host; only [`Collective::barrier`] waits.
//! - **Unique id over the bootstrap.** Rank 0 of the bootstrap communicator (MPI on CPU, or
//!   [`SingleProcess`](crate::SingleProcess) at W = 1) creates the `ncclUniqueId`, which is
//!   broadcast as a u8 tensor; every rank then joins with `ncclCommInitRank`. The
//!   communicator keeps its own copy of the bootstrap to [`split`](Collective::split) later.
//!   Local set-up failures are agreed over the bootstrap first, so that no rank is left
//!   waiting in `ncclCommInitRank` for one that gave up.
//! - **Watchdog.** Each call records a CUDA event after itself and hands it, with its
//!   deadline, to a thread of its own (`nccl_watch.rs`), which polls the events and
//!   `ncclCommGetAsyncError` and, on an error or a passed deadline, calls `ncclCommAbort`
//!   and ends the process. The barrier waits on its event with the sleeping back-off.
//! - **Dynamic loading.** cudarc opens libcuda and libnccl at run time, so the binary
//!   builds and runs on machines without them. cudarc panics when a library is missing;
//!   [`nccl_available`] probes for both first and turns absence into an error that says
//!   what to install or link. The PyPI torch wheel ships NCCL only as `libnccl.so.2`, a
//!   name cudarc does not try: a `libnccl.so` symlink to the very file libtorch loaded
//!   makes both use one NCCL.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::{CommError, Result};
use cudarc::driver::CudaContext;
use cudarc::nccl::result::{self as nccl, NcclError, NcclStatus};
use cudarc::nccl::sys;
use tch::{Device, Kind, Tensor};

use crate::nccl_watch::{Health, StreamWatch, Watched};
use crate::traffic::{tensor_bytes, Traffic, TrafficCounter};
use crate::watchdog::{self, OpInfo, Waited, Watchdog, WATCHDOG_EXIT_CODE};
use crate::{block_rows, check_tensor, Collective};

/// Bytes of an `ncclUniqueId`.
const ID_LEN: usize = std::mem::size_of::<sys::ncclUniqueId>();

/// Ok when a CUDA driver with a visible GPU and libnccl can be loaded; otherwise says what
/// is missing and how to provide it. Never panics; the probe runs once per process.
pub fn nccl_available() -> Result<()> {
    static PROBE: OnceLock<std::result::Result<i32, String>> = OnceLock::new();
    match PROBE.get_or_init(probe) {
        Ok(_) => Ok(()),
        Err(e) => Err(CommError::Unavailable(e.clone())),
    }
}

/// The NCCL version on success.
fn probe() -> std::result::Result<i32, String> {
    let mut problems = Vec::new();
    // SAFETY: these only try to dlopen cudarc's candidate names; no symbol is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        problems.push(no_driver_message());
    }
    let mut version = None;
    if !unsafe { sys::is_culib_present() } {
        problems.push(no_nccl_message(&loaded_libraries("libnccl")));
    } else {
        // Needs no GPU: checks that the library cudarc opened has its symbols.
        match guarded("ncclGetVersion", nccl::get_nccl_version) {
            Ok(Ok(v)) => version = Some(v),
            Ok(Err(e)) => problems.push(format!(
                "libnccl loaded, but ncclGetVersion failed: {}",
                nccl_error_text(&e)
            )),
            Err(e) => problems.push(e.to_string()),
        }
        let loaded = loaded_libraries("libnccl");
        if loaded.len() > 1 {
            tracing::warn!(
                ?loaded,
                "two different libnccl files are loaded (libtorch's and cudarc's); point the \
                 libnccl.so symlink at the one libtorch uses"
            );
        }
        tracing::debug!(version, ?loaded, "libnccl loaded");
    }
    if !problems.is_empty() {
        let mut msg = problems.join("\nAlso: ");
        if let Some(v) = version {
            let (major, minor, patch) = (v / 10000, v % 10000 / 100, v % 100);
            msg.push_str(&format!(
                "\n(libnccl itself loads: NCCL {major}.{minor}.{patch})"
            ));
        }
        return Err(msg);
    }
    let devices = guarded("cuInit", CudaContext::device_count)
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "a CUDA driver library was found, but cuInit failed: {e}. Is a GPU visible \
                 (`nvidia-smi -L`, CUDA_VISIBLE_DEVICES)? A libcuda.so stub from the CUDA \
                 toolkit also fails here"
            )
        })?;
    if devices < 1 {
        return Err(
            "the CUDA driver sees no GPU (check `nvidia-smi -L` and CUDA_VISIBLE_DEVICES)".into(),
        );
    }
    Ok(version.unwrap_or_default())
}

/// cudarc's candidate file names for `lib`, without its repeats.
fn candidates(lib: &str) -> String {
    let mut names = cudarc::get_lib_name_candidates(lib);
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names.join(", ")
}

fn no_driver_message() -> String {
    format!(
        "no CUDA driver found: none of {} could be loaded. The NCCL backend needs an NVIDIA \
         GPU with its driver installed (`nvidia-smi -L` should list the GPU); on a machine \
         without one, run on CPU instead",
        candidates("cuda")
    )
}

/// `loaded`: the libnccl files already mapped into this process (libtorch's, normally).
fn no_nccl_message(loaded: &[PathBuf]) -> String {
    let target = match loaded.first() {
        Some(p) => format!(
            "{} (the copy libtorch loaded into this process)",
            p.display()
        ),
        None => "<torch dir>/../nvidia/nccl/lib/libnccl.so.2, where <torch dir> is printed by \
                 `python -c 'import torch,os;print(os.path.dirname(torch.__file__))'`"
            .to_string(),
    };
    let link_to = loaded
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<that libnccl.so.2>".into());
    format!(
        "libnccl not found: cudarc loads NCCL at run time under one of the names {}, but the \
         PyPI torch wheel ships it only as nvidia/nccl/lib/libnccl.so.2, which is none of \
         them. Use libtorch's own NCCL, {target}: create a libnccl.so symlink to it in a \
         directory on LD_LIBRARY_PATH before starting rpo-shard, e.g. \
         `mkdir -p ~/.local/nccl && ln -sf {link_to} ~/.local/nccl/libnccl.so && \
         export LD_LIBRARY_PATH=~/.local/nccl:$LD_LIBRARY_PATH` (benches/gpu_check.sh does this)",
        candidates("nccl")
    )
}

/// Distinct files whose name contains `stem` mapped into this process (Linux only).
fn loaded_libraries(stem: &str) -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut found: Vec<PathBuf> = Vec::new();
    for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let p = PathBuf::from(path);
        if !p
            .file_name()
            .is_some_and(|f| f.to_string_lossy().contains(stem))
        {
            continue;
        }
        let p = p.canonicalize().unwrap_or(p);
        if !found.contains(&p) {
            found.push(p);
        }
    }
    found
}

/// Runs `f`, turning a panic of cudarc's loader (missing library or symbol) into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        CommError::Unavailable(format!("{what}: cudarc could not load it: {msg}"))
    })
}

fn nccl_error_text(e: &NcclError) -> String {
    // SAFETY: ncclGetErrorString returns a static NUL-terminated string for any code.
    let s = unsafe { CStr::from_ptr(sys::ncclGetErrorString(e.0)) };
    format!("{:?} ({})", e.0, s.to_string_lossy())
}

/// An NCCL result as an error naming the call, with NCCL's last error message.
fn nccl_check(r: std::result::Result<NcclStatus, NcclError>, what: &str) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            // SAFETY: ncclGetLastError accepts a null communicator and returns a C string.
            let last = unsafe { sys::ncclGetLastError(std::ptr::null_mut()) };
            let last = if last.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(last) }
                    .to_string_lossy()
                    .into_owned()
            };
            Err(CommError::Nccl {
                call: what.to_string(),
                error: nccl_error_text(&e),
                last,
            })
        }
    }
}

/// The NCCL element type of a tensor kind.
fn nccl_type(kind: Kind, what: &str) -> Result<sys::ncclDataType_t> {
    use sys::ncclDataType_t as T;
    Ok(match kind {
        Kind::Float => T::ncclFloat32,
        Kind::Double => T::ncclFloat64,
        Kind::BFloat16 => T::ncclBfloat16,
        Kind::Half => T::ncclFloat16,
        Kind::Int64 => T::ncclInt64,
        Kind::Int => T::ncclInt32,
        Kind::Uint8 => T::ncclUint8,
        Kind::Int8 => T::ncclInt8,
        other => invalid!("{what}: NCCL has no element type for {other:?} tensors"),
    })
}

/// The legacy default stream, on which libtorch runs (see the module doc).
fn null_stream() -> sys::cudaStream_t {
    std::ptr::null_mut()
}

pub struct NcclCollective {
    comm: sys::ncclComm_t,
    /// The primary context of the device (libtorch's), bound before every NCCL call.
    ctx: Arc<CudaContext>,
    /// Same ranks in the same order; carries the unique id of sub-communicators.
    bootstrap: Box<dyn Collective>,
    device: Device,
    rank: usize,
    world: usize,
    local_rank: usize,
    traffic: TrafficCounter,
    watchdog: Watchdog,
    /// Collectives enqueued so far.
    seq: Cell<u64>,
    /// Declared after `comm`'s users and stopped before it is destroyed (see Drop).
    watch: Option<StreamWatch>,
}

/// The raw communicator, for the watchdog thread (NCCL allows ncclCommGetAsyncError and
/// ncclCommAbort from another thread while the communicator is in use).
struct CommHealth(sys::ncclComm_t);
// SAFETY: see above; the thread is joined before the communicator is destroyed.
unsafe impl Send for CommHealth {}

impl Health for CommHealth {
    fn async_error(&self) -> Option<String> {
        let mut state = sys::ncclResult_t::ncclSuccess;
        // SAFETY: a live communicator and a valid out-pointer.
        let r = unsafe { sys::ncclCommGetAsyncError(self.0, &mut state) };
        match (r, state) {
            (sys::ncclResult_t::ncclSuccess, sys::ncclResult_t::ncclSuccess)
            | (sys::ncclResult_t::ncclSuccess, sys::ncclResult_t::ncclInProgress) => None,
            (sys::ncclResult_t::ncclSuccess, e) | (e, _) => Some(nccl_error_text(&NcclError(e))),
        }
    }
    fn abort(&self) {
        // SAFETY: a live communicator; nothing uses it after the process ends.
        let _ = unsafe { nccl::comm_abort(self.0) };
    }
}

/// In production the watchdog's verdict ends the process: mpirun then ends the job.
fn exit_process(msg: String) {
    eprintln!("{msg}; exiting with code {WATCHDOG_EXIT_CODE}");
    // SAFETY: _exit ends the process at once (no destructors, no MPI_Finalize that could
    // wait on a dead peer).
    unsafe { libc::_exit(WATCHDOG_EXIT_CODE) }
}

impl NcclCollective {
    /// Joins the NCCL communicator of the ranks of `bootstrap` (which carries the unique id).
    /// Every rank of `bootstrap` must call it; `device` must be `Device::Cuda(_)`.
    pub fn new(bootstrap: &dyn Collective, device: Device, watchdog: Watchdog) -> Result<Self> {
        // A copy of the bootstrap this communicator owns, for later splits.
        let own = bootstrap
            .split(0)
            .map_err(|e| e.during("copying the bootstrap communicator for NCCL"))?;
        Self::from_bootstrap(own, device, watchdog)
    }

    /// As [`new`](Self::new), keeping `bootstrap` (for splits) instead of copying it.
    pub fn from_bootstrap(
        bootstrap: Box<dyn Collective>,
        device: Device,
        watchdog: Watchdog,
    ) -> Result<Self> {
        let rank = bootstrap.rank();
        let world = bootstrap.world_size();
        let local = prepare(device, rank == 0);

        // Every rank takes part in both bootstrap collectives, failed or not.
        let mut id_bytes = [0u8; ID_LEN];
        if let Ok((_, Some(id))) = &local {
            for (b, c) in id_bytes.iter_mut().zip(id.internal.iter()) {
                *b = *c as u8;
            }
        }
        let mut id_t = Tensor::from_slice(&id_bytes).to_device(bootstrap.device());
        bootstrap
            .broadcast(&mut id_t, 0)
            .map_err(|e| e.during("broadcasting the NCCL unique id over the bootstrap"))?;
        let mut failed =
            Tensor::from_slice(&[i64::from(local.is_err())]).to_device(bootstrap.device());
        bootstrap
            .all_reduce(&mut failed)
            .map_err(|e| e.during("agreeing on NCCL set-up over the bootstrap"))?;
        let failed = failed.int64_value(&[0]);

        let (ctx, _) =
            local.map_err(|e| e.during(format!("rank {rank}: NCCL set-up on {device:?}")))?;
        if failed != 0 {
            return Err(CommError::PeersFailed {
                failed,
                world,
                rank,
            });
        }

        let id_bytes = Vec::<u8>::try_from(&id_t.to_device(Device::Cpu))?;
        ensure!(
            id_bytes.len() == ID_LEN,
            "internal: NCCL unique id of {} bytes",
            id_bytes.len()
        );
        let mut id = sys::ncclUniqueId {
            internal: [0; ID_LEN],
        };
        for (c, b) in id.internal.iter_mut().zip(&id_bytes) {
            *c = *b as c_char;
        }

        ctx.bind_to_thread()
            .map_err(|e| CommError::Cuda(format!("binding CUDA device {device:?}: {e}")))?;
        let mut comm: sys::ncclComm_t = std::ptr::null_mut();
        // SAFETY: `comm` is a valid out-pointer; the id is the one rank 0 created.
        nccl_check(
            unsafe { nccl::comm_init_rank(&mut comm, world as i32, id, rank as i32) },
            "ncclCommInitRank",
        )
        .map_err(|e| e.during(format!("rank {rank} of {world} joining on {device:?}")))?;
        tracing::debug!(rank, world, ?device, "NCCL communicator ready");
        let watch = StreamWatch::start(rank, CommHealth(comm), Box::new(exit_process));
        Ok(Self {
            comm,
            ctx,
            local_rank: bootstrap.local_rank(),
            bootstrap,
            device,
            rank,
            world,
            traffic: TrafficCounter::default(),
            watchdog,
            seq: Cell::new(0),
            watch: Some(watch),
        })
    }

    fn op_info(&self, op: &'static str, bytes: u64) -> OpInfo {
        self.seq.set(self.seq.get() + 1);
        OpInfo {
            op,
            seq: self.seq.get(),
            bytes,
            comm: format!("nccl/{}", self.bootstrap_name()),
            comm_size: self.world,
        }
    }

    fn bootstrap_name(&self) -> &'static str {
        self.bootstrap.backend()
    }

    /// An event recorded on the null stream after the calls enqueued so far.
    fn record(&self) -> Result<cudarc::driver::CudaEvent> {
        let event = self
            .ctx
            .new_event(None)
            .map_err(|e| CommError::Cuda(format!("creating a CUDA event: {e}")))?;
        event
            .record(&self.ctx.default_stream())
            .map_err(|e| CommError::Cuda(format!("recording a CUDA event: {e}")))?;
        Ok(event)
    }

    /// Hands the collective just enqueued to the watchdog thread.
    fn watch(&self, info: OpInfo) -> Result<()> {
        let event = self.record()?;
        let started = Instant::now();
        if let Some(w) = &self.watch {
            w.push(Watched {
                info,
                started,
                deadline: self.watchdog.deadline(started),
                done: Box::new(move || event.try_is_complete().map_err(|e| e.to_string())),
            });
        }
        Ok(())
    }

    /// Enqueues one NCCL call on the null stream of this communicator's device.
    fn enqueue(
        &self,
        what: &str,
        call: impl FnOnce(
            sys::ncclComm_t,
            sys::cudaStream_t,
        ) -> std::result::Result<NcclStatus, NcclError>,
    ) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| {
            CommError::Cuda(format!(
                "{what}: binding CUDA device {:?}: {e}",
                self.device
            ))
        })?;
        nccl_check(call(self.comm, null_stream()), what)
    }

    /// `t` itself when contiguous, else a contiguous copy (to be copied back).
    fn in_place_buffer(t: &Tensor) -> Tensor {
        if t.is_contiguous() {
            t.shallow_clone()
        } else {
            t.contiguous()
        }
    }
}

/// Checks and binds the device; rank 0 also creates the unique id.
fn prepare(device: Device, make_id: bool) -> Result<(Arc<CudaContext>, Option<sys::ncclUniqueId>)> {
    let Device::Cuda(ordinal) = device else {
        return Err(CommError::Unavailable(format!(
            "the NCCL backend needs a CUDA device, got {device:?}"
        )));
    };
    nccl_available()?;
    // The primary context: the one libtorch's runtime API uses for this device.
    let ctx = guarded("cuDevicePrimaryCtxRetain", || CudaContext::new(ordinal))?
        .map_err(|e| CommError::Unavailable(format!("cannot use CUDA device {ordinal}: {e}")))?;
    let id = if make_id {
        let id = guarded("ncclGetUniqueId", nccl::get_uniqueid)?.map_err(|e| {
            CommError::Unavailable(format!("ncclGetUniqueId failed: {}", nccl_error_text(&e)))
        })?;
        Some(id)
    } else {
        None
    };
    Ok((ctx, id))
}

impl Drop for NcclCollective {
    fn drop(&mut self) {
        if self.comm.is_null() {
            return;
        }
        // The watchdog thread uses the communicator: stop it first.
        self.watch.take();
        let _ = self.ctx.bind_to_thread();
        // ncclCommDestroy waits for the node's other ranks; a panicking rank must not.
        let panicking = std::thread::panicking();
        // SAFETY: `comm` came from ncclCommInitRank and is released exactly once.
        let r = unsafe {
            if panicking {
                nccl::comm_abort(self.comm)
            } else {
                nccl::comm_destroy(self.comm)
            }
        };
        self.comm = std::ptr::null_mut();
        if let Err(e) = r {
            tracing::warn!(
                error = nccl_error_text(&e),
                "releasing the NCCL communicator"
            );
        }
    }
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn device(&self) -> Device {
        self.device
    }
    fn backend(&self) -> &'static str {
        "nccl"
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        check_tensor(self, t, "all_gather")?;
        let dtype = nccl_type(t.kind(), "all_gather")?;
        let send = t.contiguous();
        let mut shape = send.size();
        ensure!(!shape.is_empty(), "all_gather: a scalar has no rows");
        shape[0] *= self.world as i64;
        let recv = Tensor::empty(&shape, (send.kind(), self.device));
        if send.numel() > 0 {
            // SAFETY: contiguous device buffers of `n` and `W·n` elements of `dtype`, both
            // alive until the stream reaches the call (the allocator reuses memory in
            // stream order).
            self.enqueue("ncclAllGather", |comm, stream| unsafe {
                nccl::all_gather(
                    send.data_ptr(),
                    recv.data_ptr(),
                    send.numel(),
                    dtype,
                    comm,
                    stream,
                )
            })?;
            self.watch(self.op_info("all_gather", tensor_bytes(&recv)))?;
        }
        self.traffic.all_gather(tensor_bytes(&recv));
        Ok(recv)
    }

    fn reduce_scatter(&self, t: &Tensor) -> Result<Tensor> {
        check_tensor(self, t, "reduce_scatter")?;
        let rows = block_rows(t, self.world, "reduce_scatter")?;
        let dtype = nccl_type(t.kind(), "reduce_scatter")?;
        let send = t.contiguous();
        let mut shape = send.size();
        shape[0] = rows;
        let recv = Tensor::empty(&shape, (send.kind(), self.device));
        if recv.numel() > 0 {
            // SAFETY: as in all_gather, with `W·n` elements in and `n` out.
            self.enqueue("ncclReduceScatter", |comm, stream| unsafe {
                nccl::reduce_scatter(
                    send.data_ptr(),
                    recv.data_ptr(),
                    recv.numel(),
                    dtype,
                    sys::ncclRedOp_t::ncclSum,
                    comm,
                    stream,
                )
            })?;
            self.watch(self.op_info("reduce_scatter", tensor_bytes(t)))?;
        }
        self.traffic.reduce_scatter(tensor_bytes(t));
        Ok(recv)
    }

    fn all_reduce(&self, t: &mut Tensor) -> Result<()> {
        check_tensor(self, t, "all_reduce")?;
        let dtype = nccl_type(t.kind(), "all_reduce")?;
        let buf = Self::in_place_buffer(t);
        if buf.numel() > 0 {
            // SAFETY: one contiguous device buffer, reduced in place (NCCL allows it).
            self.enqueue("ncclAllReduce", |comm, stream| unsafe {
                nccl::all_reduce(
                    buf.data_ptr(),
                    buf.data_ptr(),
                    buf.numel(),
                    dtype,
                    sys::ncclRedOp_t::ncclSum,
                    comm,
                    stream,
                )
            })?;
            self.watch(self.op_info("all_reduce", tensor_bytes(t)))?;
        }
        if !t.is_contiguous() {
            tch::no_grad(|| t.copy_(&buf));
        }
        self.traffic.all_reduce(tensor_bytes(t));
        Ok(())
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        ensure!(
            root < self.world,
            "broadcast from rank {root} in a world of {}",
            self.world
        );
        check_tensor(self, t, "broadcast")?;
        let dtype = nccl_type(t.kind(), "broadcast")?;
        let buf = Self::in_place_buffer(t);
        if buf.numel() > 0 {
            // SAFETY: one contiguous device buffer, sent from and received into in place.
            self.enqueue("ncclBroadcast", |comm, stream| unsafe {
                nccl::broadcast(
                    buf.data_ptr(),
                    buf.data_ptr(),
                    buf.numel(),
                    dtype,
                    root as i32,
                    comm,
                    stream,
                )
            })?;
            self.watch(self.op_info("broadcast", tensor_bytes(t)))?;
        }
        if !t.is_contiguous() {
            tch::no_grad(|| t.copy_(&buf));
        }
        self.traffic.broadcast(tensor_bytes(t));
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        let one = Tensor::ones([1], (Kind::Float, self.device));
        // SAFETY: a one-element device buffer, reduced in place.
        self.enqueue("ncclAllReduce (barrier)", |comm, stream| unsafe {
            nccl::all_reduce(
                one.data_ptr() as *const c_void,
                one.data_ptr(),
                1,
                sys::ncclDataType_t::ncclFloat32,
                sys::ncclRedOp_t::ncclSum,
                comm,
                stream,
            )
        })?;
        let info = self.op_info("barrier", 4);
        // The host waits until every rank has joined the reduction, sleeping between polls
        // and no longer than the deadline (the watchdog thread then ends the process; this
        // is the same verdict, reached on the main thread).
        let event = self.record()?;
        let started = Instant::now();
        let waited = watchdog::wait(started, self.watchdog.deadline(started), || {
            event
                .try_is_complete()
                .map_err(|e| CommError::Cuda(format!("barrier: {:?}: {e}", self.device)))
        })?;
        if matches!(waited, Waited::Expired { .. }) {
            CommHealth(self.comm).abort();
            exit_process(format!(
                "rank {}: collective watchdog: {info} did not complete within {:.0} s; \
                 communicator aborted",
                self.rank,
                started.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    }

    fn split(&self, color: usize) -> Result<Box<dyn Collective>> {
        let sub = self
            .bootstrap
            .split(color)
            .map_err(|e| e.during(format!("splitting the bootstrap by color {color}")))?;
        Ok(Box::new(NcclCollective::from_bootstrap(
            sub,
            self.device,
            self.watchdog,
        )?))
    }

    fn traffic(&self) -> Traffic {
        self.traffic.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SingleProcess;

    #[test]
    fn availability_is_an_error_not_a_panic() {
        // On a GPU machine with a linked libnccl this is Ok; elsewhere it must explain.
        let available = nccl_available();
        // libtorch's libnccl.so.2 and the one cudarc opened must be one file.
        let loaded = loaded_libraries("libnccl");
        assert!(loaded.len() <= 1, "two libnccl loaded: {loaded:?}");
        if let Err(e) = available {
            let msg = e.to_string();
            eprintln!("nccl_available: {msg}");
            // SAFETY: only tries to dlopen.
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                assert!(msg.contains("no CUDA driver found"), "{msg}");
            }
            if !unsafe { sys::is_culib_present() } {
                assert!(
                    msg.contains("libnccl.so.2") && msg.contains("LD_LIBRARY_PATH"),
                    "{msg}"
                );
            }
        }
    }

    #[test]
    fn nccl_message_names_the_candidates_and_the_fix() {
        let msg = no_nccl_message(&[PathBuf::from("/x/nvidia/nccl/lib/libnccl.so.2")]);
        for needle in [
            "libnccl.so,",
            "libnccl.so.2",
            "ln -sf /x/nvidia/nccl/lib/libnccl.so.2",
            "/libnccl.so",
            "LD_LIBRARY_PATH",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
        }
        assert!(no_nccl_message(&[]).contains("import torch"));
    }

    #[test]
    fn new_without_gpu_is_an_error() {
        if nccl_available().is_ok() {
            return; // a GPU machine: nothing to check here
        }
        let err = NcclCollective::new(
            &SingleProcess::new(Device::Cpu),
            Device::Cuda(0),
            Watchdog::default(),
        )
        .err()
        .expect("NCCL set-up cannot succeed without CUDA");
        eprintln!("{err:#}");
        assert!(format!("{err:#}").contains("rank 0"), "{err:#}");
    }

    #[test]
    fn cpu_device_is_refused() {
        let err = NcclCollective::new(
            &SingleProcess::new(Device::Cpu),
            Device::Cpu,
            Watchdog::default(),
        )
        .err()
        .expect("NCCL on CPU must fail");
        assert!(
            format!("{err:#}").contains("needs a CUDA device"),
            "{err:#}"
        );
    }

    #[test]
    fn kinds_map_to_nccl_types() {
        use sys::ncclDataType_t as T;
        assert_eq!(nccl_type(Kind::Float, "t").unwrap(), T::ncclFloat32);
        assert_eq!(nccl_type(Kind::Double, "t").unwrap(), T::ncclFloat64);
        assert_eq!(nccl_type(Kind::BFloat16, "t").unwrap(), T::ncclBfloat16);
        assert_eq!(nccl_type(Kind::Half, "t").unwrap(), T::ncclFloat16);
        assert_eq!(nccl_type(Kind::Int64, "t").unwrap(), T::ncclInt64);
        assert_eq!(nccl_type(Kind::Uint8, "t").unwrap(), T::ncclUint8);
        assert!(nccl_type(Kind::Bool, "t").is_err());
        assert_eq!(ID_LEN, 128);
    }
}

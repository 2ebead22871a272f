//! Start-up: find out how this process was launched, pick its device and its backend.
//!
//! - Started without a launcher: one process, [`SingleProcess`], MPI never initialised.
//! - Started by `mpirun` / `srun` (Open MPI, MPICH/Hydra, SLURM with PMI or PMIx): MPI is
//!   initialised; CPU runs use [`MpiCollective`], CUDA runs use [`NcclCollective`]
//!   bootstrapped over MPI, each rank on GPU `local_rank` of its node.

use crate::error::{CommError, Result};
use tch::Device;

use crate::nccl::NcclCollective;
use crate::single::SingleProcess;
use crate::watchdog::Watchdog;
use crate::Collective;

/// Which backend carries the training tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Single process at W = 1, MPI on CPU, NCCL on CUDA.
    Auto,
    /// NCCL even at W = 1 (to check the NCCL path on one GPU).
    Nccl,
}

/// The world size a launcher announced in the environment, if any.
pub fn launched_world_size() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE", // Open MPI's mpirun
        "PMI_SIZE",             // MPICH / Hydra, SLURM with PMI-2
        "PMIX_SIZE",
        "SLURM_STEP_NUM_TASKS", // srun
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// The process's place in the job, alive for the whole run: dropping it finalises MPI.
pub struct Runtime {
    /// Carries the training tensors (on `device`).
    world: Box<dyn Collective>,
    /// MPI's own world, kept to abort the job and to bootstrap NCCL.
    #[cfg(feature = "mpi")]
    mpi_world: Option<crate::MpiCollective>,
    // Declared last: dropped after every communicator above, as MPI_Finalize requires.
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl Runtime {
    /// `cuda` asks for one GPU per rank (GPU `local_rank % device count`); otherwise CPU.
    /// `watchdog` bounds every collective's wait (`[distributed] collective_timeout_s`).
    pub fn init(cuda: bool, backend: Backend, watchdog: Watchdog) -> Result<Self> {
        let launched = launched_world_size().unwrap_or(1);
        #[cfg(feature = "mpi")]
        if launched > 1 {
            return Self::init_mpi(cuda, watchdog);
        }
        #[cfg(not(feature = "mpi"))]
        if launched > 1 {
            return Err(CommError::Unavailable(format!(
                "started as one of {launched} processes, but this rpo-shard was built without MPI \
                 (cargo feature `mpi`); rebuild with default features"
            )));
        }
        let device = if cuda { cuda_device(0)? } else { Device::Cpu };
        let world: Box<dyn Collective> = match (cuda, backend) {
            (true, Backend::Nccl) => Box::new(NcclCollective::new(
                &SingleProcess::new(Device::Cpu),
                device,
                watchdog,
            )?),
            (false, Backend::Nccl) => {
                return Err(CommError::Unavailable(
                    "the NCCL backend needs a CUDA device".into(),
                ))
            }
            _ => Box::new(SingleProcess::new(device)),
        };
        Ok(Self {
            world,
            #[cfg(feature = "mpi")]
            mpi_world: None,
            #[cfg(feature = "mpi")]
            _universe: None,
        })
    }

    #[cfg(feature = "mpi")]
    fn init_mpi(cuda: bool, watchdog: Watchdog) -> Result<Self> {
        use mpi::topology::Communicator;
        use std::rc::Rc;
        // Funneled: only the main thread calls MPI (libtorch's intra-op threads never do).
        let (universe, _) =
            mpi::initialize_with_threading(mpi::Threading::Funneled).ok_or_else(|| {
                CommError::Unavailable("MPI could not be initialised (was it already?)".into())
            })?;
        let watch = Rc::new(crate::roll_call::MpiWatch::new(&universe.world(), watchdog));
        let mpi_world =
            crate::MpiCollective::new(universe.world(), "mpi-world".into(), watch.clone());
        share_cores(universe.world().split_shared(0).size() as usize);
        let world: Box<dyn Collective> = if cuda {
            let device = cuda_device(mpi_world.local_rank())?;
            Box::new(NcclCollective::new(&mpi_world, device, watchdog)?)
        } else {
            Box::new(crate::MpiCollective::new(
                universe.world(),
                "world".into(),
                watch,
            ))
        };
        tracing::debug!(
            rank = world.rank(),
            world = universe.world().size(),
            local_rank = mpi_world.local_rank(),
            backend = world.backend(),
            "joined"
        );
        abort_job_on_panic(world.rank());
        Ok(Self {
            world,
            mpi_world: Some(mpi_world),
            _universe: Some(universe),
        })
    }

    pub fn world(&self) -> &dyn Collective {
        self.world.as_ref()
    }

    pub fn device(&self) -> Device {
        self.world.device()
    }

    /// Ends the whole job: with MPI, every rank (so none is left waiting in a collective).
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(w) = &self.mpi_world {
            w.abort(code)
        }
        std::process::exit(code)
    }
}

/// A panic must not unwind into `MPI_Finalize` (dropping the Universe), which would wait
/// for ranks that are themselves waiting for this one in a collective: the job would hang
/// with every process alive. Print the panic, then end every rank of the job.
#[cfg(feature = "mpi")]
fn abort_job_on_panic(rank: usize) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("rank {rank} panicked: aborting the whole job");
        // SAFETY: MPI is initialised (this hook is installed after it) and not finalised
        // while the Runtime lives; MPI_Abort does not return.
        unsafe {
            mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
        }
    }));
}

/// Ranks on one node share its cores: without this, each rank's libtorch would start one
/// thread per core and the node would run ranks × cores threads. OMP_NUM_THREADS wins.
#[cfg(feature = "mpi")]
fn share_cores(ranks_on_node: usize) {
    if std::env::var_os("OMP_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads((cores / ranks_on_node.max(1)).max(1) as i32);
}

/// This process's rank as the launcher announced it (0 when not launched by one), for
/// decisions made before MPI starts, such as how much to log.
pub fn launched_rank() -> usize {
    [
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

/// GPU `local_rank` of this node (wrapping when ranks outnumber GPUs).
fn cuda_device(local_rank: usize) -> Result<Device> {
    let count = tch::Cuda::device_count();
    if count <= 0 {
        return Err(CommError::Unavailable(format!(
            "a CUDA device was asked for, but libtorch sees none (cuda available: {}); \
             check the driver, CUDA_VISIBLE_DEVICES, and that the binary links libtorch_cuda",
            tch::Cuda::is_available()
        )));
    }
    Ok(Device::Cuda(local_rank % count as usize))
}

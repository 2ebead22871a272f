//! Preemption: SIGTERM (SLURM's time-limit and preemption signal), SIGINT (Ctrl-C) or
//! SIGUSR1 asks the run to stop. Every rank finishes its optimizer step, the ranks agree
//! on the step (any rank's request stops all of them at the same step end), a checkpoint
//! is written and the process exits with [`EXIT_PREEMPTED`]. A second signal ends the
//! process at once, by the signal's default action.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The exit status of a run stopped by a signal after writing its checkpoint
/// (sysexits' EX_TEMPFAIL: "try again later" — with `--resume latest`).
pub const EXIT_PREEMPTED: i32 = 75;

/// The signals that ask for a checkpoint and a stop. Open MPI's mpirun forwards SIGUSR1
/// to the ranks without ending the job itself, so its exit status comes through.
const SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGUSR1,
];

static REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once per process; later calls do nothing). Without this call
/// (e.g. in library tests) a run is never preempted.
pub fn install() -> std::io::Result<()> {
    if REQUESTED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in SIGNALS {
        // Registered first, so it sees the flag as the previous signal left it: set
        // means this is the second signal, which takes the default action (terminate).
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&flag))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    let _ = REQUESTED.set(flag);
    Ok(())
}

/// Whether a signal asked this process to stop. The trainer sums every rank's flag with
/// the step's metrics (one all-reduce, no collective of its own), so all ranks see the
/// same answer at the same step end.
pub fn requested_here() -> bool {
    REQUESTED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// The run stopped at a signal, after writing the checkpoint of `step`: not a failure,
/// but not a finished run either (exit status [`EXIT_PREEMPTED`]).
#[derive(Debug)]
pub struct Preempted {
    pub step: usize,
    pub checkpoint: PathBuf,
}

impl std::fmt::Display for Preempted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by a signal after step {}; checkpoint {} written. Continue with the same \
             command plus `--resume latest` (exit status {EXIT_PREEMPTED})",
            self.step,
            self.checkpoint.display()
        )
    }
}

impl std::error::Error for Preempted {}

//! What an MPI rank does when a collective misses its deadline: a roll call over a side
//! communicator to find which ranks are still alive and where they wait, one message
//! naming the collective and the ranks that did not answer, then `MPI_Abort`.
//!
//! Every live rank stuck behind the same missing rank expires at about the same time (they
//! entered the collective at about the same time), sends its own position to every other
//! rank and listens for theirs for [`Watchdog::grace`]. A rank that is stopped, dead,
//! cut off by the network, or busy outside collectives longer than the timeout never
//! answers: those are the ranks named. The side communicator is a duplicate of the world,
//! so the roll call cannot match any of the job's own messages.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use crate::watchdog::{self, OpInfo, Watchdog, WATCHDOG_EXIT_CODE};

/// Bytes of one roll-call answer: the collective the sender waits in, as text.
const ANSWER: usize = 160;
const TAG: i32 = 0x5244; // "RD"

/// Shared by every MPI communicator of a process: the deadline policy and what the roll
/// call needs (world-sized, created once at start-up).
pub struct MpiWatch {
    pub watchdog: Watchdog,
    side: SimpleCommunicator,
    /// Node name of every world rank, for the message.
    hosts: Vec<String>,
}

impl MpiWatch {
    /// Every rank of `world` must call this (it duplicates the world and gathers node names).
    pub fn new(world: &SimpleCommunicator, watchdog: Watchdog) -> Self {
        let side = world.duplicate();
        let name = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
        let mut mine = [0u8; 64];
        let n = name.len().min(mine.len());
        mine[..n].copy_from_slice(&name.as_bytes()[..n]);
        let mut all = vec![0u8; 64 * world.size() as usize];
        side.all_gather_into(&mine[..], &mut all[..]);
        let hosts = all
            .chunks(64)
            .map(|c| {
                String::from_utf8_lossy(c)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect();
        Self {
            watchdog,
            side,
            hosts,
        }
    }

    fn rank(&self) -> usize {
        self.side.rank() as usize
    }

    fn host(&self, rank: usize) -> &str {
        self.hosts.get(rank).map_or("?", |h| h.as_str())
    }

    /// `op` missed its deadline on this rank: report, then end the whole job.
    /// `not_running`: the longest stretch this process itself did not run during the wait.
    pub fn expired(&self, op: &OpInfo, waited: Duration, not_running: Duration) -> ! {
        let me = self.rank();
        let world = self.hosts.len();
        let itself = if not_running > Duration::from_secs(1) {
            format!(
                " (this rank itself did not run for {:.0} s of it: stopped or starved)",
                not_running.as_secs_f64()
            )
        } else {
            String::new()
        };
        // First say where this rank is, in case another rank's abort comes first.
        eprintln!(
            "rank {me} of {world} (host {}): collective watchdog: {op} did not complete within \
             {:.0} s{itself}; holding a roll call of all ranks for {:.0} s",
            self.host(me),
            waited.as_secs_f64(),
            self.watchdog.grace().as_secs_f64()
        );
        // Should MPI_Abort itself hang (a peer's node unreachable), end this process anyway.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(20));
            eprintln!("MPI_Abort did not return within 20 s: exiting");
            // SAFETY: _exit ends the process without running anything else.
            unsafe { libc::_exit(WATCHDOG_EXIT_CODE) }
        });
        let answers = self.roll_call(&format!("{op}"));
        let mut answered = Vec::new();
        let mut silent = Vec::new();
        for (rank, answer) in answers.iter().enumerate() {
            if rank == me {
                continue;
            }
            match answer {
                Some(at) => answered.push(format!("rank {rank} (in {at})")),
                None => silent.push(rank),
            }
        }
        let silent_text = if silent.is_empty() {
            "none".to_string()
        } else {
            silent
                .iter()
                .map(|r| format!("{r} (host {})", self.host(*r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "rank {me} of {world}: collective watchdog: ranks not answering (stopped, dead, \
             unreachable, or busy outside collectives for longer than the timeout): {silent_text}; \
             answering, also waiting: {}. Aborting the job with exit code {WATCHDOG_EXIT_CODE} \
             (raise [distributed] collective_timeout_s if a rank legitimately works that long \
             between collectives).",
            if answered.is_empty() {
                "none".to_string()
            } else {
                answered.join(", ")
            }
        );
        // SAFETY: MPI is initialised while any communicator lives; MPI_Abort does not return.
        unsafe {
            ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, WATCHDOG_EXIT_CODE);
        }
        unreachable!("MPI_Abort returned")
    }

    /// Sends `position` to every other rank and collects theirs for the grace period:
    /// `answers[r]` is rank r's position, `None` where r did not answer in time.
    fn roll_call(&self, position: &str) -> Vec<Option<String>> {
        let me = self.rank();
        let world = self.hosts.len();
        let comm = self.side.as_raw();
        let byte = u8::equivalent_datatype().as_raw();
        // Leaked on purpose: the job is aborted right after, with these possibly in flight.
        let out: &'static mut [u8] = Box::leak(vec![0u8; ANSWER].into_boxed_slice());
        let n = position.len().min(ANSWER);
        out[..n].copy_from_slice(&position.as_bytes()[..n]);
        let inbox: &'static mut [u8] = Box::leak(vec![0u8; ANSWER * world].into_boxed_slice());
        let mut receives = Vec::new();
        for peer in (0..world).filter(|&p| p != me) {
            // SAFETY: buffers live forever; requests are only tested, never freed.
            unsafe {
                let mut send = ffi::RSMPI_REQUEST_NULL;
                ffi::MPI_Isend(
                    out.as_ptr() as *const c_void,
                    ANSWER as i32,
                    byte,
                    peer as i32,
                    TAG,
                    comm,
                    &mut send,
                );
                let mut recv = ffi::RSMPI_REQUEST_NULL;
                ffi::MPI_Irecv(
                    inbox[peer * ANSWER..].as_mut_ptr() as *mut c_void,
                    ANSWER as i32,
                    byte,
                    peer as i32,
                    TAG,
                    comm,
                    &mut recv,
                );
                receives.push((peer, recv, false));
            }
        }
        let started = Instant::now();
        let deadline = Some(started + self.watchdog.grace());
        let _ = watchdog::wait(started, deadline, || {
            for (_, req, done) in receives.iter_mut().filter(|r| !r.2) {
                let mut flag = 0;
                // SAFETY: a request from MPI_Irecv above, tested until it completes.
                unsafe { ffi::MPI_Test(req, &mut flag, ffi::RSMPI_STATUS_IGNORE) };
                *done = flag != 0;
            }
            Ok(receives.iter().all(|r| r.2))
        });
        let mut answers = vec![None; world];
        answers[me] = Some(position.to_string());
        for (peer, _, done) in receives {
            if done {
                let text = &inbox[peer * ANSWER..(peer + 1) * ANSWER];
                answers[peer] = Some(
                    String::from_utf8_lossy(text)
                        .trim_end_matches('\0')
                        .to_string(),
                );
            }
        }
        answers
    }
}

//! The collective watchdog: no rank waits in a collective longer than
//! `[distributed] collective_timeout_s`.
//!
//! Backends start a collective, get a handle, and wait on it here: [`wait`] polls the
//! handle with a back-off that sleeps (so an idle rank, e.g. while rank 0 evaluates, uses
//! almost no CPU) until it completes or its deadline passes. What happens on expiry is the
//! backend's: MPI holds a roll call naming the ranks that did not answer and aborts the job
//! (`mpi_backend`), NCCL aborts its communicator (`nccl_watch`).

use std::time::{Duration, Instant};

/// Exit status of a job ended by the watchdog (as `timeout(1)`).
pub const WATCHDOG_EXIT_CODE: i32 = 124;

/// The deadline policy of one process's collectives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watchdog {
    /// `None`: wait forever (`collective_timeout_s = 0`).
    pub timeout: Option<Duration>,
}

impl Default for Watchdog {
    /// PyTorch's default for NCCL collectives: 10 minutes.
    fn default() -> Self {
        Self::from_secs(600.0)
    }
}

impl Watchdog {
    /// `secs <= 0` (or not finite) disables the deadline.
    pub fn from_secs(secs: f64) -> Self {
        Self {
            timeout: (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs)),
        }
    }

    pub fn disabled() -> Self {
        Self { timeout: None }
    }

    /// The deadline of a collective started now.
    pub fn deadline(&self, started: Instant) -> Option<Instant> {
        self.timeout.map(|t| started + t)
    }

    /// How long the roll call after an expiry waits for the other ranks' answers: live
    /// ranks stuck in the same collective expire within about the time they entered it
    /// apart, so a fraction of the timeout, between 1 and 10 s.
    pub fn grace(&self) -> Duration {
        let t = self.timeout.unwrap_or(Duration::from_secs(600));
        (t / 5).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }
}

/// What a rank was waiting in, for the watchdog's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpInfo {
    /// "all_reduce", "all_gather", "reduce_scatter", "broadcast", "barrier".
    pub op: &'static str,
    /// This communicator's collectives so far, counting from 1: equal on every rank of
    /// the communicator for the same collective.
    pub seq: u64,
    /// The full buffer, as `Traffic` counts it.
    pub bytes: u64,
    /// The communicator's name ("world", "world/split-1", ...).
    pub comm: String,
    pub comm_size: usize,
}

impl std::fmt::Display for OpInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} #{} ({} bytes) on communicator \"{}\" ({} ranks)",
            self.op, self.seq, self.bytes, self.comm, self.comm_size
        )
    }
}

/// Sleeps between polls in proportion to the time already waited (a tenth, between 5 µs
/// and 1 ms) after a short phase of yielding polls: a collective that completes quickly
/// is noticed within microseconds, a long wait costs ~1000 cheap polls per second, and
/// the overshoot is at most 10% of the wait (and 1 ms).
pub struct Backoff {
    started: Instant,
}

impl Backoff {
    const SPIN: Duration = Duration::from_micros(50);
    const MIN_SLEEP: Duration = Duration::from_micros(5);
    const MAX_SLEEP: Duration = Duration::from_millis(1);

    pub fn new(started: Instant) -> Self {
        Self { started }
    }

    pub fn pause(&mut self) {
        let waited = self.started.elapsed();
        if waited < Self::SPIN {
            std::thread::yield_now();
        } else {
            std::thread::sleep((waited / 10).clamp(Self::MIN_SLEEP, Self::MAX_SLEEP));
        }
    }
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    Done,
    /// The deadline passed first. `not_running`: the longest time between two polls, far
    /// above the back-off's 1 ms when this process itself was stopped or descheduled.
    Expired {
        not_running: Duration,
    },
}

/// Polls `done` (which must not block: `MPI_Test`, an event query) until it says true or
/// `deadline` passes. Polling is what makes Open MPI progress an immediate collective
/// (it has no progress thread), so the back-off stays short.
pub fn wait(
    started: Instant,
    deadline: Option<Instant>,
    mut done: impl FnMut() -> crate::error::Result<bool>,
) -> crate::error::Result<Waited> {
    let mut backoff = Backoff::new(started);
    let mut not_running = Duration::ZERO;
    let mut last = Instant::now();
    loop {
        if done()? {
            return Ok(Waited::Done);
        }
        let now = Instant::now();
        not_running = not_running.max(now - last);
        last = now;
        if deadline.is_some_and(|d| now >= d) {
            return Ok(Waited::Expired { not_running });
        }
        backoff.pause();
    }
}

/// CPU time the calling thread has used (user + system), for tests of idle waiting.
#[cfg(test)]
pub(crate) fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ = 100 on Linux
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_disables_and_the_default_is_ten_minutes() {
        assert_eq!(Watchdog::from_secs(0.0).timeout, None);
        assert_eq!(Watchdog::from_secs(-1.0).timeout, None);
        assert_eq!(Watchdog::default().timeout, Some(Duration::from_secs(600)));
        assert_eq!(Watchdog::from_secs(10.0).grace(), Duration::from_secs(2));
        assert_eq!(Watchdog::from_secs(600.0).grace(), Duration::from_secs(10));
        assert_eq!(Watchdog::from_secs(0.5).grace(), Duration::from_secs(1));
    }

    #[test]
    fn a_wait_that_never_completes_expires_at_its_deadline() {
        let start = Instant::now();
        let w = Watchdog::from_secs(0.3);
        let r = wait(start, w.deadline(start), || Ok(false)).unwrap();
        let took = start.elapsed();
        assert!(matches!(r, Waited::Expired { .. }));
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }

    #[test]
    fn a_completing_wait_is_done_and_errors_pass_through() {
        let start = Instant::now();
        let mut polls = 0;
        let r = wait(start, None, || {
            polls += 1;
            Ok(polls == 1000)
        });
        assert_eq!(r.unwrap(), Waited::Done);
        assert_eq!(polls, 1000);
        let e = wait(start, None, || {
            Err(crate::CommError::Mpi {
                what: "MPI_Test failed".into(),
                code: 1,
            })
        })
        .unwrap_err();
        assert!(e.to_string().contains("MPI_Test"));
    }

    #[test]
    fn idle_waiting_does_not_burn_a_core() {
        let cpu = thread_cpu_time();
        let start = Instant::now();
        let w = Watchdog::from_secs(1.0);
        assert!(matches!(
            wait(start, w.deadline(start), || Ok(false)).unwrap(),
            Waited::Expired { not_running } if not_running < Duration::from_millis(100)
        ));
        let used = thread_cpu_time() - cpu;
        // A busy poll would use ~1 s; ticks are 10 ms.
        assert!(
            used < Duration::from_millis(150),
            "{used:?} of CPU in 1 s of waiting"
        );
    }

    #[test]
    fn the_message_names_operation_sequence_bytes_and_communicator() {
        let op = OpInfo {
            op: "all_reduce",
            seq: 57,
            bytes: 4096,
            comm: "world".into(),
            comm_size: 4,
        };
        assert_eq!(
            op.to_string(),
            "all_reduce #57 (4096 bytes) on communicator \"world\" (4 ranks)"
        );
    }
}

//! The collective watchdog for NCCL: a thread that watches a communicator's enqueued
//! collectives, as PyTorch's NCCL watchdog does.
//!
//! NCCL collectives are asynchronous for the host (they run on the null stream), so the
//! host never waits in them; it may wait later, inside libtorch, on a result. Each call
//! records a CUDA event after itself and hands it here with its deadline. The thread polls,
//! every [`PERIOD`]: `ncclCommGetAsyncError` (a failed peer or network), then whether the
//! oldest events have completed, in stream order. On an error or a passed deadline it
//! prints which collective it was, calls `ncclCommAbort` (which also releases a host
//! blocked on the stream) and ends the process, whose exit `mpirun` turns into the end of
//! the job. NCCL alone cannot tell which peer is missing; every rank prints its own view.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::watchdog::OpInfo;

/// How often the thread looks.
pub(crate) const PERIOD: Duration = Duration::from_millis(50);

/// One enqueued collective.
pub(crate) struct Watched {
    pub info: OpInfo,
    pub started: Instant,
    pub deadline: Option<Instant>,
    /// Whether the GPU has passed it (an event query); never blocks.
    pub done: Box<dyn FnMut() -> Result<bool, String> + Send>,
}

/// The communicator, as the thread sees it.
pub(crate) trait Health: Send + 'static {
    /// `ncclCommGetAsyncError`: `Some(text)` once the communicator has failed.
    fn async_error(&self) -> Option<String>;
    /// `ncclCommAbort`.
    fn abort(&self);
}

/// What ends the process: in production, print and `_exit`; in tests, record.
pub(crate) type Fatal = Box<dyn Fn(String) + Send>;

struct Shared {
    queue: Mutex<VecDeque<Watched>>,
    stop: AtomicBool,
}

pub(crate) struct StreamWatch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StreamWatch {
    pub fn start(rank: usize, health: impl Health, fatal: Fatal) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
        });
        let seen = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nccl-watchdog".into())
            .spawn(move || watch(rank, &seen, &health, &fatal))
            .expect("start the NCCL watchdog thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    pub fn push(&self, w: Watched) {
        self.shared.queue.lock().unwrap().push_back(w);
    }

    /// Collectives not yet known to be complete.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(rank: usize, shared: &Shared, health: &dyn Health, fatal: &Fatal) {
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(PERIOD);
        let mut queue = shared.queue.lock().unwrap();
        if let Some(e) = health.async_error() {
            let at = queue
                .front()
                .map_or("no collective in flight".to_string(), |w| {
                    w.info.to_string()
                });
            health.abort();
            fatal(format!(
                "rank {rank}: collective watchdog: NCCL reports an asynchronous error ({e}) \
                 while in {at}; communicator aborted"
            ));
            return;
        }
        while let Some(front) = queue.front_mut() {
            match (front.done)() {
                Ok(true) => {
                    queue.pop_front();
                }
                Ok(false) => break,
                Err(e) => {
                    let info = front.info.to_string();
                    health.abort();
                    fatal(format!(
                        "rank {rank}: collective watchdog: CUDA error while in {info}: {e}; \
                         communicator aborted"
                    ));
                    return;
                }
            }
        }
        if let Some(front) = queue.front() {
            if front.deadline.is_some_and(|d| Instant::now() >= d) {
                let msg = format!(
                    "rank {rank}: collective watchdog: {} did not complete within {:.0} s \
                     ({} collectives in flight); NCCL cannot tell which rank is missing: the \
                     ranks that print no such message are the suspects. Communicator aborted",
                    front.info,
                    front.started.elapsed().as_secs_f64(),
                    queue.len()
                );
                health.abort();
                fatal(msg);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Clone, Default)]
    struct FakeComm {
        error: Arc<Mutex<Option<String>>>,
        aborts: Arc<AtomicUsize>,
    }

    impl Health for FakeComm {
        fn async_error(&self) -> Option<String> {
            self.error.lock().unwrap().clone()
        }
        fn abort(&self) {
            self.aborts.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn recorder() -> (Fatal, Arc<Mutex<Vec<(Instant, String)>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (
            Box::new(move |m| l.lock().unwrap().push((Instant::now(), m))),
            log,
        )
    }

    fn op(seq: u64) -> OpInfo {
        OpInfo {
            op: "all_gather",
            seq,
            bytes: 1024,
            comm: "world".into(),
            comm_size: 2,
        }
    }

    fn watched(seq: u64, timeout: Duration, done: Arc<AtomicBool>) -> Watched {
        let started = Instant::now();
        Watched {
            info: op(seq),
            started,
            deadline: Some(started + timeout),
            done: Box::new(move || Ok(done.load(Ordering::SeqCst))),
        }
    }

    #[test]
    fn completed_collectives_leave_the_queue_and_nothing_fires() {
        let comm = FakeComm::default();
        let (fatal, log) = recorder();
        let w = StreamWatch::start(0, comm.clone(), fatal);
        let done = Arc::new(AtomicBool::new(false));
        w.push(watched(1, Duration::from_secs(5), done.clone()));
        std::thread::sleep(PERIOD * 3);
        assert_eq!(w.in_flight(), 1);
        done.store(true, Ordering::SeqCst);
        std::thread::sleep(PERIOD * 3);
        assert_eq!(w.in_flight(), 0);
        drop(w);
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(comm.aborts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_collective_past_its_deadline_aborts_the_communicator_and_names_itself() {
        let comm = FakeComm::default();
        let (fatal, log) = recorder();
        let w = StreamWatch::start(3, comm.clone(), fatal);
        let started = Instant::now();
        w.push(watched(
            7,
            Duration::from_millis(300),
            Arc::new(AtomicBool::new(false)),
        ));
        std::thread::sleep(Duration::from_millis(600));
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        let (at, msg) = &log[0];
        let after = at.duration_since(started);
        assert!(
            after >= Duration::from_millis(300) && after < Duration::from_millis(300) + PERIOD * 3,
            "{after:?}"
        );
        assert!(
            msg.contains("rank 3") && msg.contains("all_gather #7 (1024 bytes)"),
            "{msg}"
        );
        assert_eq!(comm.aborts.load(Ordering::SeqCst), 1);
        drop(w);
    }

    #[test]
    fn an_asynchronous_error_aborts_at_once() {
        let comm = FakeComm::default();
        let (fatal, log) = recorder();
        let w = StreamWatch::start(1, comm.clone(), fatal);
        w.push(watched(
            2,
            Duration::from_secs(60),
            Arc::new(AtomicBool::new(false)),
        ));
        *comm.error.lock().unwrap() = Some("ncclRemoteError".into());
        std::thread::sleep(PERIOD * 4);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert!(
            log[0].1.contains("ncclRemoteError") && log[0].1.contains("all_gather #2"),
            "{}",
            log[0].1
        );
        assert_eq!(comm.aborts.load(Ordering::SeqCst), 1);
    }
}

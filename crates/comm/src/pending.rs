//! A started collective: start → [`Pending`] → [`wait`](Pending::wait).
//!
//! Backends that can run a collective in the background (MPI's immediate collectives)
//! return a handle that is still in flight; the others return one that is already done.
//! Between start and wait the caller may compute (issue 16's overlap), but with Open MPI a
//! collective only progresses inside MPI calls, so a long computation should call
//! [`Pending::test`] now and then.

use crate::error::Result;
use tch::Tensor;

/// One backend's in-flight collective.
pub(crate) trait InFlight {
    /// Done yet? Never blocks; drives progress.
    fn test(&mut self) -> Result<bool>;
    /// Blocks until done or the watchdog's deadline (which ends the job), then the result.
    fn wait(self: Box<Self>) -> Result<Tensor>;
}

/// A collective that was started and may still be in flight. Dropping it waits for it
/// (the backend may still be writing into its buffers).
#[must_use = "a started collective must be waited on"]
pub struct Pending {
    state: State,
}

// Only the MPI backend starts collectives that stay in flight.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
enum State {
    Ready(Tensor),
    InFlight(Box<dyn InFlight>),
}

impl Pending {
    /// A collective that has already completed with `result`.
    pub fn ready(result: Tensor) -> Self {
        Self {
            state: State::Ready(result),
        }
    }

    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn in_flight(op: Box<dyn InFlight>) -> Self {
        Self {
            state: State::InFlight(op),
        }
    }

    /// Whether the collective has completed (never blocks).
    pub fn test(&mut self) -> Result<bool> {
        match &mut self.state {
            State::Ready(_) => Ok(true),
            State::InFlight(op) => op.test(),
        }
    }

    /// The collective's result, once every rank has taken part. Under the watchdog's
    /// deadline: a collective that does not complete in time ends the job.
    pub fn wait(self) -> Result<Tensor> {
        match self.state {
            State::Ready(t) => Ok(t),
            State::InFlight(op) => op.wait(),
        }
    }
}

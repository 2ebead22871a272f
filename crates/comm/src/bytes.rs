//! Host tensors seen as the plain slices MPI reads and writes.

use crate::error::Result;
use tch::{Device, Kind, Tensor};

/// A contiguous CPU copy of `t` (a no-op view when it already is one).
pub(crate) fn host_contiguous(t: &Tensor) -> Tensor {
    let t = if t.device() == Device::Cpu {
        t.shallow_clone()
    } else {
        t.to_device(Device::Cpu)
    };
    t.contiguous()
}

/// The bytes of a contiguous CPU tensor.
///
/// # Safety
/// A `Tensor` is a shared handle: other handles (shallow clones, views) may reach the
/// same storage, and the borrow of `t` does not stop them. The caller must make sure no
/// handle writes this storage while the slice lives.
pub(crate) unsafe fn as_bytes(t: &Tensor) -> Result<&[u8]> {
    ensure!(
        t.device() == Device::Cpu && t.is_contiguous(),
        "internal: MPI needs a contiguous CPU tensor"
    );
    let len = t.numel() * t.kind().elt_size_in_bytes();
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: a contiguous CPU tensor has `len` initialised bytes at `data_ptr`, kept
    // alive by `t` for the borrow; no writer meanwhile is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, len) })
}

/// Reductions run in f32 or f64; other float kinds are summed in f32 and cast back.
pub(crate) fn reduction_kind(kind: Kind) -> Result<Kind> {
    match kind {
        Kind::Float | Kind::Double => Ok(kind),
        Kind::BFloat16 | Kind::Half => Ok(Kind::Float),
        Kind::Int64 => Ok(Kind::Int64),
        other => invalid!("sum over ranks of {other:?} tensors is not supported"),
    }
}

//! Host-to-device uploads of what the host builds for a step: token ids, masks, index
//! and layout tensors.
//!
//! On a GPU a plain `to_device` from pageable memory blocks the host until the copy is
//! done. [`upload`] pins the host tensor and queues the copy without blocking
//! (`non_blocking`), so the host goes on building the next micro-batch while the device
//! works. The copy runs on the current stream, in order with the kernels that read the
//! result; PyTorch's caching host allocator keeps the pinned block alive until the copy
//! has completed, so the pinned tensor may be dropped at once. On the CPU nothing is
//! copied. Not yet run on a GPU (no machine was lent): `benches/gpu_check.sh` trains
//! through it.

use tch::{Device, Tensor};

/// `t` on `device`: for a host tensor and a CUDA device, through pinned memory and
/// without blocking the host; a tensor already on `device` is returned as is.
pub fn upload(t: &Tensor, device: Device) -> Tensor {
    match (t.device(), device) {
        (from, to) if from == to => t.shallow_clone(),
        (Device::Cpu, Device::Cuda(_)) => {
            let pinned = if t.is_pinned(device) {
                t.shallow_clone()
            } else {
                t.pin_memory(device)
            };
            pinned.to_device_(device, pinned.kind(), true, false)
        }
        _ => t.to_device(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_tensor_on_the_host_is_the_same_tensor() {
        let t = Tensor::from_slice(&[3i64, 1, 4]);
        let u = upload(&t, Device::Cpu);
        assert_eq!(u.data_ptr(), t.data_ptr(), "no copy on the host");
        assert_eq!(Vec::<i64>::try_from(&u).unwrap(), vec![3, 1, 4]);
    }
}

//! Device and dtype from their config names.

use tch::{Device, Kind};

use crate::choices::DtypeName;
use crate::error::{Result, TrainError};

pub fn parse_device(name: &str) -> Result<Device> {
    Ok(match name {
        "cpu" => Device::Cpu,
        "auto" => Device::cuda_if_available(),
        "cuda" => Device::Cuda(0),
        _ => match name.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => Device::Cuda(i),
            None => {
                bail_config!(
                    "model.device",
                    "model.device = {name:?}: expected \"cpu\", \"cuda\", \"cuda:N\" or \"auto\""
                )
            }
        },
    })
}

/// The compute dtype on `device`: "auto" is bf16 on CUDA and fp32 on the CPU (where
/// bf16 matmuls are slow and the tests want exact fp32 numbers).
pub fn parse_dtype(dtype: &DtypeName, device: Device) -> Result<Kind> {
    Ok(match dtype {
        DtypeName::Auto if device.is_cuda() => Kind::BFloat16,
        DtypeName::Auto | DtypeName::Fp32 => Kind::Float,
        DtypeName::Bf16 => Kind::BFloat16,
    })
}

/// Refuse a CUDA device on a machine without one, before any work starts.
pub fn check_available(device: Device) -> Result<()> {
    if let Device::Cuda(i) = device {
        let n = tch::Cuda::device_count();
        if (i as i64) >= n {
            return Err(TrainError::NoCudaDevice {
                index: i,
                count: n,
                cuda: tch::Cuda::is_available(),
            });
        }
    }
    Ok(())
}

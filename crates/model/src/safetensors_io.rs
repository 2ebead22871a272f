//! Safetensors files as transformers writes them: a `{"format": "pt"}` header
//! metadata entry (tch's own writer leaves the metadata empty), and header-only
//! reads so a checkpoint can be checked before its data is loaded.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

/// Writes `tensors` to `path` with `{"format": "pt"}` metadata. Each tensor is copied to
/// the CPU only while it is written.
pub fn write_pt_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, tensor)| {
            Ok((
                name.as_str(),
                CpuView::new(tensor).with_context(|| format!("tensor {name}"))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::tensor::serialize_to_file(views, &Some(metadata), path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads every tensor of a safetensors file (onto the CPU).
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    Tensor::read_safetensors(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Name, dtype and shape of one tensor in a safetensors header.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<i64>,
}

impl TensorInfo {
    /// The tch kind of this tensor's dtype.
    pub fn kind(&self) -> Result<Kind> {
        Kind::try_from(self.dtype).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The tensor table of a safetensors file, read from its header only.
pub fn read_header(path: &Path) -> Result<BTreeMap<String, TensorInfo>> {
    let context = || format!("cannot read the safetensors header of {}", path.display());
    let mut file = std::fs::File::open(path).with_context(context)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).with_context(context)?;
    let len = u64::from_le_bytes(len);
    // The format caps headers at 100 MB; refuse anything larger before allocating.
    if len > 100_000_000 {
        bail!(
            "{}: header length {len} is not that of a safetensors file",
            path.display()
        );
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).with_context(context)?;
    let mut table: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).with_context(context)?;
    table.remove("__metadata__");
    table
        .into_iter()
        .map(|(name, entry)| {
            let info = serde_json::from_value(entry).with_context(|| {
                format!("{}: malformed header entry for {name}", path.display())
            })?;
            Ok((name, info))
        })
        .collect()
}

/// A tensor as the safetensors writer sees it, copied to contiguous CPU memory on demand.
struct CpuView {
    tensor: Tensor,
    dtype: Dtype,
    shape: Vec<usize>,
}

impl CpuView {
    fn new(tensor: &Tensor) -> Result<Self> {
        let dtype = Dtype::try_from(tensor.kind()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let shape = tensor.size().iter().map(|&d| d as usize).collect();
        Ok(CpuView {
            tensor: tensor.detach(),
            dtype,
            shape,
        })
    }
}

impl View for CpuView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let cpu = self.tensor.to_device(Device::Cpu).contiguous();
        let mut bytes = vec![0u8; self.data_len()];
        cpu.copy_data_u8(&mut bytes, cpu.numel());
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.tensor.numel() * self.tensor.kind().elt_size_in_bytes()
    }
}

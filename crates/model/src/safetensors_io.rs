//! Safetensors files as transformers writes them: a `{"format": "pt"}` header
//! metadata entry (tch's own writer leaves the metadata empty), written to a temporary
//! name and renamed; and memory-mapped reading of one tensor, or a flat range of one,
//! at a time, so a checkpoint larger than memory can be loaded piece by piece.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensorError, View};
use safetensors::SafeTensors;
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

/// Writes `tensors` to `path` with `{"format": "pt"}` metadata, each in its own dtype.
/// Each tensor is copied to the CPU only while it is written.
pub fn write_pt_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    write_views(path, tensors, None)
}

/// As [`write_pt_safetensors`], every tensor converted to `kind` as it is written.
pub fn write_pt_safetensors_as(
    path: &Path,
    tensors: &[(String, Tensor)],
    kind: Kind,
) -> Result<()> {
    write_views(path, tensors, Some(kind))
}

fn write_views(path: &Path, tensors: &[(String, Tensor)], kind: Option<Kind>) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, tensor)| {
            let kind = kind.unwrap_or(tensor.kind());
            Ok((
                name.as_str(),
                CpuView::new(tensor, kind).with_context(|| format!("tensor {name}"))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_atomically(path, |tmp| {
        safetensors::tensor::serialize_to_file(views, &Some(metadata), tmp)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// Writes through a temporary file, synced and renamed, then syncs the folder.
pub use rpo_storage::atomic::write_atomically;

/// Reads every tensor of a safetensors file (onto the CPU).
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let file = SafetensorsFile::open(path)?;
    file.names()
        .map(|name| {
            let kind = file.info(name)?.kind()?;
            Ok((name.to_string(), file.read(name, kind, Device::Cpu)?))
        })
        .collect()
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

    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// The tensor table of a safetensors file, read from its header (the file's size is
/// checked against it).
pub fn read_header(path: &Path) -> Result<BTreeMap<String, TensorInfo>> {
    let file = SafetensorsFile::open(path)?;
    Ok(file
        .tensors
        .into_iter()
        .map(|(name, entry)| (name, entry.info))
        .collect())
}

/// A memory-mapped safetensors file whose header has been checked against its size:
/// reading a tensor touches only that tensor's bytes.
pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    tensors: BTreeMap<String, Entry>,
}

struct Entry {
    info: TensorInfo,
    /// Absolute byte offset of the tensor's data in the file.
    offset: usize,
}

/// What a safetensors error means for a file on disk.
fn explain(e: &SafeTensorError) -> &'static str {
    match e {
        SafeTensorError::HeaderTooSmall
        | SafeTensorError::InvalidHeaderLength
        | SafeTensorError::MetadataIncompleteBuffer => {
            "it is truncated (or has bytes after its last tensor)"
        }
        SafeTensorError::InvalidOffset(_) => "its tensors' data offsets do not tile the data",
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's shape and dtype do not fit its data offsets"
        }
        _ => "its header is not that of a safetensors file",
    }
}

impl SafetensorsFile {
    /// Maps `path` and validates its header with the `safetensors` crate's own reader
    /// (`SafeTensors::read_metadata`): every tensor's byte span matches its dtype and
    /// shape, the spans tile the data section, and the file is exactly that long.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: read-only. Files this project writes are only replaced by rename
        // (write_atomically), which leaves this map intact. A file rewritten in place by
        // another program changes the bytes under us, and one truncated under the map
        // kills the process with SIGBUS: no error can be returned for those.
        let map = unsafe { rpo_storage::framed::map_readonly(&file) }
            .with_context(|| format!("cannot memory-map {}", path.display()))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a usable safetensors file: {} ({e:?})",
                path.display(),
                explain(&e)
            )
        })?;
        let data_start = 8 + header_len;
        let tensors = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let entry = Entry {
                    info: TensorInfo {
                        dtype: info.dtype,
                        shape: info.shape.iter().map(|&d| d as i64).collect(),
                    },
                    offset: data_start + info.data_offsets.0,
                };
                (name, entry)
            })
            .collect();
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            map,
            tensors,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn info(&self, name: &str) -> Result<&TensorInfo> {
        Ok(&self.entry(name)?.info)
    }

    /// The whole tensor `name`, converted to `kind` on `device`.
    pub fn read(&self, name: &str, kind: Kind, device: Device) -> Result<Tensor> {
        let entry = self.entry(name)?;
        self.read_flat(name, entry, 0, entry.info.numel(), kind, device)?
            .f_reshape(&entry.info.shape)
            .with_context(|| format!("tensor {name} of {}", self.path.display()))
    }

    /// Elements `[start, start + len)` of tensor `name` in row-major order, as a 1-D
    /// tensor of `kind` on `device`; only those bytes are read.
    pub fn read_range(
        &self,
        name: &str,
        start: i64,
        len: i64,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor> {
        let entry = self.entry(name)?;
        let numel = entry.info.numel();
        ensure!(
            start >= 0 && len >= 0 && start.checked_add(len).is_some_and(|end| end <= numel),
            "elements [{start}, {start} + {len}) are outside tensor {name} ({numel} elements) of {}",
            self.path.display()
        );
        self.read_flat(name, entry, start, len, kind, device)
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.tensors
            .get(name)
            .with_context(|| format!("tensor {name} is missing from {}", self.path.display()))
    }

    fn read_flat(
        &self,
        name: &str,
        entry: &Entry,
        start: i64,
        len: i64,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor> {
        let context = || format!("cannot read tensor {name} of {}", self.path.display());
        let stored = entry.info.kind().with_context(context)?;
        let size = entry.info.dtype.size();
        let from = entry.offset + start as usize * size;
        let bytes = &self.map[from..from + len as usize * size];
        let tensor = Tensor::f_from_data_size(bytes, &[len], stored).with_context(context)?;
        Ok(to_kind_on(&tensor, kind, device))
    }
}

/// `tensor` as `kind` on `device`, converted on whichever side of the copy holds the
/// smaller dtype, so the transfer moves the fewest bytes.
pub fn to_kind_on(tensor: &Tensor, kind: Kind, device: Device) -> Tensor {
    if kind.elt_size_in_bytes() < tensor.kind().elt_size_in_bytes() {
        tensor.to_kind(kind).to_device(device)
    } else {
        tensor.to_device(device).to_kind(kind)
    }
}

/// A tensor as the safetensors writer sees it, copied to contiguous CPU memory (and
/// converted to the dtype being written) on demand.
struct CpuView {
    tensor: Tensor,
    kind: Kind,
    dtype: Dtype,
    shape: Vec<usize>,
}

impl CpuView {
    fn new(tensor: &Tensor, kind: Kind) -> Result<Self> {
        let dtype = Dtype::try_from(kind).map_err(|e| anyhow::anyhow!("{e}"))?;
        let shape = tensor.size().iter().map(|&d| d as usize).collect();
        Ok(CpuView {
            tensor: tensor.detach(),
            kind,
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
        let cpu = to_kind_on(&self.tensor, self.kind, Device::Cpu).contiguous();
        let mut bytes = vec![0u8; self.data_len()];
        cpu.copy_data_u8(&mut bytes, cpu.numel());
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.tensor.numel() * self.kind.elt_size_in_bytes()
    }
}

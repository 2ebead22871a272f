//! Safetensors files as transformers writes them: a `{"format": "pt"}` header
//! metadata entry (tch's own writer leaves the metadata empty), written to a temporary
//! name and renamed; and memory-mapped reading of one tensor, or a flat range of one,
//! at a time, so a checkpoint larger than memory can be loaded piece by piece.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensorError, View};
use safetensors::SafeTensors;
use serde::Deserialize;
use tch::{Device, Kind, TchError, Tensor};

use crate::error::ModelError;

pub use crate::error::SafetensorsError;

/// Writes `tensors` to `path` with `{"format": "pt"}` metadata, each in its own dtype.
/// Each tensor is copied to the CPU only while it is written.
pub fn write_pt_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), ModelError> {
    write_views(path, tensors, None)
}

/// As [`write_pt_safetensors`], every tensor converted to `kind` as it is written.
pub fn write_pt_safetensors_as(
    path: &Path,
    tensors: &[(String, Tensor)],
    kind: Kind,
) -> Result<(), ModelError> {
    write_views(path, tensors, Some(kind))
}

fn write_views(
    path: &Path,
    tensors: &[(String, Tensor)],
    kind: Option<Kind>,
) -> Result<(), ModelError> {
    let views = tensors
        .iter()
        .map(|(name, tensor)| {
            let kind = kind.unwrap_or(tensor.kind());
            Ok((
                name.as_str(),
                CpuView::new(tensor, kind).map_err(|source| ModelError::WriteTensor {
                    name: name.clone(),
                    source,
                })?,
            ))
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_atomically(path, |tmp| {
        safetensors::tensor::serialize_to_file(views, &Some(metadata), tmp).map_err(|source| {
            ModelError::Serialize {
                path: path.to_path_buf(),
                source,
            }
        })
    })
}

/// Writes through a temporary file, synced and renamed, then syncs the folder.
pub use rpo_storage::atomic::write_atomically;

/// Reads every tensor of a safetensors file (onto the CPU).
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>, SafetensorsError> {
    let file = SafetensorsFile::open(path)?;
    file.names()
        .map(|name| {
            let kind = file
                .info(name)?
                .kind()
                .map_err(|source| file.read_error(name, source))?;
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
    pub fn kind(&self) -> Result<Kind, TchError> {
        Kind::try_from(self.dtype)
    }

    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
}

/// The tensor table of a safetensors file, read from its header (the file's size is
/// checked against it).
pub fn read_header(path: &Path) -> Result<BTreeMap<String, TensorInfo>, SafetensorsError> {
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
    pub fn open(path: &Path) -> Result<Self, SafetensorsError> {
        let file = File::open(path).map_err(|source| SafetensorsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: read-only. Files this project writes are only replaced by rename
        // (write_atomically), which leaves this map intact. A file rewritten in place by
        // another program changes the bytes under us, and one truncated under the map
        // kills the process with SIGBUS: no error can be returned for those.
        let map = unsafe { rpo_storage::framed::map_readonly(&file) }.map_err(|source| {
            SafetensorsError::Map {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| SafetensorsError::Invalid {
                path: path.to_path_buf(),
                explanation: explain(&e),
                detail: format!("{e:?}"),
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

    pub fn info(&self, name: &str) -> Result<&TensorInfo, SafetensorsError> {
        Ok(&self.entry(name)?.info)
    }

    /// The whole tensor `name`, converted to `kind` on `device`.
    pub fn read(&self, name: &str, kind: Kind, device: Device) -> Result<Tensor, SafetensorsError> {
        let entry = self.entry(name)?;
        self.read_flat(name, entry, 0, entry.info.numel(), kind, device)?
            .f_reshape(&entry.info.shape)
            .map_err(|source| SafetensorsError::Shape {
                name: name.to_string(),
                path: self.path.clone(),
                source,
            })
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
    ) -> Result<Tensor, SafetensorsError> {
        let entry = self.entry(name)?;
        let numel = entry.info.numel();
        if !(start >= 0 && len >= 0 && start.checked_add(len).is_some_and(|end| end <= numel)) {
            return Err(SafetensorsError::OutOfRange {
                name: name.to_string(),
                path: self.path.clone(),
                start,
                len,
                numel,
            });
        }
        self.read_flat(name, entry, start, len, kind, device)
    }

    fn entry(&self, name: &str) -> Result<&Entry, SafetensorsError> {
        self.tensors
            .get(name)
            .ok_or_else(|| SafetensorsError::MissingTensor {
                name: name.to_string(),
                path: self.path.clone(),
            })
    }

    fn read_error(&self, name: &str, source: TchError) -> SafetensorsError {
        SafetensorsError::Read {
            name: name.to_string(),
            path: self.path.clone(),
            source,
        }
    }

    fn read_flat(
        &self,
        name: &str,
        entry: &Entry,
        start: i64,
        len: i64,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor, SafetensorsError> {
        let stored = entry
            .info
            .kind()
            .map_err(|source| self.read_error(name, source))?;
        let size = entry.info.dtype.size();
        let from = entry.offset + start as usize * size;
        let bytes = &self.map[from..from + len as usize * size];
        let tensor = Tensor::f_from_data_size(bytes, &[len], stored)
            .map_err(|source| self.read_error(name, source))?;
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
    fn new(tensor: &Tensor, kind: Kind) -> Result<Self, TchError> {
        let dtype = Dtype::try_from(kind)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_failures_are_typed_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let err = SafetensorsFile::open(&path).err().unwrap();
        assert!(matches!(err, SafetensorsError::Open { .. }), "{err}");

        write_pt_safetensors(
            &path,
            &[("w".into(), Tensor::ones([4], (Kind::Float, Device::Cpu)))],
        )
        .unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        let err = file.read("v", Kind::Float, Device::Cpu).unwrap_err();
        assert!(
            matches!(err, SafetensorsError::MissingTensor { .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("tensor v is missing from {}", path.display())
        );
        let err = file
            .read_range("w", 3, 2, Kind::Float, Device::Cpu)
            .unwrap_err();
        assert!(matches!(err, SafetensorsError::OutOfRange { .. }), "{err}");
        drop(file);

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = SafetensorsFile::open(&path).err().unwrap();
        assert!(matches!(err, SafetensorsError::Invalid { .. }), "{err}");
    }
}

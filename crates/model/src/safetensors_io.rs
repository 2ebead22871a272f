//! Safetensors files as transformers writes them: a `{"format": "pt"}` header
//! metadata entry (tch's own writer leaves the metadata empty), written to a temporary
//! name and renamed; and memory-mapped reading of one tensor, or a flat range of one,
//! at a time, so a checkpoint larger than memory can be loaded piece by piece.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use memmap2::Mmap;
use safetensors::tensor::{Dtype, View};
use serde::Deserialize;
use tch::{Device, Kind, Tensor};

/// The format caps headers at 100 MB.
const MAX_HEADER_LEN: u64 = 100_000_000;

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

/// Runs `write` on a temporary file next to `path`, flushes it to disk and renames it to
/// `path`, so a reader (or a memory map) never sees a half-written file.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let result = write(&tmp)
        .and_then(|()| {
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", tmp.display()))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

/// One header entry as the format stores it.
#[derive(Deserialize)]
struct RawEntry {
    dtype: Dtype,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

impl SafetensorsFile {
    /// Maps `path` and validates its header: every tensor's byte span matches its dtype
    /// and shape, the spans tile the data section, and the file is exactly that long.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        ensure!(
            len >= 8,
            "{} is truncated: {len} bytes, too short for a safetensors header",
            path.display()
        );
        // SAFETY: the map is read-only, and checkpoints are only ever replaced by rename
        // (write_atomically), never rewritten in place, so the bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot memory-map {}", path.display()))?;
        let header_len = u64::from_le_bytes(map[..8].try_into().unwrap());
        if header_len > MAX_HEADER_LEN {
            bail!(
                "{}: header length {header_len} is not that of a safetensors file",
                path.display()
            );
        }
        let data_start = 8 + header_len;
        ensure!(
            data_start <= len,
            "{} is truncated: its header needs {header_len} bytes, the file holds {}",
            path.display(),
            len - 8
        );
        let mut table: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&map[8..data_start as usize])
                .with_context(|| format!("invalid safetensors header in {}", path.display()))?;
        table.remove("__metadata__");

        let mut spans = Vec::with_capacity(table.len());
        let mut tensors = BTreeMap::new();
        for (name, value) in table {
            let raw: RawEntry = serde_json::from_value(value).with_context(|| {
                format!("{}: malformed header entry for {name}", path.display())
            })?;
            let (start, end) = raw.data_offsets;
            let bytes = raw
                .shape
                .iter()
                .try_fold(raw.dtype.size() as u64, |n, &d| n.checked_mul(d));
            ensure!(
                start <= end && bytes == Some(end - start),
                "{}: tensor {name} ({:?} {:?}) does not fit its data offsets [{start}, {end})",
                path.display(),
                raw.dtype,
                raw.shape
            );
            spans.push((start, end, name.clone()));
            let info = TensorInfo {
                dtype: raw.dtype,
                shape: raw.shape.iter().map(|&d| d as i64).collect(),
            };
            let offset = (data_start + start) as usize;
            tensors.insert(name, Entry { info, offset });
        }
        // The spans must tile the data section, so no two tensors share bytes.
        spans.sort();
        let mut data_len = 0;
        for (start, end, name) in &spans {
            ensure!(
                *start == data_len,
                "{}: tensor {name}'s data starts at {start}, expected {data_len}",
                path.display()
            );
            data_len = *end;
        }
        let held = len - data_start;
        ensure!(
            held >= data_len,
            "{} is truncated: its header describes {data_len} bytes of tensor data, the file holds {held}",
            path.display()
        );
        ensure!(
            held == data_len,
            "{} has {} bytes after its last tensor",
            path.display(),
            held - data_len
        );
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

//! A Hugging Face folder written tensor by tensor, in any order, so a model that exists
//! only in pieces (ZeRO shards gathered one unit at a time, a checkpoint read one unit at
//! a time) is saved without ever holding the whole of it.
//!
//! The layout is fixed up front from names and shapes alone, exactly as
//! [`save_hf_sharded`](crate::save_hf_sharded) lays it out (name order, greedy packing,
//! the safetensors header as the `safetensors` crate serialises it), so the files are
//! byte-identical to it; each tensor's bytes are then written at their offset.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use rpo_storage::AtomicFile;
use safetensors::tensor::{Dtype, TensorInfo};
use tch::{Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::hf_io::{
    pack_greedily, remove_stale_weights, shard_file_name, sort_by_name, write_folder_config,
    write_index, EMBED_TOKENS, WEIGHTS_FILE, WEIGHTS_INDEX_FILE,
};
use crate::safetensors_io::to_kind_on;

/// Where one tensor goes.
struct Slot {
    file: usize,
    /// Byte offset of its data in the file.
    offset: u64,
    shape: Vec<i64>,
    written: bool,
}

/// Writes a Hugging Face folder (`config.json`, weights in `kind`, shards of at most
/// `max_shard_bytes` with an index above that) one tensor at a time. Each weight file is
/// an [`AtomicFile`]: dropped before [`finish`](Self::finish), the writer leaves no
/// temporary file and the folder's earlier weights as they were.
pub struct HfWriter {
    dir: PathBuf,
    kind: Kind,
    /// The weight files' names, and the files, in the same order.
    names: Vec<String>,
    files: Vec<AtomicFile>,
    slots: HashMap<String, Slot>,
    total_size: u64,
    total_parameters: i64,
}

impl HfWriter {
    /// Writes `config.json` and creates the weight files (under temporary names) for
    /// the tensors `specs` (Hugging Face name and shape).
    pub fn create(
        dir: &Path,
        specs: &[(String, Vec<i64>)],
        config: &LlamaConfig,
        kind: Kind,
        max_shard_bytes: u64,
    ) -> Result<Self> {
        let mut specs = specs.to_vec();
        sort_by_name(&mut specs)?;
        if !specs.iter().any(|(name, _)| name == EMBED_TOKENS) {
            return Err(ModelError::NotLlama);
        }
        write_folder_config(dir, config, kind)?;

        let dtype = Dtype::try_from(kind)?;
        let elt = kind.elt_size_in_bytes() as u64;
        let bytes = |shape: &[i64]| shape.iter().product::<i64>() as u64 * elt;
        // Greedy packing in name order, as save_hf_sharded does.
        let groups = pack_greedily(specs.iter().cloned(), |(_, s)| bytes(s), max_shard_bytes);
        let count = groups.len();
        let mut writer = Self {
            dir: dir.to_path_buf(),
            kind,
            names: Vec::new(),
            files: Vec::new(),
            slots: HashMap::new(),
            total_size: specs.iter().map(|(_, s)| bytes(s)).sum(),
            total_parameters: specs.iter().map(|(_, s)| s.iter().product::<i64>()).sum(),
        };
        for (i, group) in groups.into_iter().enumerate() {
            let name = if count == 1 {
                WEIGHTS_FILE.to_string()
            } else {
                shard_file_name(i + 1, count)
            };
            let mut entries = Vec::new();
            let mut offset = 0usize;
            for (tensor, shape) in &group {
                let n = bytes(shape) as usize;
                let info = TensorInfo {
                    dtype,
                    shape: shape.iter().map(|&d| d as usize).collect(),
                    data_offsets: (offset, offset + n),
                };
                entries.push((tensor.clone(), info));
                offset += n;
            }
            let header = header_bytes(&entries)?;
            let start = 8 + header.len() as u64;
            let path = dir.join(&name);
            let mut file = AtomicFile::create(&path)?;
            file.write_all(&(header.len() as u64).to_le_bytes())
                .and_then(|()| file.write_all(&header))
                .map_err(|e| ModelError::io("cannot write", &path, e))?;
            file.set_len(start + offset as u64)?;
            for ((tensor, shape), (_, info)) in group.into_iter().zip(&entries) {
                let slot = Slot {
                    file: i,
                    offset: start + info.data_offsets.0 as u64,
                    shape,
                    written: false,
                };
                writer.slots.insert(tensor, slot);
            }
            writer.names.push(name);
            writer.files.push(file);
        }
        Ok(writer)
    }

    /// Writes tensor `name` (any dtype and device; converted to the folder's dtype).
    pub fn write(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        let slot = self.slots.get_mut(name).ok_or_else(|| {
            ModelError::Invalid(format!("tensor {name} is not part of this folder"))
        })?;
        if slot.written {
            return Err(ModelError::Invalid(format!(
                "tensor {name} is written twice"
            )));
        }
        if tensor.size() != slot.shape {
            return Err(ModelError::WriteShape {
                name: name.to_string(),
                got: tensor.size(),
                expected: slot.shape.clone(),
            });
        }
        let cpu = to_kind_on(&tensor.detach(), self.kind, Device::Cpu).contiguous();
        let mut bytes = vec![0u8; cpu.numel() * self.kind.elt_size_in_bytes()];
        cpu.copy_data_u8(&mut bytes, cpu.numel());
        self.files[slot.file].write_at(slot.offset, &bytes)?;
        slot.written = true;
        Ok(())
    }

    /// Syncs the weight files and renames them into place, writes the index (several
    /// shards), and removes weight files of an earlier save the new one does not use.
    pub fn finish(self) -> Result<()> {
        let mut missing: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| !s.written)
            .map(|(n, _)| n.clone())
            .collect();
        missing.sort();
        if !missing.is_empty() {
            return Err(ModelError::Unwritten { names: missing });
        }
        for file in self.files {
            file.commit("")?;
        }
        let mut written: BTreeSet<String> = self.names.iter().cloned().collect();
        if self.names.len() > 1 {
            let weight_map: BTreeMap<&str, &str> = self
                .slots
                .iter()
                .map(|(n, s)| (n.as_str(), self.names[s.file].as_str()))
                .collect();
            write_index(
                &self.dir,
                self.total_size,
                self.total_parameters as u64,
                &weight_map,
            )?;
            written.insert(WEIGHTS_INDEX_FILE.to_string());
        }
        remove_stale_weights(&self.dir, &written)?;
        Ok(rpo_storage::sync_dir(&self.dir)?)
    }
}

/// The JSON header as `safetensors` 0.3 serialises it: `__metadata__` first, then the
/// tensors in offset order, padded with spaces to a multiple of 8 bytes.
fn header_bytes(entries: &[(String, TensorInfo)]) -> Result<Vec<u8>> {
    let metadata = HashMap::from([("format", "pt")]);
    let mut json = format!("{{\"__metadata__\":{}", serde_json::to_string(&metadata)?);
    for (name, info) in entries {
        json.push(',');
        json.push_str(&serde_json::to_string(name)?);
        json.push(':');
        json.push_str(&serde_json::to_string(info)?);
    }
    json.push('}');
    let mut bytes = json.into_bytes();
    let extra = (8 - bytes.len() % 8) % 8;
    bytes.extend(std::iter::repeat(b' ').take(extra));
    Ok(bytes)
}

//! Training checkpoints of the sharded state.
//!
//! `<root>/step-00000042/` holds `manifest.json`, one `rank-NNNNN.safetensors` per rank
//! that owns something — its fp32 master elements and optimizer state per unit, in
//! *unpadded* unit coordinates, so any world size or stage can read them back — and the
//! files the trainer adds (the frozen reference, the tokenizer). Everything is written
//! into `.tmp-step-…`, flushed to disk and checksummed (CRC-32) in the manifest, then the
//! folder is renamed into place and named in `<root>/latest`: a crash at any point leaves
//! the previous checkpoint as the newest complete one.

use rpo_model::safetensors_io::SafetensorsFile;
use rpo_model::{HfWriter, LlamaConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub use crate::checkpoint_error::CheckpointError;
use crate::error::{Result, ZeroError};
use crate::stage::ZeroStage;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const LATEST_FILE: &str = "latest";
pub(crate) const FORMAT: &str = "rpo-shard training checkpoint";
pub(crate) const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamRecord {
    pub name: String,
    pub shape: Vec<i64>,
    pub offset: i64,
    pub numel: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub unit: String,
    pub numel: i64,
    pub params: Vec<ParamRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub file: String,
    pub bytes: u64,
    pub crc32: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub file: String,
    pub rank: usize,
    /// `(start, len)` per unit, in unpadded unit coordinates.
    pub ranges: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub step: usize,
    pub world_size: usize,
    pub zero_stage: ZeroStage,
    pub units: Vec<UnitRecord>,
    /// Optimizer state tensors per unit (e.g. `square_avg`), and its step count.
    pub optimizer_slots: Vec<String>,
    pub optimizer_steps: i64,
    pub shards: Vec<ShardRecord>,
    /// Every file of the checkpoint but the manifest, with its size and checksum.
    pub files: Vec<FileRecord>,
    pub model_config: serde_json::Value,
    /// The trainer's own state (phase, data position, config, ...).
    pub trainer: serde_json::Value,
}

pub(crate) fn crc32_of(path: &Path) -> Result<(u64, u32)> {
    let bytes = std::fs::read(path).map_err(|e| ZeroError::io("cannot read", path, e))?;
    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
}

/// The `step-*` folders under `root`, oldest first.
pub fn step_folders(root: &Path) -> Result<Vec<PathBuf>> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| ZeroError::io("cannot list", root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    Ok(steps)
}

/// Removes all but the newest `keep` `step-*` folders up to `step`, the one just written.
/// Later steps are never removed: they belong to a run this one does not know about.
pub(crate) fn prune(root: &Path, keep: usize, step: usize) -> Result<()> {
    let current = root.join(format!("step-{step:08}"));
    let steps: Vec<PathBuf> = step_folders(root)?
        .into_iter()
        .filter(|p| *p <= current)
        .collect();
    if keep > 0 && steps.len() > keep {
        for old in &steps[..steps.len() - keep] {
            std::fs::remove_dir_all(old)
                .map_err(|e| ZeroError::io("cannot remove the old checkpoint", old, e))?;
        }
    }
    Ok(())
}

/// A complete, verified checkpoint on disk.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Checkpoint {
    /// `path` is a checkpoint folder, or a folder of checkpoints (then the one its
    /// `latest` names). Every file is checked against the manifest's size and checksum.
    pub fn open(path: &Path) -> std::result::Result<Self, CheckpointError> {
        let read = |p: PathBuf| {
            std::fs::read(&p).map_err(|source| CheckpointError::Unreadable { path: p, source })
        };
        let dir = if path.join(MANIFEST_FILE).exists() {
            path.to_path_buf()
        } else if path.join(LATEST_FILE).exists() {
            let name = read(path.join(LATEST_FILE))?;
            path.join(String::from_utf8_lossy(&name).trim())
        } else {
            return Err(CheckpointError::NotACheckpoint {
                path: path.to_path_buf(),
            });
        };
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest: Manifest =
            serde_json::from_slice(&read(manifest_path.clone())?).map_err(|source| {
                CheckpointError::BadManifest {
                    path: manifest_path.clone(),
                    source,
                }
            })?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(CheckpointError::UnknownFormat {
                path: manifest_path,
                found: format!("{:?} version {}", manifest.format, manifest.version),
                expected: format!("{FORMAT:?} version {VERSION}"),
            });
        }
        for f in &manifest.files {
            let path = dir.join(&f.file);
            if !path.exists() {
                return Err(CheckpointError::MissingFile {
                    dir,
                    file: f.file.clone(),
                });
            }
            let bytes = read(path.clone())?;
            let (len, crc) = (bytes.len() as u64, crc32fast::hash(&bytes));
            if len != f.bytes || crc != f.crc32 {
                return Err(CheckpointError::Corrupt {
                    path,
                    bytes: len,
                    crc,
                    expected_bytes: f.bytes,
                    expected_crc: f.crc32,
                });
            }
        }
        Ok(Self { dir, manifest })
    }

    /// The newest checkpoint under the folder of checkpoints `root` that opens and
    /// verifies, other than `except` (one already found damaged).
    pub fn newest_intact(root: &Path, except: Option<&Path>) -> Option<Self> {
        let steps = step_folders(root).ok()?;
        steps
            .iter()
            .rev()
            .filter(|dir| Some(dir.as_path()) != except)
            .find_map(|dir| Self::open(dir).ok())
    }

    /// For each prefix (`master`, an optimizer slot), unit `i`'s elements
    /// `wanted[i] = (start, len)` in fp32, gathered from whichever shard files hold them;
    /// elements past the unit's end (padding) are 0. Reads each shard file once.
    pub fn read_ranges(
        &self,
        prefixes: &[String],
        wanted: &[(i64, i64)],
    ) -> Result<Vec<Vec<Tensor>>> {
        let out: Vec<Vec<Tensor>> = prefixes
            .iter()
            .map(|_| {
                wanted
                    .iter()
                    .map(|&(_, len)| Tensor::zeros([len], (Kind::Float, tch::Device::Cpu)))
                    .collect()
            })
            .collect();
        for shard in &self.manifest.shards {
            let overlaps: Vec<(usize, i64, i64, i64)> = shard
                .ranges
                .iter()
                .zip(wanted)
                .enumerate()
                .filter_map(|(i, (&(a, n), &(s, len)))| {
                    let (lo, hi) = (a.max(s), (a + n).min(s + len));
                    (hi > lo).then_some((i, lo - a, lo - s, hi - lo))
                })
                .collect();
            if overlaps.is_empty() {
                continue;
            }
            let path = self.dir.join(&shard.file);
            // Memory-mapped: only the overlapping elements are read.
            let file = SafetensorsFile::open(&path)?;
            for (p, prefix) in prefixes.iter().enumerate() {
                for &(i, from, to, n) in &overlaps {
                    let key = format!("{prefix}.{i}");
                    let kind = file.info(&key)?.kind()?;
                    let src = file.read_range(&key, from, n, kind, tch::Device::Cpu)?;
                    tch::no_grad(|| out[p][i].narrow(0, to, n).copy_(&src));
                }
            }
        }
        Ok(out)
    }

    /// The whole fp32 weights by Hugging Face name (for `convert`).
    pub fn consolidated(&self) -> Result<Vec<(String, Tensor)>> {
        let wanted: Vec<(i64, i64)> = self.manifest.units.iter().map(|u| (0, u.numel)).collect();
        let flat = self
            .read_ranges(&["master".to_string()], &wanted)?
            .remove(0);
        let mut named = Vec::new();
        for (unit, flat) in self.manifest.units.iter().zip(flat) {
            for p in &unit.params {
                named.push((
                    p.name.clone(),
                    flat.narrow(0, p.offset, p.numel).view(p.shape.as_slice()),
                ));
            }
        }
        Ok(named)
    }
}

impl Checkpoint {
    /// Unit `i`'s unpadded fp32 master elements, read from the memory-mapped shard files
    /// that hold them (only those bytes are touched).
    pub fn master_unit(&self, i: usize, files: &[SafetensorsFile]) -> Result<Tensor> {
        let unit = &self.manifest.units[i];
        let out = Tensor::zeros([unit.numel], (Kind::Float, Device::Cpu));
        for (shard, file) in self.manifest.shards.iter().zip(files) {
            let (start, len) = shard.ranges[i];
            let len = len.min(unit.numel - start);
            if len > 0 {
                let part =
                    file.read_range(&format!("master.{i}"), 0, len, Kind::Float, Device::Cpu)?;
                tch::no_grad(|| out.narrow(0, start, len).copy_(&part));
            }
        }
        Ok(out)
    }

    /// Writes the checkpoint's fp32 masters as a Hugging Face folder in `kind`, one unit
    /// in memory at a time (what `rpo-shard convert` does).
    pub fn save_hf(&self, dir: &Path, kind: Kind, max_shard_bytes: u64) -> Result<()> {
        let config: LlamaConfig = serde_json::from_value(self.manifest.model_config.clone())
            .map_err(|source| ZeroError::CheckpointConfig {
                dir: self.dir.clone(),
                source,
            })?;
        let specs: Vec<(String, Vec<i64>)> = self
            .manifest
            .units
            .iter()
            .flat_map(|u| u.params.iter().map(|p| (p.name.clone(), p.shape.clone())))
            .collect();
        let files = self
            .manifest
            .shards
            .iter()
            .map(|s| SafetensorsFile::open(&self.dir.join(&s.file)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut writer = HfWriter::create(dir, &specs, &config, kind, max_shard_bytes)?;
        for (i, unit) in self.manifest.units.iter().enumerate() {
            let flat = self.master_unit(i, &files)?;
            for p in &unit.params {
                writer.write(
                    &p.name,
                    &flat.narrow(0, p.offset, p.numel).view(p.shape.as_slice()),
                )?;
            }
        }
        Ok(writer.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_tells_the_kind_of_failure() {
        let dir = tempfile::tempdir().unwrap();
        let e = Checkpoint::open(dir.path()).err().unwrap();
        assert!(matches!(e, CheckpointError::NotACheckpoint { .. }), "{e}");
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{not json").unwrap();
        let e = Checkpoint::open(dir.path()).err().unwrap();
        assert!(matches!(e, CheckpointError::BadManifest { .. }), "{e}");
        assert!(e.to_string().contains(MANIFEST_FILE), "{e}");
    }
}

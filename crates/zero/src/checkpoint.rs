//! Training checkpoints of the sharded state.
//!
//! `<root>/step-00000042/` holds `manifest.json`, one `rank-NNNNN.safetensors` per rank
//! that owns something — its fp32 master elements and optimizer state per unit, in
//! *unpadded* unit coordinates, so any world size or stage can read them back — and the
//! files the trainer adds (the frozen reference, the tokenizer). Everything is written
//! into `.tmp-step-…`, flushed to disk and checksummed (CRC-32) in the manifest, then the
//! folder is renamed into place and named in `<root>/latest`: a crash at any point leaves
//! the previous checkpoint as the newest complete one.

use anyhow::{bail, ensure, Context, Result};
use rpo_model::safetensors_io::{write_pt_safetensors, SafetensorsFile};
use rpo_optim::Optimizer;
use rpo_storage::atomic::{sync_dir, write_bytes_atomically};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub use crate::checkpoint_error::CheckpointError;
use crate::sharded_model::ShardedModel;
use crate::stage::ZeroStage;
use rpo_comm::{all_reduce_f64s, Collective};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const LATEST_FILE: &str = "latest";
const FORMAT: &str = "rpo-shard training checkpoint";
const VERSION: u32 = 1;

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

fn crc32_of(path: &Path) -> Result<(u64, u32)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
}

impl ShardedModel {
    /// The unpadded elements `(start, len)` of unit `i` that `rank` stores: its slice in
    /// stages 1–3; in stage 0 rank 0 stores everything (all ranks hold the same).
    fn stored_range(&self, i: usize, rank: usize) -> (i64, i64) {
        let unit = &self.layout.units[i];
        if !self.options.stage.shards_optimizer() {
            return if rank == 0 { (0, unit.numel) } else { (0, 0) };
        }
        let start = rank as i64 * unit.shard;
        (start, (unit.numel - start).clamp(0, unit.shard))
    }

    fn unit_records(&self) -> Vec<UnitRecord> {
        self.layout
            .units
            .iter()
            .map(|u| UnitRecord {
                unit: u.unit.to_string(),
                numel: u.numel,
                params: u
                    .params
                    .iter()
                    .map(|p| ParamRecord {
                        name: p.name.clone(),
                        shape: p.shape.clone(),
                        offset: p.offset,
                        numel: p.numel,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Writes a checkpoint of step `step` under `root` and returns its folder. Every rank
    /// must call this. `rank0_files` adds the trainer's files to the (temporary) folder on
    /// rank 0; `keep` > 0 removes all but the newest `keep` checkpoints afterwards.
    pub fn save_checkpoint(
        &self,
        root: &Path,
        step: usize,
        optimizer: &dyn Optimizer,
        trainer: serde_json::Value,
        rank0_files: &dyn Fn(&Path) -> Result<()>,
        keep: usize,
    ) -> Result<PathBuf> {
        let comm = self.comm.as_ref();
        let (rank, world) = (comm.rank(), comm.world_size());
        let name = format!("step-{step:08}");
        let (tmp, done) = (root.join(format!(".tmp-{name}")), root.join(&name));
        // Every stage ends with all ranks agreeing on whether it worked, so a rank that
        // cannot write (a full or missing disk) fails the checkpoint on every rank alike
        // and nobody is left waiting in the next collective.
        let prepared = if rank == 0 {
            (|| -> Result<()> {
                std::fs::create_dir_all(root)
                    .with_context(|| format!("cannot create {}", root.display()))?;
                if tmp.exists() {
                    std::fs::remove_dir_all(&tmp)?;
                }
                std::fs::create_dir(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))
            })()
        } else {
            Ok(())
        };
        agree(comm, prepared, &format!("preparing checkpoint {name}"))?;

        // This rank's master elements and optimizer state, unpadded.
        let state: HashMap<String, Tensor> = optimizer.state_tensors().into_iter().collect();
        let mut slots: Vec<String> = state
            .keys()
            .filter_map(|k| k.strip_suffix(".0").map(str::to_string))
            .collect();
        slots.sort();
        let master = self.master.borrow();
        let mut named = Vec::new();
        for (i, m) in master.iter().enumerate() {
            let (_, len) = self.stored_range(i, rank);
            if len == 0 {
                continue;
            }
            named.push((format!("master.{i}"), m.narrow(0, 0, len)));
            for slot in &slots {
                let t = &state[&format!("{slot}.{i}")];
                named.push((format!("{slot}.{i}"), t.narrow(0, 0, len)));
            }
        }
        let file = format!("rank-{rank:05}.safetensors");
        // [1, bytes, crc] for a written shard, [0, 0, 0] for none, [-1, 0, 0] for a failure.
        let mut own_error = None;
        let mine = if named.is_empty() {
            [0i64, 0, 0]
        } else {
            // Every rank creates the folder it writes into: on node-local disks rank 0's
            // is not this rank's.
            let written = (|| -> Result<(u64, u32)> {
                std::fs::create_dir_all(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let path = tmp.join(&file);
                write_pt_safetensors(&path, &named)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                File::open(&path)?.sync_all()?;
                crc32_of(&path)
            })();
            match written {
                Ok((bytes, crc)) => [1, bytes as i64, crc as i64],
                Err(e) => {
                    own_error = Some(e);
                    [-1, 0, 0]
                }
            }
        };
        let records = comm.all_gather(
            &Tensor::from_slice(&mine)
                .view([1, 3])
                .to_device(comm.device()),
        )?;
        let records = records.to_device(tch::Device::Cpu);
        let failed: Vec<usize> = (0..world)
            .filter(|&r| records.int64_value(&[r as i64, 0]) < 0)
            .collect();
        if let Some(e) = own_error {
            return Err(e.context(format!("checkpoint {name}: rank {rank}'s shard")));
        }
        if !failed.is_empty() {
            bail!("checkpoint {name}: rank(s) {failed:?} could not write their shards (their logs say why)");
        }

        let finished = if rank == 0 {
            self.finish_checkpoint(
                root,
                &tmp,
                &done,
                &name,
                step,
                optimizer,
                trainer,
                rank0_files,
                keep,
                &records,
                slots,
            )
        } else {
            Ok(())
        };
        agree(comm, finished, &format!("writing checkpoint {name}"))?;
        Ok(done)
    }

    /// Rank 0's part of a checkpoint once every shard is written: the trainer's files,
    /// the manifest, the rename into place, `latest` and pruning.
    #[allow(clippy::too_many_arguments)]
    fn finish_checkpoint(
        &self,
        root: &Path,
        tmp: &Path,
        done: &Path,
        name: &str,
        step: usize,
        optimizer: &dyn Optimizer,
        trainer: serde_json::Value,
        rank0_files: &dyn Fn(&Path) -> Result<()>,
        keep: usize,
        records: &Tensor,
        slots: Vec<String>,
    ) -> Result<()> {
        let world = self.comm.world_size();
        let units = self.layout.units.len();
        rank0_files(tmp)?;
        let mut shards = Vec::new();
        let mut files = Vec::new();
        for r in 0..world {
            if records.int64_value(&[r as i64, 0]) == 0 {
                continue;
            }
            let file = format!("rank-{r:05}.safetensors");
            files.push(FileRecord {
                file: file.clone(),
                bytes: records.int64_value(&[r as i64, 1]) as u64,
                crc32: records.int64_value(&[r as i64, 2]) as u32,
            });
            shards.push(ShardRecord {
                file,
                rank: r,
                ranges: (0..units).map(|i| self.stored_range(i, r)).collect(),
            });
        }
        for entry in std::fs::read_dir(tmp)? {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().to_string();
            if !file.starts_with("rank-") {
                let (bytes, crc32) = crc32_of(&entry.path())?;
                File::open(entry.path())?.sync_all()?;
                files.push(FileRecord { file, bytes, crc32 });
            }
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            step,
            world_size: world,
            zero_stage: self.options.stage,
            units: self.unit_records(),
            optimizer_slots: slots,
            optimizer_steps: optimizer.steps(),
            shards,
            files,
            model_config: serde_json::to_value(self.config())?,
            trainer,
        };
        write_bytes_atomically(
            &tmp.join(MANIFEST_FILE),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        sync_dir(tmp)?;
        // Test builds only: the crash the format must survive, every file written and the
        // folder not yet renamed into place.
        rpo_storage::failpoint::hit(&format!("checkpoint-before-rename@{step}"), tmp);
        if done.exists() {
            std::fs::remove_dir_all(done)?;
        }
        std::fs::rename(tmp, done)
            .with_context(|| format!("cannot rename {} into place", tmp.display()))?;
        write_bytes_atomically(&root.join(LATEST_FILE), name.as_bytes())?;
        sync_dir(root)?;
        prune(root, keep, step)?;
        tracing::info!(step, dir = %done.display(), "checkpoint written");
        Ok(())
    }

    /// Fails, naming both sides, if `checkpoint` was written for a model of other shapes.
    pub fn check_fits(&self, checkpoint: &Checkpoint) -> Result<()> {
        let m = &checkpoint.manifest;
        let here = self.unit_records();
        let mismatch = |detail: String| CheckpointError::ModelMismatch {
            dir: checkpoint.dir.clone(),
            detail,
        };
        if m.units.len() != here.len() {
            return Err(mismatch(format!(
                "a model of {} units; this one has {}",
                m.units.len(),
                here.len()
            ))
            .into());
        }
        for (theirs, ours) in m.units.iter().zip(&here) {
            if theirs != ours {
                return Err(mismatch(format!(
                    "its unit {} ({} parameters) differs from this model's {} ({} parameters)",
                    theirs.unit, theirs.numel, ours.unit, ours.numel
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Replaces the master weights (and so the parameters) and the optimizer state with
    /// a checkpoint's, re-partitioned for this world size and stage. Every rank must call
    /// this.
    pub fn load_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        optimizer: &mut dyn Optimizer,
    ) -> Result<()> {
        self.check_fits(checkpoint)?;
        let m = &checkpoint.manifest;
        let rank = self.comm.rank();
        let wanted: Vec<(i64, i64)> = self
            .layout
            .units
            .iter()
            .map(|u| {
                if self.options.stage.shards_optimizer() {
                    u.owned(rank)
                } else {
                    (0, u.padded)
                }
            })
            .collect();
        let mut prefixes = vec!["master".to_string()];
        if m.optimizer_steps > 0 {
            prefixes.extend(m.optimizer_slots.iter().cloned());
        }
        let mut read = checkpoint.read_ranges(&prefixes, &wanted)?;
        let masters = read.remove(0);
        tch::no_grad(|| {
            for (dst, src) in self.master.borrow().iter().zip(&masters) {
                dst.shallow_clone().copy_(src);
            }
        });
        self.publish()?;
        if m.optimizer_steps > 0 {
            let mut named = vec![("step".to_string(), Tensor::from(m.optimizer_steps))];
            for (slot, tensors) in m.optimizer_slots.iter().zip(read) {
                for (i, t) in tensors.into_iter().enumerate() {
                    named.push((format!("{slot}.{i}"), t.to_device(self.comm.device())));
                }
            }
            optimizer
                .load_state_tensors(&named)
                .with_context(|| format!("optimizer state of {}", checkpoint.dir.display()))?;
        }
        Ok(())
    }
}

/// Every rank's `local` outcome, agreed: `Ok` only if it worked on every rank. A rank
/// that failed returns its own error; the others name the ranks that failed.
fn agree(comm: &dyn Collective, local: Result<()>, what: &str) -> Result<()> {
    let mut failed = vec![0.0; comm.world_size()];
    failed[comm.rank()] = if local.is_err() { 1.0 } else { 0.0 };
    all_reduce_f64s(comm, &mut failed)?;
    local.with_context(|| format!("{what} on rank {}", comm.rank()))?;
    let ranks: Vec<usize> = (0..failed.len()).filter(|&r| failed[r] > 0.0).collect();
    ensure!(
        ranks.is_empty(),
        "{what} failed on rank(s) {ranks:?} (their logs say why)"
    );
    Ok(())
}

/// The `step-*` folders under `root`, oldest first.
pub fn step_folders(root: &Path) -> Result<Vec<PathBuf>> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
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
fn prune(root: &Path, keep: usize, step: usize) -> Result<()> {
    let current = root.join(format!("step-{step:08}"));
    let steps: Vec<PathBuf> = step_folders(root)?
        .into_iter()
        .filter(|p| *p <= current)
        .collect();
    if keep > 0 && steps.len() > keep {
        for old in &steps[..steps.len() - keep] {
            std::fs::remove_dir_all(old)
                .with_context(|| format!("cannot remove the old checkpoint {}", old.display()))?;
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
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
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

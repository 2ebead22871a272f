//! The policy's training checkpoints ([`crate::checkpoint`] is the format): every rank
//! writes its fp32 master elements and optimizer state, rank 0 the manifest, and all
//! agree on the outcome; loading re-partitions a checkpoint for this world size and stage.

use rpo_comm::{all_reduce_f64s, Collective};
use rpo_model::safetensors_io::write_pt_safetensors;
use rpo_optim::Optimizer;
use rpo_storage::atomic::{sync_dir, write_bytes_atomically};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::Tensor;

use super::ShardedModel;
use crate::checkpoint::{
    crc32_of, prune, Checkpoint, CheckpointError, FileRecord, Manifest, ParamRecord, ShardRecord,
    UnitRecord, FORMAT, LATEST_FILE, MANIFEST_FILE, VERSION,
};
use crate::error::{Result, ZeroError};

/// What the trainer's part of a checkpoint may fail with: any error, carried whole.
type CallerError = Box<dyn std::error::Error + Send + Sync>;

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
    /// rank 0 (its error becomes [`ZeroError::Caller`]); `keep` > 0 removes all but the
    /// newest `keep` checkpoints afterwards.
    pub fn save_checkpoint<E: Into<CallerError>>(
        &self,
        root: &Path,
        step: usize,
        optimizer: &dyn Optimizer,
        trainer: serde_json::Value,
        rank0_files: &dyn Fn(&Path) -> std::result::Result<(), E>,
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
                    .map_err(|e| ZeroError::io("cannot create", root, e))?;
                if tmp.exists() {
                    std::fs::remove_dir_all(&tmp)?;
                }
                std::fs::create_dir(&tmp).map_err(|e| ZeroError::io("cannot create", &tmp, e))
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
                    .map_err(|e| ZeroError::io("cannot create", &tmp, e))?;
                let path = tmp.join(&file);
                write_pt_safetensors(&path, &named).map_err(|e| ZeroError::WriteShard {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
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
            return Err(ZeroError::Shard {
                name,
                rank,
                source: Box::new(e),
            });
        }
        if !failed.is_empty() {
            return Err(ZeroError::ShardsFailed {
                name,
                ranks: failed,
            });
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
    fn finish_checkpoint<E: Into<CallerError>>(
        &self,
        root: &Path,
        tmp: &Path,
        done: &Path,
        name: &str,
        step: usize,
        optimizer: &dyn Optimizer,
        trainer: serde_json::Value,
        rank0_files: &dyn Fn(&Path) -> std::result::Result<(), E>,
        keep: usize,
        records: &Tensor,
        slots: Vec<String>,
    ) -> Result<()> {
        let world = self.comm.world_size();
        let units = self.layout.units.len();
        rank0_files(tmp).map_err(|e| ZeroError::Caller(e.into()))?;
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
        std::fs::rename(tmp, done).map_err(|source| ZeroError::Rename {
            from: tmp.to_path_buf(),
            source,
        })?;
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
                .map_err(|source| ZeroError::OptimizerState {
                    dir: checkpoint.dir.clone(),
                    source,
                })?;
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
    local.map_err(|e| ZeroError::OnRank {
        what: what.to_string(),
        rank: comm.rank(),
        source: Box::new(e),
    })?;
    let ranks: Vec<usize> = (0..failed.len()).filter(|&r| failed[r] > 0.0).collect();
    if !ranks.is_empty() {
        return Err(ZeroError::FailedOnRanks {
            what: what.to_string(),
            ranks,
        });
    }
    Ok(())
}

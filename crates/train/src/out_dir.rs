//! The run's folders, guarded before any work: one run at a time (a lock file), a fresh
//! run never writes over another run's checkpoints or metrics, and every rank must see
//! the same checkpoint folder (checked with a probe file).

use fs4::fs_std::FileExt;
use rpo_comm::{all_gather_varlen, all_reduce_f64s, Collective};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

pub const LOCK_FILE: &str = ".rpo-shard.lock";
const PROBE_FILE: &str = ".rpo-shard-probe";

/// Held for the whole run by rank 0: the locks of `out_dir` (and of `checkpoint.dir`
/// when it lies elsewhere), released when the process ends, however it ends.
pub struct OutDirLock {
    _files: Vec<File>,
}

/// This machine's name, for messages about ranks on several nodes.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into())
}

/// Rank 0, before any work: creates and locks `out_dir` (and the checkpoint folder),
/// then refuses a fresh run (`resuming` false) where a run already left checkpoints or
/// metrics — unless `overwrite`, which removes them first.
pub fn claim(cfg: &TrainConfig, resuming: bool, overwrite: bool) -> Result<OutDirLock> {
    let root = cfg.checkpoint_root();
    let mut dirs = vec![cfg.out_dir.clone()];
    if !root.starts_with(&cfg.out_dir) {
        dirs.push(root.clone());
    }
    let mut files = Vec::new();
    for dir in &dirs {
        files.push(lock(dir)?);
    }
    let found = earlier_run(cfg)?;
    if !found.is_empty() && !resuming {
        if !overwrite {
            return Err(TrainError::OutDirTaken {
                dir: cfg.out_dir.clone(),
                found,
            });
        }
        for path in &found {
            tracing::warn!(path = %path.display(), "--overwrite: removing the earlier run's file");
            if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            }
            .map_err(|e| TrainError::io("--overwrite: cannot remove", path, e))?;
        }
        let summary = cfg.out_dir.join("summary.json");
        if summary.is_file() {
            std::fs::remove_file(&summary)?;
        }
        // The earlier run's frozen reference, saved once beside its checkpoints.
        let references = std::fs::read_dir(&root).into_iter().flatten();
        for entry in references {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("reference-") || name == ".tmp-reference" {
                std::fs::remove_dir_all(&path)
                    .map_err(|e| TrainError::io("--overwrite: cannot remove", &path, e))?;
            }
        }
    }
    Ok(OutDirLock { _files: files })
}

/// Creates `dir` and takes its lock file, or names the run that holds it.
fn lock(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io("cannot create", dir, e))?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| TrainError::io("cannot open the lock file", &path, e))?;
    if !file.try_lock_exclusive().unwrap_or(false) {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(TrainError::OutDirInUse {
            dir: dir.to_path_buf(),
            holder: holder.trim().to_string(),
            lock: path,
        });
    }
    file.set_len(0)?;
    write!(file, "pid {} on {}", std::process::id(), hostname())?;
    file.flush()?;
    Ok(file)
}

/// What an earlier run left that a fresh run would write over: metrics, checkpoints.
fn earlier_run(cfg: &TrainConfig) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let metrics = cfg.out_dir.join("metrics.jsonl");
    if metrics.exists() {
        found.push(metrics);
    }
    let root = cfg.checkpoint_root();
    if root.is_dir() {
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("step-") || name.starts_with(".tmp-step-") || name == "latest" {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every rank must call this: fails on every rank, naming the ranks and hosts, unless all
/// ranks see the file rank 0 writes into the checkpoint folder (one folder on a shared
/// file system, not node-local disks that merely share a path).
pub fn check_shared(cfg: &TrainConfig, world: &dyn Collective) -> Result<()> {
    if world.world_size() == 1 {
        return Ok(());
    }
    let root = cfg.checkpoint_root();
    let probe = root.join(PROBE_FILE);
    // A token no earlier run left: rank 0 shares it (exact in an f64: < 2^48).
    let mut token = [0.0];
    if world.rank() == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let t = ((nanos as u64) ^ ((std::process::id() as u64) << 20)) & ((1 << 48) - 1);
        std::fs::create_dir_all(&root).map_err(|e| TrainError::io("cannot create", &root, e))?;
        std::fs::write(&probe, t.to_string())
            .map_err(|e| TrainError::io("cannot write", &probe, e))?;
        token[0] = t as f64;
    }
    all_reduce_f64s(world, &mut token)?;
    let seen = std::fs::read_to_string(&probe).ok();
    let mut blind = vec![0.0; world.world_size()];
    if seen.as_deref().map(str::trim) != Some((token[0] as u64).to_string().as_str()) {
        blind[world.rank()] = 1.0;
    }
    all_reduce_f64s(world, &mut blind)?;
    if world.rank() == 0 {
        let _ = std::fs::remove_file(&probe);
    }
    if blind.iter().all(|&b| b == 0.0) {
        return Ok(());
    }
    let hosts = all_hostnames(world)?;
    let ranks: Vec<String> = (0..blind.len())
        .filter(|&r| blind[r] > 0.0)
        .map(|r| format!("rank {r} on {}", hosts[r]))
        .collect();
    Err(TrainError::NotShared {
        dir: root,
        blind: ranks,
        host: hosts[0].clone(),
    })
}

/// Every rank's host name, in rank order (every rank must call this).
fn all_hostnames(world: &dyn Collective) -> Result<Vec<String>> {
    let bytes: Vec<i64> = hostname().bytes().map(i64::from).collect();
    let t = Tensor::from_slice(&bytes).to_device(world.device());
    let (all, counts) = all_gather_varlen(world, &t)?;
    let all = Vec::<i64>::try_from(all.to_device(tch::Device::Cpu).to_kind(Kind::Int64))?;
    let mut names = Vec::new();
    let mut at = 0;
    for n in counts {
        let n = n as usize;
        names.push(all[at..at + n].iter().map(|&b| b as u8 as char).collect());
        at += n;
    }
    Ok(names)
}

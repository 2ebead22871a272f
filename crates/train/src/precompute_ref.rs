//! `rpo-shard precompute-ref`: the reference model run once over every sequence training
//! will ask it about, into the cache `reference.mode = "precomputed"` reads
//! ([`crate::reference_cache`]).
//!
//! Which sequences: the preference phase's `train.steps × accumulation` global
//! micro-batches, drawn as the trainer draws them ([`MicroBatches`]) and sliced per rank
//! as training slices them (KTO's mismatched KL sequences are built per rank slice), then
//! the held-out pairs of reward accuracy in its chunks. Each rank runs the reference on
//! its own slices, in the same batches training would, so the values equal the live
//! reference's bit for bit when the ranks and micro-batch size are training's.
//!
//! Work is split by first occurrence: a sequence belongs to the rank whose call first
//! meets it, and a rank runs only the calls that meet sequences of its own. Each rank
//! writes its part (`<cache>.part-R-of-W`, atomically) and rank 0 merges the parts into
//! the cache (atomically) and removes them. An interrupted run leaves only part files
//! and temporary files, which training never accepts; running again reuses every
//! finished part that matches (same rank count, sequences and reference) and redoes the rest.

use rpo_comm::{all_gather_counts, all_reduce_f64s, Collective};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::Device;

use crate::config::{ReferenceMode, TrainConfig};
use crate::data_source::RunData;
use crate::error::{Result, TrainError};
use crate::objective::Objective;
use crate::progress::progress_bar;
use crate::reference::Reference;
use crate::reference_cache::{
    keys_fingerprint, reference_fingerprint, row_keys, temp_prefix, write_cache, CacheHeader,
    ReferenceCache,
};
pub use crate::reference_plan::run_keys;
use crate::reference_plan::{for_each_call, Plan};
use crate::setup::{build_policy, compute_kind, load_reference};

/// What `precompute-ref` did, printed as one JSON line by rank 0.
#[derive(Debug, Serialize)]
pub struct PrecomputeReport {
    pub out: PathBuf,
    /// Distinct sequences in the cache.
    pub sequences: usize,
    pub data_fingerprint: String,
    pub reference_fingerprint: String,
    pub reference: String,
    /// "written", or "up to date" when a matching cache was already in place.
    pub status: &'static str,
    /// Ranks whose part from an interrupted run was reused.
    pub reused_parts: usize,
    /// Reference forwards run, over all ranks.
    pub forwards: usize,
    pub seconds: f64,
}

/// Rank `rank`'s part of the cache `out`.
fn part_path(out: &Path, rank: usize, ranks: usize) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".part-{rank}-of-{ranks}"));
    out.with_file_name(name)
}

/// Whether `value` holds on every rank.
fn everywhere(world: &dyn Collective, value: bool) -> Result<bool> {
    let mut v = [value as u8 as f64];
    all_reduce_f64s(world, &mut v)?;
    Ok(v[0] == world.world_size() as f64)
}

fn sum(world: &dyn Collective, value: usize) -> Result<usize> {
    let mut v = [value as f64];
    all_reduce_f64s(world, &mut v)?;
    Ok(v[0] as usize)
}

fn describe_reference(cfg: &TrainConfig) -> String {
    let what = match (&cfg.reference.path, &cfg.model.path) {
        (Some(p), _) => format!("reference.path {}", p.display()),
        (None, Some(p)) => format!("the initial policy from model.path {}", p.display()),
        (None, None) => format!(
            "the initial policy (model.preset {:?}, seed {})",
            cfg.model.preset.as_deref().unwrap_or(""),
            cfg.seed
        ),
    };
    format!("{what}, dtype {}", cfg.model.dtype)
}

/// Computes `cfg`'s reference log-probs on every rank of `world` (its reference placed as
/// `mode`: "live", "sharded" or "offload") and writes the cache to `out`. Every rank must
/// call this.
pub fn precompute_reference(
    cfg: &TrainConfig,
    world: &dyn Collective,
    out: &Path,
    mode: ReferenceMode,
) -> Result<PrecomputeReport> {
    let started = Instant::now();
    let objective = Objective::from_config(&cfg.loss)?;
    if !objective.needs_reference() {
        bail_config!(
            "loss.name",
            "loss.name = \"{}\" uses no reference model: there is nothing to precompute",
            cfg.loss.name
        );
    }
    ensure!(
        mode != ReferenceMode::Precomputed,
        Invalid,
        "--mode \"{mode}\": the reference runs \"live\", \"sharded\" or \"offload\""
    );
    cfg.check_reference_precomputable()?;
    let (rank, ranks) = (world.rank(), world.world_size());
    cfg.validate_world(ranks)?;
    let device = world.device();
    let kind = compute_kind(cfg, device)?;
    let data = RunData::load(cfg)?;
    let plan = Plan::new(cfg, objective, &data, ranks, rank)?;
    let data_fingerprint = keys_fingerprint(&plan.keys);
    // Without reference.path the reference is the initial policy.
    let policy = match cfg.reference.path {
        None => Some(build_policy(cfg, &data, world, kind)?.0),
        Some(_) => None,
    };
    let reference_fp = reference_fingerprint(cfg, policy.as_ref(), kind)?;
    let mut report = PrecomputeReport {
        out: out.to_path_buf(),
        sequences: plan.keys.len(),
        data_fingerprint: data_fingerprint.clone(),
        reference_fingerprint: reference_fp.clone(),
        reference: describe_reference(cfg),
        status: "up to date",
        reused_parts: 0,
        forwards: 0,
        seconds: 0.0,
    };
    tracing::info!(
        sequences = plan.keys.len(),
        own = plan.own.len(),
        forwards = plan.work.len(),
        reference = %report.reference,
        "planned the reference's work"
    );
    let current =
        ReferenceCache::open(out).is_ok_and(|c| c.check(&data_fingerprint, &reference_fp).is_ok());
    if everywhere(world, current)? {
        tracing::info!(out = %out.display(), "the reference cache is up to date");
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let mut own_keys: Vec<u64> = plan.own.iter().copied().collect();
    own_keys.sort_unstable();
    let part = part_path(out, rank, ranks);
    let reusable = ReferenceCache::open(&part).is_ok_and(|p| {
        let h = p.header();
        h.part == Some((rank, ranks))
            && h.reference_fingerprint == reference_fp
            && h.data_fingerprint == keys_fingerprint(&own_keys)
    });
    report.reused_parts = sum(world, reusable as usize)?;
    if report.reused_parts > 0 {
        tracing::info!(
            reused = report.reused_parts,
            of = ranks,
            "reusing the finished parts of an interrupted run"
        );
    }
    let mut forwards = 0;
    if !everywhere(world, reusable)? {
        let chunk = cfg.zero.logits_chunk_tokens as i64;
        let reference = match &policy {
            Some(p) => Reference::copy_of(p, mode)?,
            None => load_reference(cfg, mode, world, kind)?
                .ok_or_else(|| TrainError::config("reference.path", "reference.path"))?,
        };
        drop(policy);
        let mut values = HashMap::with_capacity(plan.own.len());
        // A sharded reference gathers each unit from every rank: all ranks run as many
        // forwards as the busiest one, the others repeating a call whose result is dropped.
        let mine = if reusable { 0 } else { plan.work.len() };
        let rounds = if mode == ReferenceMode::Sharded {
            let all = all_gather_counts(world, &[mine as i64])?;
            all.iter().map(|c| c[0] as usize).max().unwrap_or(0)
        } else {
            mine
        };
        let bar = if rank == 0 {
            progress_bar(rounds as u64, "ref")
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut logged = Instant::now();
        let mut step = |forwards: &mut usize| {
            *forwards += 1;
            bar.inc(1);
            if rank == 0 && bar.is_hidden() && logged.elapsed() >= Duration::from_secs(10) {
                logged = Instant::now();
                tracing::info!(done = *forwards, of = rounds, "reference forwards");
            }
        };
        tch::no_grad(|| -> Result<()> {
            if mine > 0 {
                for_each_call(
                    cfg,
                    objective,
                    &data,
                    ranks,
                    Some(rank),
                    device,
                    |call, seqs| {
                        if !plan.work.contains(&(call.item, call.index)) {
                            return Ok(());
                        }
                        let logps = Vec::<f64>::try_from(
                            reference
                                .logps(&seqs, chunk)?
                                .to_kind(tch::Kind::Double)
                                .to_device(Device::Cpu),
                        )?;
                        for (key, value) in row_keys(&seqs.sequences())?.into_iter().zip(logps) {
                            if plan.own.contains(&key) {
                                values.entry(key).or_insert(value);
                            }
                        }
                        step(&mut forwards);
                        Ok(())
                    },
                )?;
            }
            if forwards < rounds {
                let filler = plan
                    .filler
                    .as_ref()
                    .ok_or_else(|| TrainError::Invalid("a run with no reference calls".into()))?;
                let filler = filler.to_device(device);
                while forwards < rounds {
                    let _dropped = reference.logps(&filler, chunk)?;
                    step(&mut forwards);
                }
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        if !reusable {
            let own_values = own_keys
                .iter()
                .map(|k| values.get(k).copied())
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| {
                    TrainError::Internal("a sequence of this rank was not computed".into())
                })?;
            let header = CacheHeader {
                count: 0,
                data_fingerprint: String::new(),
                reference_fingerprint: reference_fp.clone(),
                reference: report.reference.clone(),
                part: Some((rank, ranks)),
            };
            let failpoint = format!("precompute-ref-part@{rank}");
            write_cache(&part, header, &own_keys, &own_values, &failpoint)?;
        }
    }
    report.forwards = sum(world, if reusable { 0 } else { forwards })?;
    world.barrier()?;
    if rank == 0 {
        merge_parts(out, ranks, &plan.keys, &reference_fp, &report.reference)?;
    }
    // The others return once the cache is in place.
    world.barrier()?;
    report.status = "written";
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(out = %out.display(), sequences = report.sequences, forwards = report.forwards, seconds = report.seconds, "reference cache written");
    Ok(report)
}

/// Rank 0: the parts into one cache at `out`; then the parts and any temporary files of
/// earlier interrupted runs are removed.
fn merge_parts(
    out: &Path,
    ranks: usize,
    keys: &[u64],
    reference_fp: &str,
    reference: &str,
) -> Result<()> {
    let mut entries = Vec::with_capacity(keys.len());
    for r in 0..ranks {
        let part = ReferenceCache::open(&part_path(out, r, ranks))?;
        if !(part.header().part == Some((r, ranks))
            && part.header().reference_fingerprint == reference_fp)
        {
            return Err(TrainError::ForeignPart {
                path: part.path().to_path_buf(),
                rank: r,
            });
        }
        entries.extend(part.entries());
    }
    entries.sort_unstable_by_key(|e| e.0);
    let (merged, values): (Vec<u64>, Vec<f64>) = entries.into_iter().unzip();
    ensure!(
        merged == keys,
        Internal,
        "the {} ranks' parts hold {} sequences, the run asks about {}",
        ranks,
        merged.len(),
        keys.len()
    );
    let header = CacheHeader {
        count: 0,
        data_fingerprint: String::new(),
        reference_fingerprint: reference_fp.to_string(),
        reference: reference.to_string(),
        part: None,
    };
    write_cache(
        out,
        header,
        &merged,
        &values,
        "precompute-ref-before-rename",
    )?;
    for r in 0..ranks {
        std::fs::remove_file(part_path(out, r, ranks)).ok();
    }
    // Parts and caches of interrupted runs were being written under this prefix.
    let prefix = temp_prefix(out);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".partial") {
            std::fs::remove_file(entry.path()).ok();
        }
    }
    Ok(())
}

//! What a training checkpoint holds beyond the sharded state (`rpo_zero::checkpoint`):
//! where the trainer was (phase, step within it, data position), the evaluations so far
//! and the resolved config; when the reference is a frozen copy of the policy (which a
//! resumed run could not rebuild), which reference folder it is: the reference is written
//! once per run, next to the checkpoints (`reference-<crc32>/`), and every checkpoint's
//! manifest names it with its checksum; and the tokenizer, so `rpo-shard convert` can
//! write a complete Hugging Face folder.

use anyhow::{ensure, Context, Result};
use rpo_comm::Collective;
use rpo_data::sampler::SamplerPosition;
use rpo_model::LlamaConfig;
use rpo_optim::Optimizer;
use rpo_zero::{Checkpoint, ShardedModel};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Kind;

use crate::config::TrainConfig;
use crate::data_source::resolved_special_tokens;
use crate::evaluate::EvalReport;
use crate::reference::Reference;
use rpo_data::write_tokenizer_folder;

pub const REFERENCE_FILE: &str = "reference.safetensors";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    /// "sft" or the preference objective's name.
    pub phase: String,
    /// Optimizer steps of `phase` done.
    pub phase_step: usize,
    /// Where the data sampler continues.
    pub sampler_epoch: u64,
    pub sampler_batch: usize,
    /// Examples per global micro-batch (micro_batch_size × ranks): the sampler's position
    /// means the same examples only at the same value.
    pub global_micro_batch: usize,
    pub evals: Vec<EvalReport>,
    /// Checkpoints written before the reference was saved once per run hold it inside
    /// (`reference.safetensors`); still read when resuming them.
    pub reference_saved: bool,
    /// The frozen copy of the policy, written once per run next to the checkpoints.
    #[serde(default)]
    pub reference: Option<SavedReference>,
}

/// A reference folder (`config.json` + `model.safetensors` in the compute dtype) under
/// the checkpoint root, and its weights file's size and CRC-32, which also name it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedReference {
    pub folder: String,
    pub bytes: u64,
    pub crc32: u32,
}

fn weights_checksum(folder: &Path) -> Result<(u64, u32)> {
    let file = folder.join(rpo_model::hf_io::WEIGHTS_FILE);
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
}

/// Writes the frozen reference (a copy of the policy) once for the whole run under the
/// checkpoint root, unit by unit, and returns what checkpoints record of it (on rank 0;
/// `None` elsewhere). Every rank must call this.
pub fn save_reference_once(
    cfg: &TrainConfig,
    reference: &Reference,
    config: &LlamaConfig,
    main: bool,
) -> Result<Option<SavedReference>> {
    let root = cfg.checkpoint_root();
    let tmp = root.join(".tmp-reference");
    if main {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
    }
    reference.save_hf(main.then_some(tmp.as_path()), config)?;
    if !main {
        return Ok(None);
    }
    let (bytes, crc32) = weights_checksum(&tmp)?;
    let folder = format!("reference-{crc32:08x}");
    let done = root.join(&folder);
    if done.exists() {
        // The same weights from an earlier launch of this run.
        std::fs::remove_dir_all(&tmp)?;
    } else {
        std::fs::rename(&tmp, &done)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), done.display()))?;
    }
    rpo_storage::sync_dir(&root)?;
    tracing::info!(folder = %done.display(), bytes, "reference written once for the run's checkpoints");
    Ok(Some(SavedReference {
        folder,
        bytes,
        crc32,
    }))
}

impl TrainerState {
    pub fn sampler(&self) -> SamplerPosition {
        SamplerPosition {
            epoch: self.sampler_epoch,
            batch: self.sampler_batch,
        }
    }
}

/// Writes the run's tokenizer into `dir`, the model being meaningless without it:
/// tokenizer.json, tokenizer_config.json, special_tokens_map.json and
/// generation_config.json with the special tokens and chat template training used.
pub fn write_tokenizer(cfg: &TrainConfig, dir: &Path) -> Result<()> {
    let (json, files, special) = resolved_special_tokens(cfg)?;
    write_tokenizer_folder(dir, &json, &files, &special).with_context(|| {
        format!(
            "writing the tokenizer {} into {}",
            cfg.tokenizer_path(),
            dir.display()
        )
    })
}

/// Everything a phase needs to write checkpoints.
pub struct Checkpointing<'a> {
    pub cfg: &'a TrainConfig,
    /// The frozen reference, when it is a copy of the policy: written once per run, the
    /// checkpoints point at it.
    pub reference: Option<SavedReference>,
    pub evals: &'a [EvalReport],
}

impl Checkpointing<'_> {
    /// Whether global step `step` ends with a checkpoint.
    pub fn due(&self, step: usize) -> bool {
        let c = &self.cfg.checkpoint;
        let last = self.cfg.train.sft_warmup_steps + self.cfg.train.steps;
        (c.every > 0 && step % c.every == 0) || (c.at_end && step == last)
    }

    /// Every rank must call this.
    pub fn save(
        &self,
        policy: &ShardedModel,
        optimizer: &dyn Optimizer,
        step: usize,
        state: TrainerState,
    ) -> Result<()> {
        let files = |dir: &Path| -> Result<()> {
            write_tokenizer(self.cfg, dir)?;
            std::fs::write(dir.join(CONFIG_FILE), toml::to_string(self.cfg)?)?;
            Ok(())
        };
        policy.save_checkpoint(
            &self.cfg.checkpoint_root(),
            step,
            optimizer,
            serde_json::to_value(state)?,
            &files,
            self.cfg.checkpoint.keep,
        )?;
        Ok(())
    }
}

/// A checkpoint to continue from, and the trainer's state in it.
pub struct Resume {
    pub checkpoint: Checkpoint,
    pub state: TrainerState,
}

impl Resume {
    /// `path`: a checkpoint folder, a folder of checkpoints, or "latest" (this run's).
    pub fn open(path: &Path, cfg: &TrainConfig, world: usize) -> Result<Self> {
        let path = if path == Path::new("latest") {
            cfg.checkpoint_root()
        } else {
            path.to_path_buf()
        };
        let checkpoint = Checkpoint::open(&path)?;
        let state: TrainerState = serde_json::from_value(checkpoint.manifest.trainer.clone())
            .with_context(|| format!("{} holds no trainer state", checkpoint.dir.display()))?;
        let micro = cfg.train.micro_batch_size * world;
        ensure!(
            state.global_micro_batch == micro,
            "{} was written with {} examples per global micro-batch; this run has train.micro_batch_size × ranks = {micro}: \
             resume with a micro_batch_size that gives {} (the data order depends on it)",
            checkpoint.dir.display(),
            state.global_micro_batch,
            state.global_micro_batch
        );
        tracing::info!(
            dir = %checkpoint.dir.display(),
            step = checkpoint.manifest.step,
            phase = %state.phase,
            written_on = checkpoint.manifest.world_size,
            stage = %checkpoint.manifest.zero_stage,
            "resuming"
        );
        Ok(Self { checkpoint, state })
    }

    /// Global optimizer steps already done.
    pub fn step(&self) -> usize {
        self.checkpoint.manifest.step
    }

    /// The frozen reference saved with the checkpoint, placed as `reference.mode` says.
    /// Every rank must call this.
    pub fn reference(
        &self,
        cfg: &TrainConfig,
        config: &LlamaConfig,
        world: &dyn Collective,
        kind: Kind,
    ) -> Result<Option<Reference>> {
        let chunk = cfg.zero.logits_chunk_tokens as i64;
        let mode = cfg.reference.mode;
        if let Some(saved) = &self.state.reference {
            let root = self.checkpoint.dir.parent().unwrap_or(Path::new("."));
            let folder = root.join(&saved.folder);
            let (bytes, crc32) = weights_checksum(&folder).with_context(|| {
                format!(
                    "checkpoint {} uses the reference {}",
                    self.checkpoint.dir.display(),
                    folder.display()
                )
            })?;
            ensure!(
                (bytes, crc32) == (saved.bytes, saved.crc32),
                "the reference {} is corrupt: {bytes} bytes with checksum {crc32:08x}, but checkpoint {} says {} bytes with {:08x}",
                folder.display(),
                self.checkpoint.dir.display(),
                saved.bytes,
                saved.crc32
            );
            return Reference::load_hf(&folder, mode, world, kind, chunk).map(Some);
        }
        if !self.state.reference_saved {
            return Ok(None);
        }
        let file = self.checkpoint.dir.join(REFERENCE_FILE);
        Reference::load_saved(&file, config, mode, world, kind, chunk).map(Some)
    }
}

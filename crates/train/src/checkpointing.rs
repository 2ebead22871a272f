//! What a training checkpoint holds beyond the sharded state (`rpo_zero::checkpoint`):
//! where the trainer was (phase, step within it, data position), the evaluations so far
//! and the resolved config; when the reference is a frozen copy of the policy (which a
//! resumed run could not rebuild), which reference folder it is: the reference is written
//! once per run, next to the checkpoints (`reference-<crc32>/`), and every checkpoint's
//! manifest names it with its checksum; and the tokenizer, so `rpo-shard convert` can
//! write a complete Hugging Face folder.

use rpo_comm::Collective;
use rpo_data::sampler::SamplerPosition;
use rpo_model::LlamaConfig;
use rpo_optim::Optimizer;
use rpo_zero::checkpoint::{LATEST_FILE, MANIFEST_FILE};
use rpo_zero::{Checkpoint, ShardedModel};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use tch::Kind;

use crate::config::TrainConfig;
use crate::data_source::resolved_special_tokens;
use crate::error::{Result, TrainError};
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
    let bytes = std::fs::read(&file).map_err(|e| TrainError::io("cannot read", &file, e))?;
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
        std::fs::create_dir_all(&root).map_err(|e| TrainError::io("cannot create", &root, e))?;
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
        std::fs::rename(&tmp, &done).map_err(|source| TrainError::Rename {
            from: tmp.clone(),
            to: done.clone(),
            source,
        })?;
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

/// Opens `path`; when it is a folder of checkpoints whose newest is damaged or missing,
/// names the newest intact one, and with `fallback` opens that instead.
fn open_or_fallback(path: &Path, fallback: bool) -> Result<Checkpoint> {
    let failed = match Checkpoint::open(path) {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    let latest = path.join(LATEST_FILE);
    if path.join(MANIFEST_FILE).exists() || !latest.exists() {
        return Err(failed.into());
    }
    let named = std::fs::read_to_string(&latest)
        .map(|n| path.join(n.trim()))
        .ok();
    match (Checkpoint::newest_intact(path, named.as_deref()), fallback) {
        (Some(intact), true) => {
            tracing::warn!(
                damaged = %crate::error::chain(&failed),
                using = %intact.dir.display(),
                "--fallback: the newest checkpoint is damaged; resuming from the newest intact one"
            );
            Ok(intact)
        }
        (Some(intact), false) => Err(TrainError::DamagedCheckpoint {
            error: failed,
            intact: intact.dir,
            step: intact.manifest.step,
        }),
        (None, _) => Err(TrainError::NoIntactCheckpoint {
            dir: path.to_path_buf(),
            source: failed,
        }),
    }
}

/// Writes the run's tokenizer into `dir`, the model being meaningless without it:
/// tokenizer.json, tokenizer_config.json, special_tokens_map.json and
/// generation_config.json with the special tokens and chat template training used.
pub fn write_tokenizer(cfg: &TrainConfig, dir: &Path) -> Result<()> {
    let (json, files, special) = resolved_special_tokens(cfg)?;
    write_tokenizer_folder(dir, &json, &files, &special).map_err(|e| TrainError::WriteTokenizer {
        tokenizer: cfg.tokenizer_path(),
        dir: dir.to_path_buf(),
        source: Box::new(e.into()),
    })
}

/// Everything a phase needs to write checkpoints.
pub struct Checkpointing<'a> {
    pub cfg: &'a TrainConfig,
    /// The frozen reference, when it is a copy of the policy: written once per run, the
    /// checkpoints point at it.
    pub reference: Option<SavedReference>,
    pub evals: &'a [EvalReport],
    /// A failed final checkpoint, kept here so the run still writes its model and
    /// summary (each of the three must survive a failure of the others).
    pub final_failure: &'a RefCell<Option<String>>,
}

impl Checkpointing<'_> {
    /// Whether global step `step` ends with a checkpoint.
    pub fn due(&self, step: usize) -> bool {
        let c = &self.cfg.checkpoint;
        (c.every > 0 && step % c.every == 0) || (c.at_end && self.is_last(step))
    }

    /// Whether `step` is the run's last optimizer step.
    pub fn is_last(&self, step: usize) -> bool {
        step == self.cfg.train.sft_warmup_steps + self.cfg.train.steps
    }

    /// Every rank must call this.
    pub fn save(
        &self,
        policy: &ShardedModel,
        optimizer: &dyn Optimizer,
        step: usize,
        state: TrainerState,
    ) -> Result<PathBuf> {
        // rpo-zero carries this error whole (ZeroError::Caller).
        let files = |dir: &Path| -> Result<()> {
            write_tokenizer(self.cfg, dir)?;
            std::fs::write(dir.join(CONFIG_FILE), toml::to_string(self.cfg)?)?;
            Ok(())
        };
        Ok(policy.save_checkpoint(
            &self.cfg.checkpoint_root(),
            step,
            optimizer,
            serde_json::to_value(state)?,
            &files,
            self.cfg.checkpoint.keep,
        )?)
    }
}

/// A checkpoint to continue from, and the trainer's state in it.
pub struct Resume {
    pub checkpoint: Checkpoint,
    pub state: TrainerState,
}

impl Resume {
    /// `path`: a checkpoint folder, a folder of checkpoints, or "latest" (this run's).
    /// A damaged newest checkpoint in a folder of checkpoints is refused, naming the newest
    /// intact one, which `fallback` resumes from instead. A checkpoint this config cannot
    /// continue (another phase, objective, optimizer or warm-up) is refused, naming both.
    pub fn open(path: &Path, cfg: &TrainConfig, world: usize, fallback: bool) -> Result<Self> {
        let path = if path == Path::new("latest") {
            cfg.checkpoint_root()
        } else {
            path.to_path_buf()
        };
        let checkpoint = open_or_fallback(&path, fallback)?;
        let state: TrainerState = serde_json::from_value(checkpoint.manifest.trainer.clone())
            .map_err(|source| TrainError::NoTrainerState {
                dir: checkpoint.dir.clone(),
                source,
            })?;
        let micro = cfg.train.micro_batch_size * world;
        ensure!(
            state.global_micro_batch == micro,
            ResumeMismatch,
            "{} was written with {} examples per global micro-batch; this run has train.micro_batch_size × ranks = {micro}: \
             resume with a micro_batch_size that gives {} (the data order depends on it)",
            checkpoint.dir.display(),
            state.global_micro_batch,
            state.global_micro_batch
        );
        let resume = Self { checkpoint, state };
        resume.check_config(cfg)?;
        tracing::info!(
            dir = %resume.checkpoint.dir.display(),
            step = resume.checkpoint.manifest.step,
            phase = %resume.state.phase,
            written_on = resume.checkpoint.manifest.world_size,
            stage = %resume.checkpoint.manifest.zero_stage,
            "resuming"
        );
        Ok(resume)
    }

    /// Refuses a checkpoint this config would silently not continue: its phase must be
    /// one this run has, with the same warm-up length, and its optimizer this run's.
    fn check_config(&self, cfg: &TrainConfig) -> Result<()> {
        let dir = self.checkpoint.dir.display();
        let phase = self.state.phase.as_str();
        let warmup = cfg.train.sft_warmup_steps;
        let theirs = self.saved_config()?;
        let saved = |key: &str| -> Option<String> {
            let mut v = theirs.as_ref()?.get(key.split('.').next()?)?;
            for part in key.split('.').skip(1) {
                v = v.get(part)?;
            }
            Some(match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        // An SFT run (loss.name = "sft") has one phase, named like the warm-up it cannot
        // have (the config refuses both): its checkpoints are the preference phase's case.
        if phase == "sft" && cfg.loss.name != crate::config::LossName::Sft {
            ensure!(
                warmup > 0,
                ResumeMismatch,
                "{dir} was written in the SFT warm-up (step {} of it), but this run has no warm-up \
                 (train.sft_warmup_steps = 0): its weights would be ignored. Resume with \
                 train.sft_warmup_steps = {}, or start the preference phase from a saved model (model.path)",
                self.state.phase_step,
                saved("train.sft_warmup_steps").unwrap_or_else(|| "its value".into())
            );
            ensure!(
                self.state.phase_step <= warmup,
                ResumeMismatch,
                "{dir} is at step {} of the SFT warm-up, past this run's train.sft_warmup_steps = {warmup}",
                self.state.phase_step
            );
        } else {
            let ours = crate::objective::Objective::from_config(&cfg.loss)?.name();
            ensure!(
                phase == ours,
                ResumeMismatch,
                "{dir} was written training the objective {phase:?}; this run trains {ours:?} (loss.name = {:?}): \
                 resume with the checkpoint's loss, or start a new run from a saved model (model.path) for another objective",
                cfg.loss.name.as_str()
            );
            let done_warmup = self.checkpoint.manifest.step - self.state.phase_step;
            ensure!(
                done_warmup == warmup,
                ResumeMismatch,
                "{dir} was written after an SFT warm-up of {done_warmup} steps; this run has \
                 train.sft_warmup_steps = {warmup}: resume with {done_warmup}"
            );
        }
        if let Some(name) = saved("optim.name") {
            ensure!(
                name == cfg.optim.name.as_str(),
                ResumeMismatch,
                "{dir} was written with optim.name = {name:?}; this run has {:?}: its optimizer state \
                 does not carry over (resume with optim.name = {name:?})",
                cfg.optim.name.as_str()
            );
        }
        Ok(())
    }

    /// The resolved config the checkpoint was written with, as a TOML table (read
    /// loosely, so an older build's keys do not stop the checks).
    fn saved_config(&self) -> Result<Option<toml::Table>> {
        let path = self.checkpoint.dir.join(CONFIG_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| TrainError::io("cannot read", &path, e))?;
        Ok(text.parse::<toml::Table>().ok())
    }

    /// Refuses a checkpoint of another model before any work, naming both.
    pub fn check_model(&self, policy: &ShardedModel) -> Result<()> {
        let describe = |c: &serde_json::Value| {
            format!(
                "hidden_size {}, {} layers, intermediate_size {}, vocab_size {}",
                c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"]
            )
        };
        let ours = serde_json::to_value(policy.config())?;
        policy
            .check_fits(&self.checkpoint)
            .map_err(|e| TrainError::ModelMismatch {
                theirs: describe(&self.checkpoint.manifest.model_config),
                ours: describe(&ours),
                source: Box::new(e.into()),
            })
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
            let (bytes, crc32) =
                weights_checksum(&folder).map_err(|e| TrainError::CheckpointReference {
                    checkpoint: self.checkpoint.dir.clone(),
                    folder: folder.clone(),
                    source: Box::new(e),
                })?;
            if (bytes, crc32) != (saved.bytes, saved.crc32) {
                return Err(TrainError::CorruptReference {
                    folder,
                    checkpoint: self.checkpoint.dir.clone(),
                    bytes,
                    crc32,
                    expected_bytes: saved.bytes,
                    expected_crc32: saved.crc32,
                });
            }
            return Reference::load_hf(&folder, mode, world, kind, chunk)
                .map(|r| Some(r.with_overlap(cfg.zero.overlap)));
        }
        if !self.state.reference_saved {
            return Ok(None);
        }
        let file = self.checkpoint.dir.join(REFERENCE_FILE);
        Reference::load_saved(&file, config, mode, world, kind, chunk)
            .map(|r| Some(r.with_overlap(cfg.zero.overlap)))
    }
}

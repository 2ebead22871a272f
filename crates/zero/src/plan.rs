//! The memory planner: per-rank bytes of a training run at each ZeRO stage, from the
//! model's shape alone (no weights), and the bytes each step moves.
//!
//! State follows the formula in [`crate::memory`] (what the state tensors hold,
//! measured by `benches/zero_memory.sh`), with Ψ padded per unit exactly as
//! [`crate::layout`] pads it. On top of it, per rank:
//!
//! - the reference: `live` a full compute copy (cΨ), `sharded` cΨ/W, `offload` and
//!   `precomputed` nothing on the device;
//! - activations for one micro-batch of S sequences × T positions: with checkpointing
//!   the saved unit inputs ((L + 1)·S·T·H·c) plus one layer's activations while it is
//!   recomputed; without, every layer's activations. A layer's activations are estimated
//!   per token as 8H + 2·kv + 4I elements (norms, projections, MLP) plus the attention
//!   probabilities 2·n_heads·T, in the compute dtype; the head adds a chunk of fp32
//!   logits and their log-softmax (2 × 4 bytes × V per token, at most
//!   `logits_chunk_tokens` tokens);
//! - working buffers: the largest unit gathered in stage 3 (plus the tied embedding,
//!   which stays gathered from the embedding to the head), and in stages 2–3 one unit's
//!   full gradient during its backward; with `[zero] overlap` one more of each (the next
//!   unit's all-gather started one unit ahead, one reduce-scatter in flight), counted as
//!   the largest unit.
//!
//! Saving adds one fp32 unit on every rank (units are gathered one at a time).

use rpo_model::LlamaConfig;
use serde::Serialize;
use std::fmt::Write as _;

use crate::error::ZeroError;
use crate::memory::StateBytes;
use crate::stage::ZeroStage;

/// Elements per unit ([embedding, layers…, head]), unpadded.
pub fn unit_numels(config: &LlamaConfig) -> Vec<i64> {
    let h = config.hidden_size;
    let embed = config.vocab_size * h;
    let tied = config.tie_word_embeddings;
    let head = h + if tied { 0 } else { embed };
    let layers = config.num_hidden_layers;
    let layer = (config.num_parameters() - embed - head) / layers;
    let mut units = vec![embed];
    units.extend(std::iter::repeat(layer).take(layers as usize));
    units.push(head);
    units
}

/// Where the frozen reference lives, as `[reference] mode` says (`None`: no reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReferencePlan {
    None,
    Live,
    Sharded,
    Offload,
    Precomputed,
}

impl ReferencePlan {
    pub fn from_mode(mode: &str) -> Option<Self> {
        Some(match mode {
            "live" => Self::Live,
            "sharded" => Self::Sharded,
            "offload" => Self::Offload,
            "precomputed" => Self::Precomputed,
            _ => return None,
        })
    }
}

/// What a plan is made for.
#[derive(Debug, Clone)]
pub struct PlanInputs {
    pub config: LlamaConfig,
    pub world: usize,
    /// Bytes per compute element (2 bf16, 4 fp32).
    pub compute_bytes: i64,
    /// Bytes per gradient element (the gradient buffers' dtype).
    pub grad_bytes: i64,
    /// Optimizer state bytes per element (RMSprop 4, AdamW 8).
    pub optimizer_bytes: i64,
    pub reference: ReferencePlan,
    /// Sequences per micro-batch on one rank, and their length.
    pub sequences: i64,
    pub length: i64,
    /// Micro-batches per optimizer step.
    pub accumulation: i64,
    pub logits_chunk_tokens: i64,
    /// `None`: each stage's default (on in stage 3 only).
    pub checkpointing: Option<bool>,
    /// `[zero] overlap`: stage 3 gathers one unit ahead (one more gathered unit) and
    /// stages 2–3 keep one reduce-scatter in flight (one more full unit gradient).
    pub overlap: bool,
}

/// One stage's per-rank bytes.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    pub stage: u8,
    pub state: StateBytes,
    pub reference: i64,
    pub checkpointing: bool,
    /// Activations as run (`checkpointing`), and both ways for comparison.
    pub activations: i64,
    pub activations_checkpointed: i64,
    pub activations_kept: i64,
    /// Gathered unit(s) and one unit's full gradient.
    pub working: i64,
    pub total: i64,
    /// Bytes the ZeRO collectives move per optimizer step (each collective's full buffer).
    pub bytes_per_step: i64,
    pub fits: Option<bool>,
}

/// Per-rank bytes at every stage.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPlan {
    pub parameters: i64,
    pub padded_parameters: i64,
    pub largest_unit: i64,
    pub world: usize,
    pub budget: Option<i64>,
    pub stages: Vec<StagePlan>,
}

const STAGES: [ZeroStage; 4] = [
    ZeroStage::Zero0,
    ZeroStage::Zero1,
    ZeroStage::Zero2,
    ZeroStage::Zero3,
];

impl MemoryPlan {
    pub fn new(inputs: &PlanInputs, budget: Option<i64>) -> Self {
        let w = inputs.world as i64;
        let units = unit_numels(&inputs.config);
        let block = w * 8;
        let padded: Vec<i64> = units
            .iter()
            .map(|n| (n + block - 1) / block * block)
            .collect();
        let psi: i64 = padded.iter().sum();
        let largest = *padded.iter().max().unwrap_or(&0);
        let (c, g) = (inputs.compute_bytes, inputs.grad_bytes);
        let master = if c == 4 { 0 } else { 4 };
        let cfg = &inputs.config;
        let (h, tokens) = (cfg.hidden_size, inputs.sequences * inputs.length);
        let kv = cfg.num_key_value_heads * cfg.head_dim();
        let per_token = 8 * h
            + 2 * kv
            + 4 * cfg.intermediate_size
            + 2 * cfg.num_attention_heads * inputs.length;
        let layer_activations = tokens * per_token * c;
        let layers = cfg.num_hidden_layers;
        let logits = inputs.logits_chunk_tokens.min(tokens) * cfg.vocab_size * 8;
        let stages = STAGES
            .iter()
            .map(|&stage| {
                let state = StateBytes {
                    gradients: if stage.shards_gradients() {
                        g * psi / w
                    } else {
                        g * psi
                    },
                    ..StateBytes::expected(
                        stage,
                        inputs.world,
                        psi,
                        c,
                        master,
                        inputs.optimizer_bytes,
                    )
                };
                let reference = match inputs.reference {
                    ReferencePlan::Live => c * psi,
                    ReferencePlan::Sharded => c * psi / w,
                    _ => 0,
                };
                let checkpointing = inputs.checkpointing.unwrap_or(stage.shards_parameters())
                    || stage.shards_parameters();
                let activations_checkpointed =
                    logits + (layers + 1) * tokens * h * c + layer_activations;
                let activations_kept = logits + layers * layer_activations;
                let activations = if checkpointing {
                    activations_checkpointed
                } else {
                    activations_kept
                };
                // With overlap, one more unit: the next one's gather, or a gradient
                // whose reduce-scatter is in flight.
                let copies = if inputs.overlap { 2 } else { 1 };
                let gathered = if stage.shards_parameters() {
                    copies * largest * c
                        + if cfg.tie_word_embeddings {
                            padded[0] * c
                        } else {
                            0
                        }
                } else {
                    0
                };
                let unit_grad = if stage.shards_gradients() {
                    copies * largest * g
                } else {
                    0
                };
                let working = gathered + unit_grad;
                let total = state.total() + reference + activations + working;
                let a = inputs.accumulation;
                // Stages 1–3 add the 8-byte all-reduce of the squared gradient norm.
                let bytes_per_step = match stage {
                    ZeroStage::Zero0 => psi * g,
                    ZeroStage::Zero1 => psi * g + psi * c + 8,
                    ZeroStage::Zero2 => a * psi * g + psi * c + 8,
                    ZeroStage::Zero3 => a * (2 * psi * c + psi * g) + 8,
                };
                StagePlan {
                    stage: stage as u8,
                    state,
                    reference,
                    checkpointing,
                    activations,
                    activations_checkpointed,
                    activations_kept,
                    working,
                    total,
                    bytes_per_step,
                    fits: budget.map(|b| total <= b),
                }
            })
            .collect();
        MemoryPlan {
            parameters: units.iter().sum(),
            padded_parameters: psi,
            largest_unit: largest,
            world: inputs.world,
            budget,
            stages,
        }
    }

    pub fn stage(&self, stage: ZeroStage) -> &StagePlan {
        &self.stages[stage as u8 as usize]
    }

    /// The lowest stage whose total fits the budget (the cheapest in traffic).
    pub fn lowest_fitting(&self) -> Option<u8> {
        self.stages
            .iter()
            .find(|s| s.fits == Some(true))
            .map(|s| s.stage)
    }

    /// A table, in GiB per rank.
    pub fn table(&self) -> String {
        let gib = |b: i64| format!("{:.2}", b as f64 / (1u64 << 30) as f64);
        let mut out = format!(
            "Ψ = {} parameters ({} padded on {} ranks); largest unit {} elements; GiB per rank, the activations each stage runs with in bold\n",
            self.parameters, self.padded_parameters, self.world, self.largest_unit
        );
        out += "| stage | params | grads | fp32 master | optimizer | reference | activations (recomputed / kept) | gathered unit + unit grad | total GiB/rank | moved GB/step/rank | fits |\n";
        out += "|---|---|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.stages {
            let fits = match s.fits {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let mark = |on: bool, b: i64| {
                if on {
                    format!("**{}**", gib(b))
                } else {
                    gib(b)
                }
            };
            let act = format!(
                "{} / {}",
                mark(s.checkpointing, s.activations_checkpointed),
                mark(!s.checkpointing, s.activations_kept)
            );
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                s.stage,
                gib(s.state.parameters),
                gib(s.state.gradients),
                gib(s.state.master),
                gib(s.state.optimizer),
                gib(s.reference),
                act,
                gib(s.working),
                gib(s.total),
                s.bytes_per_step as f64 / 1e9,
                fits
            );
        }
        out
    }
}

/// `80GiB`, `40GB`, `512MiB`, `1073741824` (bytes).
pub fn parse_bytes(text: &str) -> crate::Result<i64> {
    let t = text.trim();
    let split = t
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| ZeroError::Size(format!("{text:?} is not a size like 80GiB")))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        other => {
            return Err(ZeroError::Size(format!(
                "{text:?}: unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            )))
        }
    };
    Ok((number * scale) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(config: LlamaConfig, world: usize) -> PlanInputs {
        PlanInputs {
            config,
            world,
            compute_bytes: 2,
            grad_bytes: 2,
            optimizer_bytes: 4,
            reference: ReferencePlan::None,
            sequences: 16,
            length: 512,
            accumulation: 1,
            logits_chunk_tokens: 4096,
            checkpointing: None,
            overlap: false,
        }
    }

    #[test]
    fn units_add_up_to_the_published_parameter_counts() {
        // meta-llama/Llama-2-7b-hf: 6,738,415,616; 13b: 13,015,864,320; Mistral-7B: 7,241,732,096.
        for (name, count) in [
            ("llama-2-7b", 6_738_415_616i64),
            ("llama-2-13b", 13_015_864_320),
            ("mistral-7b", 7_241_732_096),
        ] {
            let c = rpo_model::preset(name).unwrap();
            assert_eq!(unit_numels(&c).iter().sum::<i64>(), count, "{name}");
        }
    }

    #[test]
    fn state_is_deepspeeds_2_2_12_over_nd() {
        // DeepSpeed (ZeRO paper, mixed-precision Adam: K = 12): 16Ψ, 4Ψ + 12Ψ/N,
        // 2Ψ + 14Ψ/N, 16Ψ/N. Here fp32 masters (4) + AdamW (8) = 12.
        let c = rpo_model::preset("llama-2-7b").unwrap();
        let mut i = inputs(c, 8);
        i.optimizer_bytes = 8;
        let plan = MemoryPlan::new(&i, None);
        let psi = plan.padded_parameters;
        let totals: Vec<i64> = plan.stages.iter().map(|s| s.state.total()).collect();
        assert_eq!(
            totals,
            vec![
                16 * psi,
                4 * psi + 12 * psi / 8,
                2 * psi + 14 * psi / 8,
                16 * psi / 8
            ]
        );
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("80GiB").unwrap(), 80 << 30);
        assert_eq!(parse_bytes("40 GB").unwrap(), 40_000_000_000);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert!(matches!(parse_bytes("lots"), Err(ZeroError::Size(_))));
        assert!(matches!(parse_bytes("3 furlongs"), Err(ZeroError::Size(_))));
    }
}

//! The model that `sample`, `generate` and the online rounds decode with, from a Hugging
//! Face folder: the whole model on every rank (data-parallel decoding), or, for a model
//! trained in ZeRO stage 3 on several ranks, the same stage-3 layout: each rank reads and
//! keeps only its slices, and every rank takes part in every forward, one unit gathered
//! at a time (`rpo_zero::ShardedDecoder`). The sharded form holds 1/W of the weights per
//! rank and pays for it with one all-gather of every unit per decoded token.

use rpo_comm::Collective;
use rpo_model::{load_hf, DecodeError, Decoder, KvCache, Llama, LlamaConfig};
use rpo_zero::{ShardedDecoder, ShardedModel, ZeroOptions, ZeroStage};
use std::path::Path;
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::setup::sharded_from_hf;

pub enum DecodingModel {
    Whole(Llama),
    Sharded(ShardedModel),
}

impl DecodingModel {
    /// `dir` on `world`'s device: sharded over `world` when `sharded` and there are
    /// several ranks (compute in `kind`), whole otherwise (fp32 as saved).
    pub fn load(dir: &Path, world: &dyn Collective, sharded: bool, kind: Kind) -> Result<Self> {
        if sharded && world.world_size() > 1 {
            let options = ZeroOptions {
                stage: ZeroStage::Zero3,
                compute_kind: kind,
                checkpoint_activations: false,
                logits_chunk_tokens: 4096,
                reduce_kind: Kind::Float,
                // Decoding gathers through `ShardedDecoder`, one unit per forward.
                overlap: false,
            };
            return Ok(Self::Sharded(sharded_from_hf(dir, world, options)?.0));
        }
        Ok(Self::Whole(load_hf(dir, world.device())?.0))
    }

    /// The sharded model, when it is one.
    pub fn sharded(&self) -> Option<&ShardedModel> {
        match self {
            Self::Sharded(model) => Some(model),
            Self::Whole(_) => None,
        }
    }

    /// `f` on the decoder of this model: the whole model, or every rank's slices
    /// together (`ShardedDecoder`).
    fn with_decoder<T>(&self, f: impl FnOnce(&dyn Decoder) -> T) -> T {
        match self {
            Self::Whole(model) => f(model),
            Self::Sharded(model) => f(&ShardedDecoder::new(model)),
        }
    }
}

/// Decodes through the whole model, or through every rank's slices together: a sharded
/// model's ranks must decode alike (the same number of `generate` calls).
impl Decoder for DecodingModel {
    fn config(&self) -> &LlamaConfig {
        match self {
            Self::Whole(model) => model.config(),
            Self::Sharded(model) => model.model().config(),
        }
    }
    fn device(&self) -> Device {
        self.with_decoder(|d| d.device())
    }
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor, DecodeError> {
        self.with_decoder(|d| d.forward_cached(ids, cache))
    }
    fn any_rank(&self, mine: bool) -> Result<bool, DecodeError> {
        self.with_decoder(|d| d.any_rank(mine))
    }
    fn idle_forward(&self) -> Result<(), DecodeError> {
        self.with_decoder(|d| d.idle_forward())
    }
}

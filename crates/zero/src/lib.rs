//! ZeRO sharding for rpo-shard, DeepSpeed's stages 0–3, in a form one can read top to
//! bottom:
//!
//! - [`layout`]: each unit's parameters (embedding, each decoder layer, final norm +
//!   head) packed into one flat buffer padded to a multiple of the world size; rank r
//!   owns slice r.
//! - [`unit_params`]: the compute-dtype parameters of a unit, resident (stages 0–2) or
//!   gathered just in time (stage 3).
//! - [`grads`]: per-unit gradient buffers; reduce-scatter as soon as a unit is done (2–3).
//! - [`ShardedModel`] (`sharded_model/`, one file per thing it does): building it,
//!   [`executor`] (layer-wise forward and recomputed backward, chunked log-probs), the
//!   sharded optimizer step with global-norm clipping, Hugging Face folders written one
//!   gathered unit at a time, and writing and loading training checkpoints.
//! - [`memory`]: the per-rank memory formula and the measured figure.
//! - [`plan`]: per-rank bytes of a run at each stage from the model's shape (`rpo-shard plan`).
//! - [`checkpoint`]: the format of sharded training checkpoints, readable at any world
//!   size or stage (and convertible to a Hugging Face folder one unit at a time).

pub mod checkpoint;
pub mod checkpoint_error;
pub mod decoder;
mod error;
pub mod grads;
pub mod layout;
pub mod memory;
pub mod plan;
mod sharded_model;
pub mod stage;
pub mod unit_params;

pub use checkpoint::{Checkpoint, Manifest};
pub use decoder::ShardedDecoder;
pub use error::{Result, ZeroError};
pub use executor::{PackedRows, PolicyLogps, Sequences};
pub use layout::{ModelLayout, UnitLayout};
pub use memory::StateBytes;
pub use sharded_model::executor;
pub use sharded_model::{
    source_from_params, FrozenPlacement, ShardedModel, UnitSource, ZeroOptions,
};
pub use stage::ZeroStage;

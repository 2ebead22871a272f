//! ZeRO sharding for rpo-shard, DeepSpeed's stages 0–3, in a form one can read top to
//! bottom:
//!
//! - [`layout`]: each unit's parameters (embedding, each decoder layer, final norm +
//!   head) packed into one flat buffer padded to a multiple of the world size; rank r
//!   owns slice r.
//! - [`unit_params`]: the compute-dtype parameters of a unit, resident (stages 0–2) or
//!   gathered just in time (stage 3).
//! - [`executor`]: layer-wise forward and recomputed backward, chunked log-probs.
//! - [`grads`]: per-unit gradient buffers; reduce-scatter as soon as a unit is done (2–3).
//! - [`update`]: the sharded optimizer step with global-norm clipping.
//! - [`memory`]: the per-rank memory formula and the measured figure.
//! - [`plan`]: per-rank bytes of a run at each stage from the model's shape (`rpo-shard plan`).
//! - [`save`]: Hugging Face folders written one gathered unit at a time.
//! - [`checkpoint`]: sharded training checkpoints, readable at any world size or stage.

pub mod checkpoint;
pub mod checkpoint_error;
pub mod decoder;
pub mod executor;
pub mod grads;
pub mod layout;
pub mod memory;
pub mod plan;
pub mod save;
mod sharded_model;
pub mod stage;
pub mod unit_params;
mod update;

pub use checkpoint::{Checkpoint, Manifest};
pub use decoder::ShardedDecoder;
pub use executor::{PackedRows, PolicyLogps, Sequences};
pub use layout::{ModelLayout, UnitLayout};
pub use memory::StateBytes;
pub use sharded_model::{
    source_from_params, FrozenPlacement, ShardedModel, UnitSource, ZeroOptions,
};
pub use stage::ZeroStage;
pub use update::ReducedGrads;

//! Splitting a global batch between data-parallel ranks.
//!
//! The sampler always draws *global* batches; each rank takes its own contiguous slice,
//! so which examples form a global batch never depends on the world size.

use crate::error::{DataError, Result};

/// Rank `rank`'s contiguous share of a global batch (`len / world` elements).
pub fn rank_slice<T>(global: &[T], rank: usize, world: usize) -> Result<&[T]> {
    if world == 0 {
        return Err(DataError::Invalid("world size must be positive".into()));
    }
    if rank >= world {
        return Err(DataError::Invalid(format!(
            "rank {rank} out of range for world size {world}"
        )));
    }
    if !global.len().is_multiple_of(world) {
        return Err(DataError::Invalid(format!(
            "global batch of {} does not split evenly over {world} ranks",
            global.len()
        )));
    }
    let per_rank = global.len() / world;
    Ok(&global[rank * per_rank..(rank + 1) * per_rank])
}

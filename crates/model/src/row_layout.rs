//! What attention sees besides the hidden states: the positions' rotary angles and
//! which keys each query may attend to.
//!
//! The plain layout is one right-padded sequence per row, positions `0..T`, causal. A
//! packed layout ([`RowLayout`]) puts several sequences (or a prompt followed by two
//! responses) into one row: each token carries its position id and a block of the
//! boolean mask says which earlier tokens of the row it sees.

use tch::{Device, Tensor};

use crate::rope::RotaryAngles;

/// Position ids and attention permissions of packed rows.
#[derive(Debug)]
pub struct RowLayout {
    /// `[R, T]` int64 position id of every token (restarting in each packed sequence).
    pub positions: Tensor,
    /// `[R, T, T]` bool: `allowed[r, q, k]` when query `q` may attend to key `k`.
    /// Every query must be allowed at least one key (padding attends to itself).
    pub allowed: Tensor,
}

impl RowLayout {
    pub fn shallow_clone(&self) -> Self {
        Self {
            positions: self.positions.shallow_clone(),
            allowed: self.allowed.shallow_clone(),
        }
    }

    pub fn to_device(&self, device: Device) -> Self {
        Self {
            positions: crate::upload(&self.positions, device),
            allowed: crate::upload(&self.allowed, device),
        }
    }
}

/// The rotary angles and the mask every decoder layer of one forward uses.
#[derive(Debug)]
pub struct AttentionInputs {
    pub(crate) angles: RotaryAngles,
    /// `[R, 1, T, T]` bool for packed rows; `None`: causal over `0..T`.
    pub(crate) mask: Option<Tensor>,
}

impl AttentionInputs {
    /// The causal mask of packed rows narrowed to the model's sliding window
    /// (transformers: key visible when `q_pos − k_pos < window`).
    pub(crate) fn packed(layout: &RowLayout, angles: RotaryAngles, window: Option<i64>) -> Self {
        let mut allowed = layout.allowed.shallow_clone();
        if let Some(w) = window {
            let pos = &layout.positions;
            let distance = pos.unsqueeze(2) - pos.unsqueeze(1);
            // The diagonal (distance 0) stays visible, so padding still sees itself.
            allowed = allowed.logical_and(&distance.lt(w));
        }
        Self {
            angles,
            mask: Some(allowed.unsqueeze(1)),
        }
    }
}

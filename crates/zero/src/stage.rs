//! The ZeRO stages, with DeepSpeed's meaning.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What each rank keeps whole and what it keeps only a 1/W slice of.
///
/// | stage | parameters | gradients | fp32 master + optimizer state |
/// |---|---|---|---|
/// | 0 | full | full (all-reduced) | full |
/// | 1 | full | full, reduce-scattered after backward | own slice |
/// | 2 | full | own slice, reduce-scattered per unit during backward | own slice |
/// | 3 | own slice, gathered per unit while it runs | own slice | own slice |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(try_from = "u8", into = "u8")]
pub enum ZeroStage {
    #[default]
    Zero0,
    Zero1,
    Zero2,
    Zero3,
}

impl ZeroStage {
    pub fn shards_optimizer(self) -> bool {
        self >= ZeroStage::Zero1
    }

    pub fn shards_gradients(self) -> bool {
        self >= ZeroStage::Zero2
    }

    pub fn shards_parameters(self) -> bool {
        self == ZeroStage::Zero3
    }
}

impl TryFrom<u8> for ZeroStage {
    type Error = String;

    fn try_from(n: u8) -> Result<Self, String> {
        Ok(match n {
            0 => ZeroStage::Zero0,
            1 => ZeroStage::Zero1,
            2 => ZeroStage::Zero2,
            3 => ZeroStage::Zero3,
            _ => {
                return Err(format!(
                    "ZeRO stage {n} does not exist: expected 0, 1, 2 or 3"
                ))
            }
        })
    }
}

impl From<ZeroStage> for u8 {
    fn from(s: ZeroStage) -> u8 {
        s as u8
    }
}

impl fmt::Display for ZeroStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

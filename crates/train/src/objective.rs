//! The preference objective of a run, chosen once from the config.

use crate::error::Result;
use rpo_losses::Weighting;

use crate::choices::{LossName, Pairing, WeightingName};
use crate::config::LossConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// RPO over a paired (M×M) or unpaired (M×N) contrast matrix.
    Rpo {
        weighting: Weighting,
        unpaired: bool,
    },
    Dpo,
    Ipo,
    Kto {
        desirable_weight: f64,
        undesirable_weight: f64,
    },
    Sft,
}

impl Objective {
    pub fn from_config(loss: &LossConfig) -> Result<Self> {
        Ok(match loss.name {
            LossName::Rpo => Objective::Rpo {
                weighting: match loss.weighting {
                    WeightingName::Embedding => Weighting::Embedding { tau: loss.tau },
                    WeightingName::UniformPaper => Weighting::UniformPaper,
                    WeightingName::UniformCode => Weighting::UniformCode,
                    WeightingName::DiagonalPaper => Weighting::DiagonalPaper { alpha: loss.alpha },
                    WeightingName::DiagonalCode => Weighting::DiagonalCode { alpha: loss.alpha },
                },
                unpaired: loss.pairing == Pairing::Unpaired,
            },
            LossName::Dpo => Objective::Dpo,
            LossName::Ipo => Objective::Ipo,
            LossName::Kto => Objective::Kto {
                desirable_weight: loss.desirable_weight,
                undesirable_weight: loss.undesirable_weight,
            },
            LossName::Sft => Objective::Sft,
        })
    }

    /// Whether batches are unpaired (x, y, label) examples rather than pairs.
    pub fn unpaired(&self) -> bool {
        matches!(
            self,
            Objective::Kto { .. } | Objective::Rpo { unpaired: true, .. }
        )
    }

    /// SFT needs no reference model.
    pub fn needs_reference(&self) -> bool {
        !matches!(self, Objective::Sft)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Objective::Rpo {
                unpaired: false, ..
            } => "rpo-paired",
            Objective::Rpo { unpaired: true, .. } => "rpo-unpaired",
            Objective::Dpo => "dpo",
            Objective::Ipo => "ipo",
            Objective::Kto { .. } => "kto",
            Objective::Sft => "sft",
        }
    }
}

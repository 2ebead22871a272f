//! The units of layer-wise execution: the embedding, each decoder layer, and the head
//! (final norm + LM head). ZeRO-3 gathers parameters a unit at a time, activation
//! checkpointing saves one input per unit, and gradients are reduced per unit.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitId {
    Embed,
    Layer(usize),
    Head,
}

impl UnitId {
    /// The unit a Hugging Face tensor name belongs to. With tied embeddings the head reads
    /// `model.embed_tokens.weight`, which still belongs to the embedding unit.
    pub fn of(name: &str) -> Option<UnitId> {
        if name.starts_with("model.embed_tokens.") {
            return Some(UnitId::Embed);
        }
        if name.starts_with("model.norm.") || name.starts_with("lm_head.") {
            return Some(UnitId::Head);
        }
        let rest = name.strip_prefix("model.layers.")?;
        let index = rest.split('.').next()?.parse().ok()?;
        Some(UnitId::Layer(index))
    }

    /// Every unit of a model with `layers` decoder layers, in forward order.
    pub fn all(layers: usize) -> Vec<UnitId> {
        std::iter::once(UnitId::Embed)
            .chain((0..layers).map(UnitId::Layer))
            .chain(std::iter::once(UnitId::Head))
            .collect()
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Embed => write!(f, "embed"),
            UnitId::Layer(i) => write!(f, "layers.{i}"),
            UnitId::Head => write!(f, "head"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_units() {
        assert_eq!(UnitId::of("model.embed_tokens.weight"), Some(UnitId::Embed));
        assert_eq!(
            UnitId::of("model.layers.12.mlp.up_proj.weight"),
            Some(UnitId::Layer(12))
        );
        assert_eq!(UnitId::of("model.norm.weight"), Some(UnitId::Head));
        assert_eq!(UnitId::of("lm_head.weight"), Some(UnitId::Head));
        assert_eq!(UnitId::of("something.else"), None);
        assert_eq!(UnitId::all(2).len(), 4);
    }
}

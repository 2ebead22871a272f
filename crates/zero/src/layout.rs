//! Flat, padded per-unit buffers: where each parameter of a unit sits in its unit's
//! buffer, and which slice of that buffer each rank owns.

use rpo_model::UnitId;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

use crate::error::{Result, ZeroError};

/// Shards stay multiples of this many elements (16 bytes of bf16), so every rank's slice
/// starts aligned.
const ALIGN: i64 = 8;

#[derive(Debug, Clone)]
pub struct ParamSlot {
    /// The Hugging Face tensor name.
    pub name: String,
    pub shape: Vec<i64>,
    /// Where the parameter starts in its unit's flat buffer.
    pub offset: i64,
    pub numel: i64,
}

#[derive(Debug, Clone)]
pub struct UnitLayout {
    pub unit: UnitId,
    /// In name order, packed without gaps.
    pub params: Vec<ParamSlot>,
    /// Parameters in the unit, unpadded.
    pub numel: i64,
    /// Buffer length: `numel` padded to a multiple of `world × ALIGN`.
    pub padded: i64,
    /// Elements each rank owns: `padded / world`.
    pub shard: i64,
}

impl UnitLayout {
    fn new(unit: UnitId, mut params: Vec<(String, Vec<i64>)>, world: usize) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let mut offset = 0;
        let params: Vec<ParamSlot> = params
            .into_iter()
            .map(|(name, shape)| {
                let numel = shape.iter().product::<i64>();
                let slot = ParamSlot {
                    name,
                    shape,
                    offset,
                    numel,
                };
                offset += numel;
                slot
            })
            .collect();
        let block = world as i64 * ALIGN;
        let padded = (offset + block - 1) / block * block;
        UnitLayout {
            unit,
            params,
            numel: offset,
            padded,
            shard: padded / world as i64,
        }
    }

    /// `(start, len)` of rank `rank`'s slice of the flat buffer.
    pub fn owned(&self, rank: usize) -> (i64, i64) {
        (rank as i64 * self.shard, self.shard)
    }

    /// The padded flat buffer holding `tensors` (in slot order), in `kind`.
    pub fn flatten(&self, tensors: &[Tensor], kind: Kind) -> Result<Tensor> {
        if tensors.len() != self.params.len() {
            return Err(ZeroError::Layout(format!(
                "unit {}: {} tensors for {} parameters",
                self.unit,
                tensors.len(),
                self.params.len()
            )));
        }
        let device = tensors[0].device();
        let flat = Tensor::zeros([self.padded], (kind, device));
        tch::no_grad(|| {
            for (slot, t) in self.params.iter().zip(tensors) {
                flat.narrow(0, slot.offset, slot.numel)
                    .copy_(&t.detach().reshape([-1]));
            }
        });
        Ok(flat)
    }

    /// Views of the flat buffer `flat`, one per parameter, shaped like it.
    pub fn views(&self, flat: &Tensor) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|s| flat.narrow(0, s.offset, s.numel).view(s.shape.as_slice()))
            .collect()
    }
}

/// Every unit of a model, in forward order.
#[derive(Debug, Clone)]
pub struct ModelLayout {
    pub units: Vec<UnitLayout>,
    pub world: usize,
}

impl ModelLayout {
    /// Groups named parameters into the units of a `layers`-layer model.
    pub fn new(named: &[(String, Vec<i64>)], layers: usize, world: usize) -> Result<Self> {
        let mut by_unit: BTreeMap<UnitId, Vec<(String, Vec<i64>)>> = BTreeMap::new();
        for (name, shape) in named {
            let Some(unit) = UnitId::of(name) else {
                return Err(ZeroError::Layout(format!(
                    "parameter {name} belongs to no unit of a Llama-family model"
                )));
            };
            by_unit
                .entry(unit)
                .or_default()
                .push((name.clone(), shape.clone()));
        }
        let units = UnitId::all(layers)
            .into_iter()
            .map(|unit| {
                let params = by_unit.remove(&unit).unwrap_or_default();
                if params.is_empty() {
                    return Err(ZeroError::Layout(format!("unit {unit} has no parameters")));
                }
                Ok(UnitLayout::new(unit, params, world))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some((unit, _)) = by_unit.into_iter().next() {
            return Err(ZeroError::Layout(format!(
                "parameters of unit {unit}, which a {layers}-layer model does not have"
            )));
        }
        Ok(Self { units, world })
    }

    /// Ψ: parameters in the model, unpadded.
    pub fn numel(&self) -> i64 {
        self.units.iter().map(|u| u.numel).sum()
    }

    /// Elements of all flat buffers, padding included.
    pub fn padded(&self) -> i64 {
        self.units.iter().map(|u| u.padded).sum()
    }

    pub fn index(&self, unit: UnitId) -> usize {
        self.units
            .iter()
            .position(|u| u.unit == unit)
            .expect("every unit is in the layout")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named() -> Vec<(String, Vec<i64>)> {
        vec![
            ("model.embed_tokens.weight".into(), vec![7, 3]),
            ("model.layers.0.mlp.up_proj.weight".into(), vec![5, 3]),
            ("model.layers.0.input_layernorm.weight".into(), vec![3]),
            ("model.norm.weight".into(), vec![3]),
        ]
    }

    #[test]
    fn units_are_padded_to_whole_aligned_shards() {
        let layout = ModelLayout::new(&named(), 1, 3).unwrap();
        let layer = &layout.units[1];
        assert_eq!(layer.numel, 18);
        assert_eq!(layer.padded, 24);
        assert_eq!(layer.shard, 8);
        // name order: input_layernorm before mlp
        assert_eq!(layer.params[0].offset, 0);
        assert_eq!(layer.params[1].offset, 3);
        assert_eq!(layout.numel(), 21 + 18 + 3);
        assert_eq!(layer.owned(2), (16, 8));
    }

    #[test]
    fn flatten_and_views_round_trip() {
        let layout = ModelLayout::new(&named(), 1, 2).unwrap();
        let unit = &layout.units[1];
        let a = Tensor::arange(3, (Kind::Float, tch::Device::Cpu));
        let b = Tensor::arange(15, (Kind::Float, tch::Device::Cpu)).view([5, 3]);
        let flat = unit
            .flatten(&[a.shallow_clone(), b.shallow_clone()], Kind::Float)
            .unwrap();
        assert_eq!(flat.size(), [unit.padded]);
        let views = unit.views(&flat);
        assert!(views[0].equal(&a) && views[1].equal(&b));
        assert_eq!(
            flat.narrow(0, 18, unit.padded - 18)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn unknown_or_missing_units_are_refused() {
        let mut bad = named();
        bad.push(("vision.proj".into(), vec![2]));
        let e = ModelLayout::new(&bad, 1, 2).unwrap_err();
        assert!(
            matches!(&e, ZeroError::Layout(m) if m.contains("vision.proj")),
            "{e}"
        );
        let e = ModelLayout::new(&named(), 2, 2).unwrap_err();
        assert!(
            matches!(&e, ZeroError::Layout(m) if m.contains("layers.1")),
            "{e}"
        );
    }
}

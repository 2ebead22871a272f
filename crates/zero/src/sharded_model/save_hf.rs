//! Saving the policy as a Hugging Face folder without a full copy: the fp32 masters are
//! gathered one unit at a time (an all-gather of the owned slices), cast, and written by
//! rank 0 into its place in the folder ([`HfWriter`]), so the extra memory on any rank is
//! one unit, never the model.

use rpo_model::{HfWriter, LlamaConfig};
use std::path::Path;
use tch::{Kind, Tensor};

use super::ShardedModel;
use crate::error::{Result, ZeroError};
use crate::layout::ModelLayout;

/// Every parameter's Hugging Face name and shape, for laying out a folder up front.
pub fn tensor_specs(layout: &ModelLayout) -> Vec<(String, Vec<i64>)> {
    layout
        .units
        .iter()
        .flat_map(|u| u.params.iter().map(|p| (p.name.clone(), p.shape.clone())))
        .collect()
}

impl ShardedModel {
    /// Writes the fp32 master weights as a Hugging Face folder in `kind`, shards of at
    /// most `max_shard_bytes` (`u64::MAX`: one file). Every rank must call this; the rank
    /// given `Some(dir)` writes. A write error on that rank is reported after the other
    /// ranks' gathers are done, so none is left waiting.
    pub fn save_hf(
        &self,
        dir: Option<&Path>,
        config: &LlamaConfig,
        kind: Kind,
        max_shard_bytes: u64,
    ) -> Result<()> {
        // A writer that cannot be created (a file in the way, a full disk) fails the save
        // on this rank, which still joins every gather below so the others are not left
        // waiting.
        let mut failed = None;
        let mut writer = match dir
            .map(|d| {
                HfWriter::create(
                    d,
                    &tensor_specs(&self.layout),
                    config,
                    kind,
                    max_shard_bytes,
                )
            })
            .transpose()
        {
            Ok(w) => w,
            Err(e) => {
                failed = Some(e);
                None
            }
        };
        for i in 0..self.layout.units.len() {
            let unit = &self.layout.units[i];
            let full = {
                let master = self.master.borrow();
                if self.options.stage.shards_optimizer() {
                    self.comm
                        .all_gather(&master[i])
                        .map_err(|source| ZeroError::Collective {
                            what: format!("gathering unit {} to save it", unit.unit),
                            source,
                        })?
                } else {
                    master[i].shallow_clone()
                }
            };
            if let (Some(w), None) = (writer.as_mut(), &failed) {
                for (slot, view) in unit.params.iter().zip(unit.views(&full)) {
                    if let Err(e) = w.write(&slot.name, &view) {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        writer.map(HfWriter::finish).transpose()?;
        Ok(())
    }

    /// Writes the compute weights (for a frozen reference, its only weights) as a Hugging
    /// Face folder in their own dtype, one gathered unit at a time. Every rank must call
    /// this; the rank given `Some(dir)` writes.
    pub fn save_compute_hf(&self, dir: Option<&Path>, config: &LlamaConfig) -> Result<()> {
        let kind = self.options.compute_kind;
        let mut writer = dir
            .map(|d| HfWriter::create(d, &tensor_specs(&self.layout), config, kind, u64::MAX))
            .transpose()?;
        let mut failed = None;
        for i in 0..self.layout.units.len() {
            self.gather(i)?;
            if let (Some(w), None) = (writer.as_mut(), &failed) {
                let params = self.params.borrow();
                let full = params[i].full().expect("gathered");
                let unit = &self.layout.units[i];
                for (slot, view) in unit.params.iter().zip(unit.views(full)) {
                    if let Err(e) = w.write(&slot.name, &view) {
                        failed = Some(e);
                        break;
                    }
                }
            }
            self.release(i);
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        writer.map(HfWriter::finish).transpose()?;
        Ok(())
    }

    /// Calls `f` with every compute tensor (Hugging Face name, the unit's view), one
    /// gathered unit at a time: never the whole model on any rank. Every rank must call
    /// this; after `f` fails, the remaining units are still gathered (so no rank is left
    /// waiting) and the first error is returned: `f`'s own, or a gather's as `E`.
    pub fn for_each_compute_tensor<E: From<ZeroError>>(
        &self,
        mut f: impl FnMut(&str, &Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut failed = None;
        for i in 0..self.layout.units.len() {
            self.gather(i).map_err(ZeroError::from)?;
            if failed.is_none() {
                let params = self.params.borrow();
                let full = params[i].full().expect("gathered");
                let unit = &self.layout.units[i];
                for (slot, view) in unit.params.iter().zip(unit.views(full)) {
                    if let Err(e) = f(&slot.name, &view) {
                        failed = Some(e);
                        break;
                    }
                }
            }
            self.release(i);
        }
        failed.map_or(Ok(()), Err)
    }
}

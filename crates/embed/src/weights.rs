//! Loading a BERT `model.safetensors` into the encoder's VarStore, and hashing it.
//!
//! Tensor names may carry transformers' `bert.` prefix (a `BertModel` saved inside a
//! task model) or not (sentence-transformers' Transformer module); both load. The
//! pooler, the MLM/NSP heads (`cls.`) and the `position_ids` buffer are not used by
//! sentence-transformers and are skipped; any other tensor the encoder does not have is
//! an error, as is a missing parameter or a shape mismatch.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::SafeTensors;
use tch::{nn::VarStore, Kind, Tensor};

use crate::error::{EmbedError, Result};

const PREFIX: &str = "bert.";

fn ignorable(name: &str) -> bool {
    name.starts_with("pooler.") || name.starts_with("cls.") || name == "embeddings.position_ids"
}

/// Copies every parameter of `vs` from the safetensors file `path` (converting to the
/// parameters' dtype and device). Returns the content hash of the file.
pub fn load_weights(path: &Path, vs: &mut VarStore) -> Result<u64> {
    let f = std::fs::File::open(path).map_err(|e| EmbedError::io("cannot open", path, e))?;
    // SAFETY: read-only; a weights file rewritten or truncated while it loads would give
    // wrong values or kill the process (SIGBUS), as for any memory-mapped reader.
    let bytes = unsafe { rpo_storage::framed::map_readonly(&f) }
        .map_err(|e| EmbedError::io("cannot memory-map", path, e))?;
    let hash = crate::fingerprint::hash_bytes(&bytes);
    let file = SafeTensors::deserialize(&bytes).map_err(|e| {
        EmbedError::Weights(format!(
            "{} is not a safetensors file: {e:?}",
            path.display()
        ))
    })?;

    // Checkpoint name → (our name), with the optional prefix removed.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for name in file.names() {
        let ours = name.strip_prefix(PREFIX).unwrap_or(name).to_string();
        if let Some(other) = by_name.insert(ours.clone(), name.clone()) {
            bail!(
                Weights,
                "{} holds both {other} and {name}, which are the same parameter",
                path.display()
            );
        }
    }

    let mut vars = vs.variables();
    for (ours, theirs) in &by_name {
        if !vars.contains_key(ours) && !ignorable(ours) {
            bail!(
                Weights,
                "{} holds tensor {theirs}, which the BERT encoder described by its config.json \
                 does not have",
                path.display()
            );
        }
    }
    let mut names: Vec<String> = vars.keys().cloned().collect();
    names.sort();
    tch::no_grad(|| -> Result<()> {
        for name in names {
            let var = vars.get_mut(&name).expect("name from the same map");
            let theirs = by_name.get(&name).ok_or_else(|| {
                EmbedError::Weights(format!("tensor {name} is missing from {}", path.display()))
            })?;
            let view = file.tensor(theirs).map_err(|e| {
                EmbedError::Weights(format!(
                    "cannot read {theirs} from {}: {e:?}",
                    path.display()
                ))
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if shape != var.size() {
                bail!(
                    Weights,
                    "tensor {theirs} in {} has shape {shape:?}, but the config needs {:?}",
                    path.display(),
                    var.size()
                );
            }
            let kind = Kind::try_from(view.dtype()).map_err(|e| {
                EmbedError::Weights(format!("tensor {theirs} in {}: {e}", path.display()))
            })?;
            let cannot_load = |e: tch::TchError| {
                EmbedError::Weights(format!("cannot load {theirs} from {}: {e}", path.display()))
            };
            let tensor =
                Tensor::f_from_data_size(view.data(), &shape, kind).map_err(cannot_load)?;
            var.f_copy_(&tensor).map_err(cannot_load)?;
        }
        Ok(())
    })?;
    Ok(hash)
}

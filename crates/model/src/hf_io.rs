//! Hugging Face model folders: `config.json` plus `model.safetensors`, or shards
//! listed in `model.safetensors.index.json`. What `save_hf` and `save_hf_sharded`
//! write, `transformers.AutoModelForCausalLM.from_pretrained` loads; [`HfCheckpoint`]
//! reads either layout tensor by tensor from memory-mapped files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::init::ParamInit;
use crate::llama::Llama;
pub(crate) use crate::names::EMBED_TOKENS;
pub use crate::names::{CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use crate::safetensors_io::{
    write_atomically, write_pt_safetensors_as, SafetensorsError, SafetensorsFile,
};

/// transformers' default `max_shard_size` ("5GB").
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5_000_000_000;

/// Hugging Face's name for a parameter dtype (`config.json`'s `torch_dtype`).
/// The parameter dtype of a written checkpoint, from its command-line name.
pub fn parse_weight_dtype(name: &str) -> Result<Kind> {
    Ok(match name {
        "fp32" => Kind::Float,
        "bf16" => Kind::BFloat16,
        "fp16" => Kind::Half,
        other => {
            return Err(ModelError::UnknownDtype {
                name: other.to_string(),
            })
        }
    })
}

pub fn dtype_name(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Float => "float32",
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        other => return Err(ModelError::UnsupportedDtype { kind: other }),
    })
}

/// Writes `config.json` (its `torch_dtype` set to the parameters' dtype) and a single
/// `model.safetensors` holding every variable of `vs` under its VarStore name.
pub fn save_hf(dir: &Path, vs: &VarStore, config: &LlamaConfig) -> Result<()> {
    save_hf_tensors(dir, vs.variables().into_iter().collect(), config)
}

/// As [`save_hf`] for named tensors (Hugging Face names, e.g. gathered from shards), in
/// the dtype of `model.embed_tokens.weight`.
pub fn save_hf_tensors(
    dir: &Path,
    tensors: Vec<(String, Tensor)>,
    config: &LlamaConfig,
) -> Result<()> {
    let kind = embed_kind(&tensors)?;
    save_hf_sharded(dir, tensors, config, kind, u64::MAX)
}

/// Writes a Hugging Face folder as transformers' `save_pretrained` does: `config.json`
/// (`torch_dtype` = `kind`) and the tensors converted to `kind`, in name order, packed
/// greedily into files of at most `max_shard_bytes` (a larger tensor gets a file of its
/// own): one `model.safetensors`, or `model-0000i-of-0000N.safetensors` shards plus
/// `model.safetensors.index.json`. Each file is written under a temporary name and
/// renamed; weight files of an earlier save that the new one does not use are removed
/// afterwards. (For an all-or-nothing folder, write a fresh one and rename it.)
pub fn save_hf_sharded(
    dir: &Path,
    mut tensors: Vec<(String, Tensor)>,
    config: &LlamaConfig,
    kind: Kind,
    max_shard_bytes: u64,
) -> Result<()> {
    embed_kind(&tensors)?;
    sort_by_name(&mut tensors)?;
    write_folder_config(dir, config, kind)?;

    let bytes = |t: &Tensor| (t.numel() * kind.elt_size_in_bytes()) as u64;
    let total_size: u64 = tensors.iter().map(|(_, t)| bytes(t)).sum();
    let total_parameters = tensors.iter().map(|(_, t)| t.numel() as u64).sum();
    let shards = pack_greedily(tensors, |(_, t)| bytes(t), max_shard_bytes);

    let count = shards.len();
    let mut written = BTreeSet::new();
    if count == 1 {
        write_pt_safetensors_as(&dir.join(WEIGHTS_FILE), &shards[0], kind)?;
        written.insert(WEIGHTS_FILE.to_string());
    } else {
        let mut weight_map = BTreeMap::new();
        for (i, shard) in shards.into_iter().enumerate() {
            let file = shard_file_name(i + 1, count);
            write_pt_safetensors_as(&dir.join(&file), &shard, kind)?;
            weight_map.extend(shard.into_iter().map(|(name, _)| (name, file.clone())));
            written.insert(file);
        }
        write_index(dir, total_size, total_parameters, &weight_map)?;
        written.insert(WEIGHTS_INDEX_FILE.to_string());
    }
    remove_stale_weights(dir, &written)?;
    // Flushes the renames and removals, so a crash cannot undo them.
    Ok(rpo_storage::sync_dir(dir)?)
}

/// Sorts `(name, _)` items by name; a name given twice is an error.
pub(crate) fn sort_by_name<T>(items: &mut [(String, T)]) -> Result<()> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = items.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(ModelError::Invalid(format!(
            "tensor {} is given twice",
            pair[0].0
        )));
    }
    Ok(())
}

/// Creates `dir` and writes its `config.json`: `config` with `torch_dtype` = `kind`.
pub(crate) fn write_folder_config(dir: &Path, config: &LlamaConfig, kind: Kind) -> Result<()> {
    let mut config = config.clone();
    config.torch_dtype = Some(dtype_name(kind)?.to_string());
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io("cannot create", dir, e))?;
    write_atomically(&dir.join(CONFIG_FILE), |tmp| config.to_file(tmp))
}

/// transformers' shard packing: `items` in order, a new file whenever the next item
/// would take the current one past `max_bytes` (a larger item gets a file of its own).
pub(crate) fn pack_greedily<T>(
    items: impl IntoIterator<Item = T>,
    bytes: impl Fn(&T) -> u64,
    max_bytes: u64,
) -> Vec<Vec<T>> {
    let mut files: Vec<Vec<T>> = Vec::new();
    let mut file_bytes = 0;
    for item in items {
        let size = bytes(&item);
        if files.is_empty() || file_bytes + size > max_bytes {
            files.push(Vec::new());
            file_bytes = 0;
        }
        file_bytes += size;
        files.last_mut().unwrap().push(item);
    }
    files
}

/// Writes `model.safetensors.index.json`: which file holds each tensor, and the totals.
pub(crate) fn write_index<K: serde::Serialize + Ord, V: serde::Serialize>(
    dir: &Path,
    total_size: u64,
    total_parameters: u64,
    weight_map: &BTreeMap<K, V>,
) -> Result<()> {
    // transformers 5 also records total_parameters; older versions ignore it.
    let index = serde_json::json!({
        "metadata": {"total_size": total_size, "total_parameters": total_parameters},
        "weight_map": weight_map,
    });
    let index_path = dir.join(WEIGHTS_INDEX_FILE);
    write_atomically(&index_path, |tmp| {
        std::fs::write(tmp, serde_json::to_string_pretty(&index)? + "\n")
            .map_err(|e| ModelError::io("cannot write", &index_path, e))
    })
}

/// `model-0000i-of-0000N.safetensors`, transformers' name for shard `i` (from 1) of `count`.
pub fn shard_file_name(i: usize, count: usize) -> String {
    format!("model-{i:05}-of-{count:05}.safetensors")
}

/// The dtype of the embedding, which every Llama checkpoint has.
fn embed_kind(tensors: &[(String, Tensor)]) -> Result<Kind> {
    tensors
        .iter()
        .find(|(name, _)| name == EMBED_TOKENS)
        .map(|(_, tensor)| tensor.kind())
        .ok_or(ModelError::NotLlama)
}

/// Removes the weight files in `dir` other than `keep`, left by an earlier save in
/// another layout: a loader would otherwise prefer a stale `model.safetensors`.
pub(crate) fn remove_stale_weights(dir: &Path, keep: &BTreeSet<String>) -> Result<()> {
    let list_error = |e| ModelError::io("cannot list", dir, e);
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_weights_file(&name) && !keep.contains(&name) {
            std::fs::remove_file(entry.path())
                .map_err(|e| ModelError::io("cannot remove stale", &entry.path(), e))?;
        }
    }
    Ok(())
}

fn is_weights_file(name: &str) -> bool {
    let shard = name
        .strip_prefix("model-")
        .and_then(|rest| rest.strip_suffix(".safetensors"))
        .and_then(|rest| rest.split_once("-of-"))
        .is_some_and(|(i, n)| {
            [i, n]
                .iter()
                .all(|part| part.len() == 5 && part.bytes().all(|b| b.is_ascii_digit()))
        });
    shard || name == WEIGHTS_FILE || name == WEIGHTS_INDEX_FILE
}

/// Loads a Hugging Face folder onto `device`, keeping the checkpoint's dtype (that of
/// `model.embed_tokens.weight`). Every parameter must be present with the configured
/// shape; a tied checkpoint may still carry `lm_head.weight`, which is ignored
/// (transformers ties it to the embedding too). Tensors are read one at a time from
/// the memory-mapped files.
pub fn load_hf(dir: &Path, device: Device) -> Result<(Llama, VarStore, LlamaConfig)> {
    let config_path = dir.join(CONFIG_FILE);
    let config = LlamaConfig::from_file(&config_path)?;
    let checkpoint = HfCheckpoint::open(dir)?;

    let mut vs = VarStore::new(device);
    vs.set_kind(checkpoint.kind(EMBED_TOKENS)?);
    let model = Llama::build(&vs.root(), &config, ParamInit::Placeholder)?;
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));

    for (name, var) in &vars {
        let shape = checkpoint.shape(name)?;
        if shape != var.size() {
            return Err(ModelError::Shape {
                name: name.clone(),
                file: checkpoint.file(name)?.to_path_buf(),
                config: config_path.clone(),
                got: shape,
                expected: var.size(),
            });
        }
    }
    let wanted: BTreeSet<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
    for name in checkpoint.names() {
        let ignorable = (name == "lm_head.weight" && config.tie_word_embeddings)
            || name.ends_with(".rotary_emb.inv_freq");
        if !wanted.contains(name) && !ignorable {
            return Err(ModelError::UnexpectedTensor {
                name: name.to_string(),
                file: checkpoint.file(name)?.to_path_buf(),
                config: config_path.clone(),
            });
        }
    }
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &mut vars {
            let tensor = checkpoint.read(name, var.kind(), device)?;
            let file = checkpoint.file(name)?;
            var.f_copy_(&tensor).map_err(|source| ModelError::Load {
                name: name.clone(),
                file: file.to_path_buf(),
                source,
            })?;
        }
        Ok(())
    })?;
    Ok((model, vs, config))
}

/// The memory-mapped weight files of a Hugging Face folder (`model.safetensors`, or the
/// shards of `model.safetensors.index.json`) and where each tensor lives. Opening checks
/// every file's header against its size; reading materialises one tensor, or a flat
/// range of one, at a time.
pub struct HfCheckpoint {
    /// Where tensors were looked for, for errors.
    source: String,
    files: Vec<SafetensorsFile>,
    /// Tensor name -> index into `files`.
    tensors: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
struct WeightIndex {
    weight_map: HashMap<String, String>,
}

impl HfCheckpoint {
    /// Opens the weights of `dir`; a single `model.safetensors` takes precedence over an
    /// index, as in transformers.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join(WEIGHTS_FILE);
        let index_path = dir.join(WEIGHTS_INDEX_FILE);
        let (source, paths, index) = if single.exists() {
            (single.display().to_string(), vec![single], None)
        } else if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| ModelError::io("cannot read", &index_path, e))?;
            let index: WeightIndex =
                serde_json::from_str(&text).map_err(|source| ModelError::Json {
                    what: "",
                    path: index_path.clone(),
                    source,
                })?;
            let files: BTreeSet<&String> = index.weight_map.values().collect();
            let paths = files.into_iter().map(|f| dir.join(f)).collect();
            (
                format!("the shards listed in {}", index_path.display()),
                paths,
                Some(index),
            )
        } else {
            return Err(ModelError::NoWeights {
                dir: dir.to_path_buf(),
            });
        };

        let files = paths
            .iter()
            .map(|path| SafetensorsFile::open(path).map_err(missing_file))
            .collect::<Result<Vec<_>>>()?;
        let mut tensors = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            for name in file.names() {
                if let Some(other) = tensors.insert(name.to_string(), i) {
                    return Err(ModelError::Invalid(format!(
                        "tensor {name} appears in both {} and {}",
                        files[other].path().display(),
                        file.path().display()
                    )));
                }
            }
        }
        if let Some(index) = index {
            for (name, file) in &index.weight_map {
                let expected = dir.join(file);
                if tensors.get(name).map(|&i| files[i].path()) != Some(expected.as_path()) {
                    return Err(ModelError::Invalid(format!(
                        "{} maps {name} to {file}, which does not hold it",
                        index_path.display()
                    )));
                }
            }
        }
        Ok(HfCheckpoint {
            source,
            files,
            tensors,
        })
    }

    /// Every tensor name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Result<Vec<i64>> {
        Ok(self.locate(name)?.info(name)?.shape.clone())
    }

    /// The stored dtype of tensor `name`.
    pub fn kind(&self, name: &str) -> Result<Kind> {
        let file = self.locate(name)?;
        file.info(name)?
            .kind()
            .map_err(|source| ModelError::TensorKind {
                name: name.to_string(),
                file: file.path().to_path_buf(),
                source,
            })
    }

    /// The file holding tensor `name`.
    pub fn file(&self, name: &str) -> Result<&Path> {
        Ok(self.locate(name)?.path())
    }

    /// Tensor `name`, converted to `kind` on `device`.
    pub fn read(&self, name: &str, kind: Kind, device: Device) -> Result<Tensor> {
        Ok(self.locate(name)?.read(name, kind, device)?)
    }

    /// Elements `[start, start + len)` of tensor `name` in row-major order, as a 1-D
    /// tensor of `kind` on `device`; only those bytes are read.
    pub fn read_range(
        &self,
        name: &str,
        start: i64,
        len: i64,
        kind: Kind,
        device: Device,
    ) -> Result<Tensor> {
        Ok(self
            .locate(name)?
            .read_range(name, start, len, kind, device)?)
    }

    fn locate(&self, name: &str) -> Result<&SafetensorsFile> {
        self.tensors
            .get(name)
            .map(|&i| &self.files[i])
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                place: self.source.clone(),
            })
    }
}

/// A weight file that cannot be opened because it is not there is
/// [`ModelError::MissingFile`] (same message); other failures stay [`SafetensorsError`]s.
fn missing_file(e: SafetensorsError) -> ModelError {
    match e {
        SafetensorsError::Open { path, source }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            ModelError::MissingFile {
                action: "cannot open",
                path,
                source,
            }
        }
        other => other.into(),
    }
}

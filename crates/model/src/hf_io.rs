//! Hugging Face model folders: `config.json` plus `model.safetensors`, or shards
//! listed in `model.safetensors.index.json`. What `save_hf` writes,
//! `transformers.AutoModelForCausalLM.from_pretrained` loads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::init::ParamInit;
use crate::llama::Llama;
use crate::safetensors_io::{read_header, read_safetensors, write_pt_safetensors, TensorInfo};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

const EMBED_TOKENS: &str = "model.embed_tokens.weight";

/// Hugging Face's name for a parameter dtype (`config.json`'s `torch_dtype`).
pub fn dtype_name(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Float => "float32",
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        other => bail!("{other:?} is not a parameter dtype Hugging Face checkpoints use"),
    })
}

/// Writes `config.json` (its `torch_dtype` set to the parameters' dtype) and a single
/// `model.safetensors` holding every variable of `vs` under its VarStore name.
pub fn save_hf(dir: &Path, vs: &VarStore, config: &LlamaConfig) -> Result<()> {
    save_hf_tensors(dir, vs.variables().into_iter().collect(), config)
}

/// As [`save_hf`] for named tensors (Hugging Face names, e.g. gathered from shards).
pub fn save_hf_tensors(
    dir: &Path,
    mut tensors: Vec<(String, Tensor)>,
    config: &LlamaConfig,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let embed = tensors
        .iter()
        .find(|(name, _)| name == EMBED_TOKENS)
        .with_context(|| format!("the VarStore has no {EMBED_TOKENS}: not a Llama model"))?;
    let mut config = config.clone();
    config.torch_dtype = Some(dtype_name(embed.1.kind())?.to_string());
    config.validate()?;
    config.to_file(&dir.join(CONFIG_FILE))?;
    write_pt_safetensors(&dir.join(WEIGHTS_FILE), &tensors)
}

/// Loads a Hugging Face folder onto `device`, keeping the checkpoint's dtype (that of
/// `model.embed_tokens.weight`). Every parameter must be present with the configured
/// shape; a tied checkpoint may still carry `lm_head.weight`, which is ignored
/// (transformers ties it to the embedding too).
pub fn load_hf(dir: &Path, device: Device) -> Result<(Llama, VarStore, LlamaConfig)> {
    let config_path = dir.join(CONFIG_FILE);
    let config = LlamaConfig::from_file(&config_path)?;
    let checkpoint = Checkpoint::open(dir)?;

    let embed = checkpoint.locate(EMBED_TOKENS)?;
    let mut vs = VarStore::new(device);
    vs.set_kind(embed.1.kind()?);
    let model = Llama::build(&vs.root(), &config, ParamInit::Placeholder)?;
    let mut vars = vs.variables();

    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let (var, (file, info)) = (&vars[name], checkpoint.locate(name)?);
        if info.shape != var.size() {
            bail!(
                "tensor {name} in {} has shape {:?}, but {} needs {:?}",
                file.display(),
                info.shape,
                config_path.display(),
                var.size()
            );
        }
    }
    for (name, (file, _)) in &checkpoint.tensors {
        let ignorable = (name == "lm_head.weight" && config.tie_word_embeddings)
            || name.ends_with(".rotary_emb.inv_freq");
        if !vars.contains_key(name) && !ignorable {
            bail!(
                "{} holds tensor {name}, which the model described by {} does not have",
                file.display(),
                config_path.display()
            );
        }
    }
    tch::no_grad(|| -> Result<()> {
        for file in &checkpoint.files {
            for (name, tensor) in read_safetensors(file)? {
                if let Some(var) = vars.get_mut(&name) {
                    var.f_copy_(&tensor)
                        .with_context(|| format!("cannot load {name} from {}", file.display()))?;
                }
            }
        }
        Ok(())
    })?;
    Ok((model, vs, config))
}

/// The weight files of a folder and where each tensor lives, from their headers.
struct Checkpoint {
    /// Human-readable description of where tensors were looked for, for errors.
    source: String,
    files: Vec<PathBuf>,
    tensors: BTreeMap<String, (PathBuf, TensorInfo)>,
}

#[derive(Deserialize)]
struct WeightIndex {
    weight_map: HashMap<String, String>,
}

impl Checkpoint {
    fn open(dir: &Path) -> Result<Self> {
        let single = dir.join(WEIGHTS_FILE);
        let index_path = dir.join(WEIGHTS_INDEX_FILE);
        let (source, files, index) = if single.exists() {
            (single.display().to_string(), vec![single], None)
        } else if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .with_context(|| format!("cannot read {}", index_path.display()))?;
            let index: WeightIndex = serde_json::from_str(&text)
                .with_context(|| format!("invalid {}", index_path.display()))?;
            let files: BTreeSet<&String> = index.weight_map.values().collect();
            let files = files.into_iter().map(|f| dir.join(f)).collect();
            (
                format!("the shards listed in {}", index_path.display()),
                files,
                Some(index),
            )
        } else {
            bail!(
                "{} has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}",
                dir.display()
            );
        };

        let mut tensors = BTreeMap::new();
        for file in &files {
            for (name, info) in read_header(file)? {
                if let Some((other, _)) = tensors.insert(name.clone(), (file.clone(), info)) {
                    bail!(
                        "tensor {name} appears in both {} and {}",
                        other.display(),
                        file.display()
                    );
                }
            }
        }
        if let Some(index) = index {
            for (name, file) in &index.weight_map {
                let expected = dir.join(file);
                if tensors.get(name).map(|(f, _)| f) != Some(&expected) {
                    bail!(
                        "{} maps {name} to {file}, which does not hold it",
                        index_path.display()
                    );
                }
            }
        }
        Ok(Checkpoint {
            source,
            files,
            tensors,
        })
    }

    fn locate(&self, name: &str) -> Result<&(PathBuf, TensorInfo)> {
        self.tensors
            .get(name)
            .with_context(|| format!("tensor {name} is missing from {}", self.source))
    }
}

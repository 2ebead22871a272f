//! Which model a subcommand runs (`generate`, `sample`): a Hugging Face folder or a
//! training checkpoint, with the tokenizer that belongs to it.

use anyhow::{bail, Context, Result};
use rpo_model::{load_hf, Llama, LlamaConfig};
use rpo_zero::Checkpoint;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::Device;

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A Hugging Face model folder (with its tokenizer.json)...
    #[arg(long, conflicts_with = "checkpoint")]
    model: Option<PathBuf>,
    /// ...or a training checkpoint (folder, or folder of checkpoints).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

impl ModelArgs {
    /// The model on `device`, and where its tokenizer.json is (which may be missing).
    pub fn load(&self, device: Device) -> Result<(Llama, PathBuf)> {
        Ok(match (&self.model, &self.checkpoint) {
            (Some(dir), None) => (load_hf(dir, device)?.0, dir.join("tokenizer.json")),
            (None, Some(path)) => from_checkpoint(path, device)?,
            _ => bail!("give --model DIR or --checkpoint DIR"),
        })
    }
}

/// The model of a checkpoint: its consolidated fp32 masters.
fn from_checkpoint(path: &Path, device: Device) -> Result<(Llama, PathBuf)> {
    let checkpoint = Checkpoint::open(path)?;
    let config: LlamaConfig = serde_json::from_value(checkpoint.manifest.model_config.clone())?;
    let vs = VarStore::new(device);
    let model = Llama::new(&vs.root(), &config)?;
    let mut vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, t) in checkpoint.consolidated()? {
            vars.get_mut(&name)
                .with_context(|| {
                    format!(
                        "{} holds an unknown tensor {name}",
                        checkpoint.dir.display()
                    )
                })?
                .f_copy_(&t)?;
        }
        Ok(())
    })?;
    Ok((model, checkpoint.dir.join("tokenizer.json")))
}

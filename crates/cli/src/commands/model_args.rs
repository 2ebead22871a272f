//! Which model a subcommand runs (`generate`, `sample`): a Hugging Face folder or a
//! training checkpoint, with the tokenizer that belongs to it.

use anyhow::{bail, Context, Result};
use rpo_comm::Collective;
use rpo_model::{load_hf, Llama, LlamaConfig};
use rpo_train::decoding_model::DecodingModel;
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
    /// Under mpirun: each rank reads and holds only its ZeRO-3 slices of the --model
    /// folder, and every rank takes part in every forward, one layer gathered at a time
    /// (for a model that does not fit one device; every layer crosses the network once
    /// per generated token). Without it every rank loads the whole model.
    #[arg(long)]
    sharded: bool,
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

impl ModelArgs {
    /// The model to decode with on `world` (sharded over its ranks with --sharded), and
    /// where its tokenizer.json is.
    pub fn decoding_model(&self, world: &dyn Collective) -> Result<(DecodingModel, PathBuf)> {
        if !self.sharded {
            let (model, tokenizer) = self.load(world.device())?;
            return Ok((DecodingModel::Whole(model), tokenizer));
        }
        let Some(dir) = &self.model else {
            bail!("--sharded reads a Hugging Face folder (--model DIR); turn a checkpoint into one with `rpo-shard convert`");
        };
        let model = DecodingModel::load(dir, world, true, tch::Kind::Float)?;
        Ok((model, dir.join("tokenizer.json")))
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

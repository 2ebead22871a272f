//! The names the model crate's files and errors share: the files of a Hugging Face
//! folder, the embedding's tensor name, the supported `model_type`s and the presets.
//! (The lowest module: the others and their errors use these.)

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

pub(crate) const EMBED_TOKENS: &str = "model.embed_tokens.weight";

pub(crate) const SUPPORTED_MODEL_TYPES: [&str; 3] = ["llama", "mistral", "qwen2"];

/// Preset names accepted by [`crate::preset`].
pub const PRESET_NAMES: [&str; 6] = [
    "tiny",
    "small",
    "llama-2-7b",
    "llama-2-13b",
    "mistral-7b",
    "qwen2.5-0.5b",
];

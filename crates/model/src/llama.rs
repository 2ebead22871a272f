//! The Llama-family decoder, split into the units the layer-wise executor runs
//! one at a time: [`Llama::embed`], each of [`Llama::layers`], [`Llama::head`].
//!
//! VarStore paths are exactly the Hugging Face tensor names
//! (`model.layers.0.self_attn.q_proj.weight`, ...), so a checkpoint maps 1:1.

use std::sync::Mutex;

use crate::error::Result;
use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::attention::Attention;
use crate::config::LlamaConfig;
use crate::init::{embedding, linear, ParamInit};
use crate::kv_cache::{KvCache, LayerKvCache};
use crate::rms_norm::RmsNorm;
use crate::rope::{Rope, RotaryAngles};
use crate::row_layout::{AttentionInputs, RowLayout};

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
pub struct Mlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl Mlp {
    fn new(path: nn::Path, config: &LlamaConfig, init: ParamInit) -> Self {
        let (hidden, inner, bias) = (
            config.hidden_size,
            config.intermediate_size,
            config.mlp_bias,
        );
        Mlp {
            gate_proj: linear(&path / "gate_proj", hidden, inner, bias, init),
            up_proj: linear(&path / "up_proj", hidden, inner, bias, init),
            down_proj: linear(&path / "down_proj", inner, hidden, bias, init),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let gated = self.gate_proj.forward(x).silu() * self.up_proj.forward(x);
        self.down_proj.forward(&gated)
    }
}

/// One pre-norm decoder block: attention and MLP, each with a residual.
#[derive(Debug)]
pub struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(path: nn::Path, config: &LlamaConfig, init: ParamInit) -> Self {
        let eps = config.rms_norm_eps;
        DecoderLayer {
            input_layernorm: RmsNorm::new(&path / "input_layernorm", config.hidden_size, eps),
            self_attn: Attention::new(&path / "self_attn", config, init),
            post_attention_layernorm: RmsNorm::new(
                &path / "post_attention_layernorm",
                config.hidden_size,
                eps,
            ),
            mlp: Mlp::new(&path / "mlp", config, init),
        }
    }

    /// `x: [B, T, hidden]` for positions `0..T`, causal; right padding needs no other mask.
    pub fn forward(&self, x: &Tensor, angles: &RotaryAngles) -> Tensor {
        self.forward_with(x, angles, None)
    }

    /// As [`forward`](Self::forward) for the positions after those in `cache`, extending it.
    pub fn forward_cached(
        &self,
        x: &Tensor,
        angles: &RotaryAngles,
        cache: &mut LayerKvCache,
    ) -> Tensor {
        self.forward_with(x, angles, Some(cache))
    }

    /// `x: [B, T, hidden]` with the angles and mask of [`Llama::attention_inputs`].
    pub fn forward_in(&self, x: &Tensor, inputs: &AttentionInputs) -> Tensor {
        match &inputs.mask {
            None => self.forward(x, &inputs.angles),
            Some(mask) => {
                let normed = self.input_layernorm.forward(x);
                let h = x + self.self_attn.forward_masked(&normed, &inputs.angles, mask);
                self.mlp_block(h)
            }
        }
    }

    fn forward_with(
        &self,
        x: &Tensor,
        angles: &RotaryAngles,
        cache: Option<&mut LayerKvCache>,
    ) -> Tensor {
        let h = x + self
            .self_attn
            .forward(&self.input_layernorm.forward(x), angles, cache);
        self.mlp_block(h)
    }

    fn mlp_block(&self, h: Tensor) -> Tensor {
        &h + self.mlp.forward(&self.post_attention_layernorm.forward(&h))
    }
}

/// A Llama / Mistral / Qwen2 causal language model.
#[derive(Debug)]
pub struct Llama {
    config: LlamaConfig,
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `[vocab, hidden]`; the embedding table itself when tied.
    lm_head: Tensor,
    rope: Rope,
}

impl Llama {
    /// Registers the parameters under `root` with transformers' random initialisation
    /// (draws from the global torch RNG; see [`Llama::init`] for a seeded model).
    pub fn new(root: &nn::Path, config: &LlamaConfig) -> Result<Self> {
        Self::build(
            root,
            config,
            ParamInit::Random {
                std: config.initializer_range,
            },
        )
    }

    /// A freshly initialised model: `tch::manual_seed(seed)`, parameters drawn in fp32 on
    /// the CPU (the same values on every device), then cast to `kind` and moved to `device`.
    /// The torch RNG is process-global: concurrent calls are serialised so each gets its
    /// seed's values, but other threads drawing random numbers meanwhile would interfere.
    pub fn init(
        config: &LlamaConfig,
        device: Device,
        kind: Kind,
        seed: i64,
    ) -> Result<(Self, nn::VarStore)> {
        static SEEDED_INIT: Mutex<()> = Mutex::new(());
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = {
            let _seeded = SEEDED_INIT
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tch::manual_seed(seed);
            Self::new(&vs.root(), config)?
        };
        vs.set_kind(kind);
        vs.set_device(device);
        Ok((model, vs))
    }

    /// The model's structure on the CPU with uninitialised, untouched parameter memory
    /// (not resident): for an owner that re-points every parameter before use, such as
    /// a ZeRO-3 rank that materialises only its slices.
    pub fn deferred(config: &LlamaConfig) -> Result<(Self, nn::VarStore)> {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Self::build(&vs.root(), config, ParamInit::Deferred)?;
        Ok((model, vs))
    }

    pub(crate) fn build(root: &nn::Path, config: &LlamaConfig, init: ParamInit) -> Result<Self> {
        config.validate()?;
        let model = root / "model";
        let embed_tokens = embedding(
            &model / "embed_tokens",
            config.vocab_size,
            config.hidden_size,
            config.pad_token_id,
            init,
        );
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::new(&model / "layers" / i, config, init))
            .collect();
        let norm = RmsNorm::new(&model / "norm", config.hidden_size, config.rms_norm_eps);
        let lm_head = if config.tie_word_embeddings {
            embed_tokens.shallow_clone()
        } else {
            linear(
                root / "lm_head",
                config.hidden_size,
                config.vocab_size,
                false,
                init,
            )
            .ws
        };
        Ok(Llama {
            config: config.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope: Rope::new(config.head_dim(), config.rope_theta),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Where the parameters live.
    pub fn device(&self) -> Device {
        self.embed_tokens.device()
    }

    /// Unit 1: token ids `[B, T]` to hidden states `[B, T, hidden]`.
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        let padding_idx = self.config.pad_token_id.unwrap_or(-1);
        Tensor::embedding(&self.embed_tokens, ids, padding_idx, false, false)
    }

    /// Rotary angles for positions `offset .. offset + len`, shared by all layers.
    pub fn rotary(&self, offset: i64, len: i64) -> RotaryAngles {
        self.rope.angles(offset, len, self.embed_tokens.device())
    }

    /// What every layer's attention needs for ids `[R, T]`: positions `0..T` and the
    /// causal rule, or a packed layout's positions and mask.
    pub fn attention_inputs(&self, len: i64, layout: Option<&RowLayout>) -> AttentionInputs {
        match layout {
            None => AttentionInputs {
                angles: self.rotary(0, len),
                mask: None,
            },
            Some(l) => AttentionInputs::packed(
                l,
                self.rope.angles_at(&l.positions),
                self.config.sliding_window,
            ),
        }
    }

    /// The last decoder layer's output `[R, T, hidden]` for ids `[R, T]` laid out as
    /// `layout` says (right-padded sequences when `None`).
    pub fn hidden_states_in(&self, ids: &Tensor, layout: Option<&RowLayout>) -> Tensor {
        let inputs = self.attention_inputs(ids.size()[1], layout);
        self.layers
            .iter()
            .fold(self.embed(ids), |x, layer| layer.forward_in(&x, &inputs))
    }

    /// Units 2..L+1: the decoder layers.
    pub fn layers(&self) -> &[DecoderLayer] {
        &self.layers
    }

    /// Last unit: final norm and LM head, hidden states to logits `[B, T, vocab]`.
    pub fn head(&self, x: &Tensor) -> Tensor {
        self.norm.forward(x).linear::<Tensor>(&self.lm_head, None)
    }

    /// The last decoder layer's output `[B, T, hidden]` for right-padded ids `[B, T]`.
    pub fn hidden_states(&self, ids: &Tensor) -> Tensor {
        let angles = self.rotary(0, ids.size()[1]);
        self.layers
            .iter()
            .fold(self.embed(ids), |x, layer| layer.forward(&x, &angles))
    }

    /// Logits `[B, T, vocab]` for right-padded ids `[B, T]`.
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        self.head(&self.hidden_states(ids))
    }

    /// An empty cache for [`forward_cached`](Self::forward_cached).
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// Logits for `ids: [B, T]` continuing the sequences held in `cache`, which grows by `T`.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Tensor {
        let angles = self.rotary(cache.len(), ids.size()[1]);
        let mut x = self.embed(ids);
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward_cached(&x, &angles, cache.layer_mut(i));
        }
        self.head(&x)
    }
}

//! Grouped-query self-attention with rotary embeddings, causal (and optionally
//! sliding-window) masking, through `scaled_dot_product_attention`.

use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::config::LlamaConfig;
use crate::init::{linear, ParamInit};
use crate::kv_cache::LayerKvCache;
use crate::rope::RotaryAngles;

#[derive(Debug)]
pub struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
    sliding_window: Option<i64>,
}

impl Attention {
    pub(crate) fn new(path: nn::Path, config: &LlamaConfig, init: ParamInit) -> Self {
        let (hidden, head_dim) = (config.hidden_size, config.head_dim());
        let (heads, kv_heads) = (config.num_attention_heads, config.num_key_value_heads);
        let (qkv_bias, o_bias) = config.projection_biases();
        Attention {
            q_proj: linear(&path / "q_proj", hidden, heads * head_dim, qkv_bias, init),
            k_proj: linear(
                &path / "k_proj",
                hidden,
                kv_heads * head_dim,
                qkv_bias,
                init,
            ),
            v_proj: linear(
                &path / "v_proj",
                hidden,
                kv_heads * head_dim,
                qkv_bias,
                init,
            ),
            o_proj: linear(&path / "o_proj", heads * head_dim, hidden, o_bias, init),
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            sliding_window: config.sliding_window,
        }
    }

    /// `x: [B, T, hidden]` at the positions `angles` describes. With a cache, the
    /// new keys/values are appended and the queries attend to all cached positions.
    pub fn forward(
        &self,
        x: &Tensor,
        angles: &RotaryAngles,
        cache: Option<&mut LayerKvCache>,
    ) -> Tensor {
        self.attend(x, angles, cache, None)
    }

    /// As [`forward`](Self::forward) without a cache, with an explicit boolean mask
    /// `[R, 1, T, T]` (packed rows; the angles then hold each token's own position).
    pub fn forward_masked(&self, x: &Tensor, angles: &RotaryAngles, mask: &Tensor) -> Tensor {
        self.attend(x, angles, None, Some(mask))
    }

    fn attend(
        &self,
        x: &Tensor,
        angles: &RotaryAngles,
        cache: Option<&mut LayerKvCache>,
        packed_mask: Option<&Tensor>,
    ) -> Tensor {
        let (batch, len, _) = x.size3().expect("attention input is [B, T, hidden]");
        let heads_first =
            |t: Tensor, heads: i64| t.view([batch, len, heads, self.head_dim]).transpose(1, 2);
        let q = angles.apply(&heads_first(self.q_proj.forward(x), self.num_heads));
        let k = angles.apply(&heads_first(self.k_proj.forward(x), self.num_kv_heads));
        let v = heads_first(self.v_proj.forward(x), self.num_kv_heads);

        let past = cache.as_ref().map_or(0, |c| c.len());
        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        let mask = match packed_mask {
            Some(m) => AttentionMask {
                explicit: Some(m.shallow_clone()),
                is_causal: false,
            },
            None => AttentionMask::new(past, len, self.sliding_window, x.device()),
        };
        let y = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            mask.explicit.as_ref(),
            0.0,
            mask.is_causal,
            None,
            self.num_heads != self.num_kv_heads,
        );
        let y = y
            .transpose(1, 2)
            .contiguous()
            .view([batch, len, self.num_heads * self.head_dim]);
        self.o_proj.forward(&y)
    }
}

/// Which key positions each query may see: the causal rule, narrowed to the
/// last `window` positions when a sliding window is set. Passed to SDPA as the
/// cheap `is_causal` flag or no mask when that is exact, else as a boolean mask.
struct AttentionMask {
    explicit: Option<Tensor>,
    is_causal: bool,
}

impl AttentionMask {
    /// Queries at positions `past .. past + len`, keys at `0 .. past + len`.
    fn new(past: i64, len: i64, window: Option<i64>, device: Device) -> Self {
        let keys = past + len;
        let window_inactive = !matches!(window, Some(w) if keys > w);
        if window_inactive && past == 0 {
            return AttentionMask {
                explicit: None,
                is_causal: true,
            };
        }
        if window_inactive && len == 1 {
            return AttentionMask {
                explicit: None,
                is_causal: false,
            };
        }
        let query_pos = Tensor::arange_start(past, keys, (Kind::Int64, device)).unsqueeze(1);
        let key_pos = Tensor::arange(keys, (Kind::Int64, device)).unsqueeze(0);
        let mut allowed = key_pos.le_tensor(&query_pos);
        if let Some(w) = window {
            // transformers' sliding_window_overlay: kv_idx > q_idx - sliding_window.
            allowed = allowed.logical_and(&key_pos.gt_tensor(&(&query_pos - w)));
        }
        AttentionMask {
            explicit: Some(allowed),
            is_causal: false,
        }
    }
}

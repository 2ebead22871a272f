//! The BERT encoder (transformers' `BertModel` without its pooler): embeddings
//! (word + position + token type, LayerNorm), then post-LN layers of self-attention and
//! a GELU feed-forward block. Parameter names are the Hugging Face tensor names without
//! the `bert.` prefix (`embeddings.word_embeddings.weight`, `encoder.layer.N.…`), which
//! is how sentence-transformers saves its Transformer module.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::config::BertConfig;

/// Word, position and token-type embeddings followed by LayerNorm.
#[derive(Debug)]
pub struct Embeddings {
    word: nn::Embedding,
    position: nn::Embedding,
    token_type: nn::Embedding,
    norm: nn::LayerNorm,
}

fn layer_norm(p: nn::Path, width: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![width],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

impl Embeddings {
    fn new(p: &nn::Path, c: &BertConfig) -> Self {
        let h = c.hidden_size;
        let cfg = Default::default();
        Embeddings {
            word: nn::embedding(p / "word_embeddings", c.vocab_size, h, cfg),
            position: nn::embedding(p / "position_embeddings", c.max_position_embeddings, h, cfg),
            token_type: nn::embedding(p / "token_type_embeddings", c.type_vocab_size, h, cfg),
            norm: layer_norm(p / "LayerNorm", h, c.layer_norm_eps),
        }
    }

    /// `ids`, `token_types`: [b, s] int64 → [b, s, h].
    fn forward(&self, ids: &Tensor, token_types: &Tensor) -> Tensor {
        let seq = ids.size()[1];
        let positions = Tensor::arange(seq, (Kind::Int64, ids.device())).unsqueeze(0);
        let x = self.word.forward(ids)
            + self.position.forward(&positions)
            + self.token_type.forward(token_types);
        self.norm.forward(&x)
    }
}

/// One encoder layer: self-attention and feed-forward, each with a residual and a
/// LayerNorm after it.
#[derive(Debug)]
pub struct Layer {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    attention_out: nn::Linear,
    attention_norm: nn::LayerNorm,
    intermediate: nn::Linear,
    output: nn::Linear,
    output_norm: nn::LayerNorm,
    heads: i64,
    head_dim: i64,
}

impl Layer {
    fn new(p: &nn::Path, c: &BertConfig) -> Self {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let cfg = Default::default();
        let attention = p / "attention";
        let own = &attention / "self";
        let out = &attention / "output";
        Layer {
            query: nn::linear(&own / "query", h, h, cfg),
            key: nn::linear(&own / "key", h, h, cfg),
            value: nn::linear(&own / "value", h, h, cfg),
            attention_out: nn::linear(&out / "dense", h, h, cfg),
            attention_norm: layer_norm(&out / "LayerNorm", h, c.layer_norm_eps),
            intermediate: nn::linear(p / "intermediate" / "dense", h, i, cfg),
            output: nn::linear(p / "output" / "dense", i, h, cfg),
            output_norm: layer_norm(p / "output" / "LayerNorm", h, c.layer_norm_eps),
            heads: c.num_attention_heads,
            head_dim: c.head_dim(),
        }
    }

    /// `x`: [b, s, h]; `mask`: additive [b, 1, 1, s] (0 on tokens, a large negative
    /// number on padding).
    fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let (b, s, h) = x.size3().expect("hidden states are [batch, seq, hidden]");
        let split = |t: Tensor| t.view([b, s, self.heads, self.head_dim]).transpose(1, 2);
        let q = split(self.query.forward(x));
        let k = split(self.key.forward(x));
        let v = split(self.value.forward(x));
        // softmax(q·kᵀ / √d + mask)·v; the default scale is 1/√head_dim, as in BERT.
        let context =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false);
        let context = context.transpose(1, 2).contiguous().view([b, s, h]);
        let a = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context) + x));
        let inner = self.intermediate.forward(&a).gelu("none");
        self.output_norm.forward(&(self.output.forward(&inner) + a))
    }
}

/// The BERT encoder: token ids in, last hidden states out.
#[derive(Debug)]
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Creates the parameters under `p` (placeholder values: load weights afterwards).
    pub fn new(p: &nn::Path, c: &BertConfig) -> Self {
        let embeddings = Embeddings::new(&(p / "embeddings"), c);
        let layers = (0..c.num_hidden_layers)
            .map(|n| Layer::new(&(p / "encoder" / "layer" / n), c))
            .collect();
        Bert { embeddings, layers }
    }

    /// Last hidden states [b, s, h] of `ids` [b, s] (int64) with `attention_mask` [b, s]
    /// (1 on tokens, 0 on padding), all token types 0. Float tensors take the dtype of
    /// the parameters.
    pub fn forward(&self, ids: &Tensor, attention_mask: &Tensor) -> Tensor {
        let token_types = ids.zeros_like();
        let mut x = self.embeddings.forward(ids, &token_types);
        let kind = x.kind();
        // Additive mask as transformers' eager attention builds it: 0 where attended,
        // the dtype's most negative value on padding.
        let (b, s) = ids.size2().expect("ids are [batch, seq]");
        let keep = attention_mask.to_kind(kind).view([b, 1, 1, s]);
        let mask = (keep.ones_like() - keep) * f64::from(f32::MIN);
        for layer in &self.layers {
            x = layer.forward(&x, &mask);
        }
        x
    }
}
